package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/certinv/certinv"
	"github.com/certinv/certinv/snapshot"
)

// schedule builds a snapshot at once when the inventory changed since the
// last one, then every interval when it changed again, and retires
// snapshots superseded longer than retention ago.
//
// With a shared store (lock set), each round runs under the store's build
// lock: the one replica that gets it builds and retires, the others skip
// the round. A holder that dies frees the lock with its connection, and
// whichever replica tries next takes over; its build starts anew, and the
// dead one's files are swept by Retire. Publication is atomic, so readers
// never see a half-built snapshot; and before publishing, the builder makes
// sure it still holds the lock (fence), so that a replica that lost its
// lock midway does not publish over the next holder.
type schedule struct {
	builder *snapshot.Builder
	lock    buildLocker // nil: this process is the only builder
	// fence is the builder's Registry when lock is set (newSchedule).
	fence     *fence
	interval  time.Duration
	retention time.Duration
	log       *slog.Logger
	now       func() time.Time

	mu    sync.Mutex
	state buildState
}

// buildState is what the schedule did last, for /readyz.
type buildState struct {
	LastRunAt        time.Time
	Outcome          string // outcomeBuilt...
	LastBuiltAt      time.Time
	LastBuildSeconds float64
	LastSnapshot     string
	Runs, Builds     int64
	Skipped, Failed  int64
}

// The outcomes of a round.
const (
	outcomeBuilt     = "built"
	outcomeUnchanged = "unchanged"
	outcomeSkipped   = "skipped: another replica holds the build lock"
	outcomeFailed    = "failed"
)

// errLockLost refuses a publication by a builder that no longer holds the
// build lock.
var errLockLost = errors.New("the snapshot build lock was lost during the build (the database connection that held it ended): not publishing; the replica that holds it now builds")

// newSchedule returns the schedule of b; with lock, b publishes through a
// fence on its registry.
func newSchedule(b *snapshot.Builder, lock buildLocker, interval, retention time.Duration, log *slog.Logger) *schedule {
	s := &schedule{builder: b, lock: lock, interval: interval, retention: retention, log: log, now: time.Now}
	if lock != nil {
		s.fence = &fence{SnapshotRegistry: b.Registry, lock: lock}
		b.Registry = s.fence
	}
	return s
}

// run runs a round at once, then every interval, until ctx ends.
func (s *schedule) run(ctx context.Context) {
	s.tick(ctx)
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.tick(ctx)
		}
	}
}

// tick is one round: take the lock (when shared), build if the inventory
// changed, retire old snapshots.
func (s *schedule) tick(ctx context.Context) {
	started := s.now()
	outcome := s.round(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state.Runs++
	s.state.LastRunAt = started
	s.state.Outcome = outcome
	switch outcome {
	case outcomeSkipped:
		s.state.Skipped++
	case outcomeFailed:
		s.state.Failed++
	}
}

func (s *schedule) round(ctx context.Context) string {
	b := s.builder
	if s.lock != nil {
		release, ok, err := s.lock.TryBuildLock(ctx)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("snapshot build lock not taken: this round is skipped", "err", err)
			}
			return outcomeFailed
		}
		if !ok {
			s.log.Debug("another replica holds the snapshot build lock: this round is skipped")
			return outcomeSkipped
		}
		defer release()
		if err := s.fence.arm(ctx); err != nil {
			if ctx.Err() == nil {
				s.log.Error("snapshot build failed; the previous snapshot keeps serving", "err", err)
			}
			return outcomeFailed
		}
	}
	outcome := outcomeUnchanged
	start := time.Now()
	// The builder logs its progress and what it published.
	snap, built, err := b.BuildIfChanged(ctx)
	switch {
	case err != nil:
		if ctx.Err() == nil {
			s.log.Error("snapshot build failed; the previous snapshot keeps serving", "err", err)
		}
		outcome = outcomeFailed
	case built:
		outcome = outcomeBuilt
		s.mu.Lock()
		s.state.Builds++
		s.state.LastBuiltAt = s.now()
		s.state.LastBuildSeconds = time.Since(start).Seconds()
		s.state.LastSnapshot = snap.ID
		s.mu.Unlock()
	}
	if n, err := b.Retire(ctx, s.retention); err != nil && ctx.Err() == nil {
		s.log.Error("retiring old snapshots failed", "err", err)
	} else if n > 0 {
		s.log.Info("snapshots retired", "count", n)
	}
	return outcome
}

// status returns the schedule's state.
func (s *schedule) status() buildState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// fence is the registry a lock holder's builder publishes through: before
// publishing, it checks that the build lock is still held (no other
// connection can take it), then publishes only if no snapshot was published
// since the round began — in the publication's own transaction when the
// registry is a certinv.SnapshotSwapper (both stores are), so that of two
// replicas that both believe they hold the lock, only one publishes.
type fence struct {
	certinv.SnapshotRegistry
	lock   buildLocker
	latest string // id of the latest snapshot when the round began; "" for none
}

// arm records the latest snapshot at the beginning of a round.
func (f *fence) arm(ctx context.Context) error {
	id, err := latestID(ctx, f.SnapshotRegistry)
	f.latest = id
	return err
}

func latestID(ctx context.Context, r certinv.SnapshotRegistry) (string, error) {
	s, err := r.LatestSnapshot(ctx)
	switch {
	case certinv.KindOf(err) == certinv.ENotFound:
		return "", nil
	case err != nil:
		return "", fmt.Errorf("latest snapshot: %w", err)
	}
	return s.ID, nil
}

// PublishSnapshot publishes s when this round still holds the lock.
func (f *fence) PublishSnapshot(ctx context.Context, s *certinv.Snapshot) error {
	release, free, err := f.lock.TryBuildLock(ctx)
	if err != nil {
		return fmt.Errorf("check the build lock before publishing: %w", err)
	}
	if free {
		// Nobody held it, so neither do we.
		release()
		return errLockLost
	}
	if sw, ok := f.SnapshotRegistry.(certinv.SnapshotSwapper); ok {
		err := sw.PublishSnapshotAfter(ctx, s, f.latest)
		if certinv.KindOf(err) == certinv.EConflict {
			return fmt.Errorf("%w: %w", errLockLost, err)
		}
		return err
	}
	id, err := latestID(ctx, f.SnapshotRegistry)
	if err != nil {
		return err
	}
	if id != f.latest {
		return fmt.Errorf("%w (snapshot %s was published meanwhile)", errLockLost, id)
	}
	return f.SnapshotRegistry.PublishSnapshot(ctx, s)
}
