package certinv

import (
	"context"
	"time"
)

// Snapshot is an immutable, published export of the inventory: gzip NDJSON
// part files per RBAC group and a manifest that names them, all under one
// container of a bucket.
type Snapshot struct {
	ID          string    // GUID; names the container and the part files
	GeneratedAt time.Time // UTC, whole seconds: the export's generatedTime
	Version     int64     // the inventory version it was built from
	ManifestKey string    // bucket key of the manifest
	Records     int64
	Files       int
}

// TimePath is the snapshot's time path as the vendor writes it in URLs and
// skiptokens: "2026-12-03/1500/".
func (s *Snapshot) TimePath() string {
	return s.GeneratedAt.UTC().Format("2006-01-02/1504/")
}

// SnapshotRegistry records which snapshots are published.
type SnapshotRegistry interface {
	// PublishSnapshot makes s the latest snapshot, atomically: readers see
	// either the previous latest or s, complete.
	PublishSnapshot(ctx context.Context, s *Snapshot) error

	// LatestSnapshot returns the newest published snapshot; ENotFound when
	// there is none yet.
	LatestSnapshot(ctx context.Context) (*Snapshot, error)

	// Snapshot returns a published snapshot by id; ENotFound when it is
	// unknown or retired.
	Snapshot(ctx context.Context, id string) (*Snapshot, error)

	// Snapshots returns every published, unretired snapshot, newest first,
	// with the time each was superseded by the next (zero for the latest).
	Snapshots(ctx context.Context) ([]PublishedSnapshot, error)

	// RetireSnapshot marks a snapshot retired; Snapshot no longer returns it.
	// Its files are deleted by the caller after this returns.
	RetireSnapshot(ctx context.Context, id string) error
}

// SnapshotSwapper is a SnapshotRegistry that can publish on a condition,
// atomically: the builder of a replica that may have lost its build lock
// publishes only if no other snapshot was published since it began. Stores
// that several processes share implement it; callers find it by type
// assertion.
type SnapshotSwapper interface {
	// PublishSnapshotAfter publishes s as PublishSnapshot does, but only if
	// the latest published snapshot is still prev ("" for none), checked in
	// the same transaction; EConflict, with nothing published, otherwise.
	PublishSnapshotAfter(ctx context.Context, s *Snapshot, prev string) error
}

// PublishedSnapshot is a snapshot with the time a newer one replaced it.
type PublishedSnapshot struct {
	Snapshot
	SupersededAt time.Time // zero while it is the latest
}
