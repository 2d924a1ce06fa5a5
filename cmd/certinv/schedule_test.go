package main

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certinv/certinv"
	"github.com/certinv/certinv/blob"
	"github.com/certinv/certinv/ingest"
	"github.com/certinv/certinv/snapshot"
	"github.com/certinv/certinv/sqlite"
	"github.com/certinv/certinv/synth"
)

// fakeLock is a build lock shared by the schedules of one test, as the
// store's lock is shared by replicas. Each schedule takes it through its
// own handle, which says who holds it.
type fakeLock struct {
	mu       sync.Mutex
	holder   string // "" when free
	err      error
	takes    int
	releases int
}

type lockHandle struct {
	l    *fakeLock
	name string
}

func (h lockHandle) TryBuildLock(context.Context) (func(), bool, error) {
	l := h.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return nil, false, l.err
	}
	if l.holder != "" {
		return nil, false, nil
	}
	l.holder = h.name
	l.takes++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			if l.holder == h.name {
				l.holder = ""
			}
			l.releases++
		})
	}, true, nil
}

// drop frees the lock as PostgreSQL does when its holder's connection ends.
func (l *fakeLock) drop() {
	l.mu.Lock()
	l.holder = ""
	l.mu.Unlock()
}

// hookedSource runs a hook in the middle of the inventory read: what
// happens elsewhere while a build runs.
type hookedSource struct {
	certinv.InventoryReader
	hook func()
}

func (s *hookedSource) ReadInventory(ctx context.Context, fn func(*certinv.InventoryRow) error) (int64, error) {
	n := 0
	return s.InventoryReader.ReadInventory(ctx, func(r *certinv.InventoryRow) error {
		if n++; n == 2 && s.hook != nil {
			s.hook()
			s.hook = nil
		}
		return fn(r)
	})
}

type scheduleEnv struct {
	db     *sqlite.DB
	bucket *blob.Dir
	org    string
	lock   *fakeLock
}

func newScheduleEnv(t *testing.T) *scheduleEnv {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "certinv.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	bucket, err := blob.NewDir(filepath.Join(dir, "files"))
	if err != nil {
		t.Fatal(err)
	}
	org, err := db.OrgID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e := &scheduleEnv{db: db, bucket: bucket, org: org, lock: &fakeLock{}}
	e.report(t, 1)
	return e
}

// report stores a small fleet of the given seed.
func (e *scheduleEnv) report(t *testing.T, seed int64) {
	t.Helper()
	svc := &ingest.Service{Store: e.db, Now: time.Now}
	fleet := &synth.Fleet{Devices: 3, CertsPerDevice: 4, Groups: 2, Seed: seed, Now: time.Now().UTC().Truncate(24 * time.Hour)}
	var batch []*certinv.Report
	if err := fleet.Generate(context.Background(), 1, func(r *certinv.Report) error { batch = append(batch, r); return nil }); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.IngestBatch(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
}

// replica returns the schedule of one replica named name.
func (e *scheduleEnv) replica(name string, source certinv.InventoryReader) *schedule {
	if source == nil {
		source = e.db
	}
	b := &snapshot.Builder{Source: source, Registry: e.db, Bucket: e.bucket, OrgID: e.org, Now: time.Now}
	return newSchedule(b, lockHandle{e.lock, name}, time.Hour, minRetention, slog.New(slog.DiscardHandler))
}

func (e *scheduleEnv) snapshots(t *testing.T) []certinv.PublishedSnapshot {
	t.Helper()
	s, err := e.db.Snapshots(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// exportContainers returns the snapshot containers in the bucket.
func (e *scheduleEnv) exportContainers(t *testing.T) []string {
	t.Helper()
	cs, err := e.bucket.Containers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range cs {
		if strings.HasPrefix(c, "export-") {
			out = append(out, c)
		}
	}
	return out
}

func TestScheduleTakesTurnsOnTheLock(t *testing.T) {
	ctx := context.Background()
	e := newScheduleEnv(t)
	a, b := e.replica("a", nil), e.replica("b", nil)

	// Another replica holds the lock: this round is skipped.
	e.lock.holder = "c"
	a.tick(ctx)
	if st := a.status(); st.Outcome != outcomeSkipped || st.Skipped != 1 || st.Builds != 0 {
		t.Errorf("round while another holds the lock = %+v, want skipped and no build", st)
	}
	if n := len(e.snapshots(t)); n != 0 {
		t.Errorf("%d snapshots published while the lock was held elsewhere, want 0", n)
	}
	e.lock.drop()

	// A takes it, builds, releases; B then finds nothing changed.
	a.tick(ctx)
	b.tick(ctx)
	if st := a.status(); st.Outcome != outcomeBuilt || st.Builds != 1 || st.LastSnapshot == "" {
		t.Errorf("a's round with the lock free = %+v, want built", st)
	}
	if st := b.status(); st.Outcome != outcomeUnchanged || st.Builds != 0 {
		t.Errorf("b's round after a built = %+v, want unchanged", st)
	}
	if e.lock.takes != 2 || e.lock.releases != 2 || e.lock.holder != "" {
		t.Errorf("lock taken %d and released %d times, holder %q; want 2, 2 and free", e.lock.takes, e.lock.releases, e.lock.holder)
	}
	if n := len(e.snapshots(t)); n != 1 {
		t.Errorf("%d snapshots after two replicas' rounds, want 1", n)
	}

	// The lock cannot be asked: no build.
	e.report(t, 2)
	e.lock.err = errors.New("connection refused")
	b.tick(ctx)
	if st := b.status(); st.Outcome != outcomeFailed || st.Failed != 1 {
		t.Errorf("round with the lock unreachable = %+v, want failed", st)
	}
	if n := len(e.snapshots(t)); n != 1 {
		t.Errorf("%d snapshots after a round without the lock, want still 1", n)
	}
}

// TestScheduleLockLostMidBuild: the holder's lock goes (its connection
// ended) while it builds; another replica takes it and builds. The first
// does not publish over it, and deletes its files.
func TestScheduleLockLostMidBuild(t *testing.T) {
	ctx := context.Background()
	e := newScheduleEnv(t)
	var b *schedule
	a := e.replica("a", &hookedSource{InventoryReader: e.db, hook: func() {
		e.lock.drop()
		b.tick(ctx) // b's round runs while a's build is under way
	}})
	b = e.replica("b", nil)

	a.tick(ctx)
	if st := a.status(); st.Outcome != outcomeFailed || st.Builds != 0 {
		t.Errorf("round of the replica that lost its lock = %+v, want failed, no build", st)
	}
	if st := b.status(); st.Outcome != outcomeBuilt || st.Builds != 1 {
		t.Errorf("round of the replica that took over = %+v, want built", st)
	}
	snaps := e.snapshots(t)
	if len(snaps) != 1 || snaps[0].ID != b.status().LastSnapshot {
		t.Fatalf("published snapshots = %+v, want only b's %s", snaps, b.status().LastSnapshot)
	}
	if cs := e.exportContainers(t); len(cs) != 1 || cs[0] != snapshot.Container(snaps[0].ID) {
		t.Errorf("snapshot containers = %v, want only %s (a's deleted)", cs, snapshot.Container(snaps[0].ID))
	}
}

// TestFenceRefusesAfterAnotherPublished: the lock still looks held, but a
// snapshot was published since the round began (the lock changed hands
// twice): the build is not published.
func TestFenceRefusesAfterAnotherPublished(t *testing.T) {
	ctx := context.Background()
	e := newScheduleEnv(t)
	other := &snapshot.Builder{Source: e.db, Registry: e.db, Bucket: e.bucket, OrgID: e.org, Now: time.Now}
	a := e.replica("a", &hookedSource{InventoryReader: e.db, hook: func() {
		if _, err := other.Build(ctx); err != nil {
			t.Errorf("the other build: %v", err)
		}
	}})
	a.tick(ctx)
	if st := a.status(); st.Outcome != outcomeFailed {
		t.Errorf("round after another published meanwhile = %+v, want failed", st)
	}
	if n := len(e.snapshots(t)); n != 1 {
		t.Errorf("%d snapshots published, want 1 (the other's)", n)
	}
}
