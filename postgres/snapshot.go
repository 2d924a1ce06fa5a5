package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/certinv/certinv"
	"github.com/jackc/pgx/v5"
)

func timeOfMicro(us int64) time.Time { return time.UnixMicro(us).UTC() }

// PublishSnapshot makes s the latest snapshot: it is recorded and the
// previous latest is marked superseded in one transaction, under the write
// lock, so that two replicas publishing at once leave one latest.
func (db *DB) PublishSnapshot(ctx context.Context, s *certinv.Snapshot) error {
	return db.publish(ctx, s, false, "")
}

// PublishSnapshotAfter publishes s only if the latest snapshot is still
// prev ("" for none); see certinv.SnapshotSwapper. The check and the
// publication are one transaction under the write lock.
func (db *DB) PublishSnapshotAfter(ctx context.Context, s *certinv.Snapshot, prev string) error {
	return db.publish(ctx, s, true, prev)
}

func (db *DB) publish(ctx context.Context, s *certinv.Snapshot, check bool, prev string) error {
	if s == nil || s.ID == "" || s.ManifestKey == "" {
		return errors.New("publish snapshot: id and manifest key are required")
	}
	now := db.Now().UnixMicro()
	err := db.inWriteTx(ctx, func(tx pgx.Tx) error {
		if check {
			var latest string
			err := tx.QueryRow(ctx, `SELECT id FROM snapshots WHERE superseded_at IS NULL AND retired_at IS NULL`).Scan(&latest)
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
			if latest != prev {
				return certinv.Errorf(certinv.EConflict, "snapshot %s was published meanwhile; %s is not published", latest, s.ID)
			}
		}
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM snapshots WHERE id = $1)`, s.ID).Scan(&exists); err != nil {
			return err
		}
		if exists {
			return certinv.Errorf(certinv.EConflict, "snapshot %s is already published", s.ID)
		}
		if _, err := tx.Exec(ctx, `UPDATE snapshots SET superseded_at = $1 WHERE superseded_at IS NULL`, now); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO snapshots (id, generated_at, version, manifest_key, records, files, published_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			s.ID, s.GeneratedAt.UnixMicro(), s.Version, s.ManifestKey, s.Records, s.Files, now)
		return err
	})
	if err != nil {
		return fmt.Errorf("publish snapshot %s: %w", s.ID, err)
	}
	return nil
}

var _ certinv.SnapshotSwapper = (*DB)(nil)

const snapshotColumns = `id, generated_at, version, manifest_key, records, files, superseded_at`

func scanSnapshot(sc pgx.Row) (*certinv.PublishedSnapshot, error) {
	var (
		p          certinv.PublishedSnapshot
		generated  int64
		superseded *int64
	)
	if err := sc.Scan(&p.ID, &generated, &p.Version, &p.ManifestKey, &p.Records, &p.Files, &superseded); err != nil {
		return nil, err
	}
	p.GeneratedAt = timeOfMicro(generated)
	if superseded != nil {
		p.SupersededAt = timeOfMicro(*superseded)
	}
	return &p, nil
}

// LatestSnapshot returns the newest published snapshot; ENotFound when there
// is none or it was retired.
func (db *DB) LatestSnapshot(ctx context.Context) (*certinv.Snapshot, error) {
	p, err := scanSnapshot(db.pool.QueryRow(ctx,
		`SELECT `+snapshotColumns+` FROM snapshots WHERE superseded_at IS NULL AND retired_at IS NULL`))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, certinv.Errorf(certinv.ENotFound, "no snapshot is published yet")
	}
	if err != nil {
		return nil, fmt.Errorf("read latest snapshot: %w", err)
	}
	return &p.Snapshot, nil
}

// Snapshot returns a published snapshot by id; ENotFound when it is unknown
// or retired.
func (db *DB) Snapshot(ctx context.Context, id string) (*certinv.Snapshot, error) {
	p, err := scanSnapshot(db.pool.QueryRow(ctx,
		`SELECT `+snapshotColumns+` FROM snapshots WHERE id = $1 AND retired_at IS NULL`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, certinv.Errorf(certinv.ENotFound, "snapshot %q does not exist or was retired", id)
	}
	if err != nil {
		return nil, fmt.Errorf("read snapshot %s: %w", id, err)
	}
	return &p.Snapshot, nil
}

// Snapshots returns every published, unretired snapshot, newest first.
func (db *DB) Snapshots(ctx context.Context) ([]certinv.PublishedSnapshot, error) {
	rows, err := db.pool.Query(ctx,
		`SELECT `+snapshotColumns+` FROM snapshots WHERE retired_at IS NULL ORDER BY seq DESC`)
	if err != nil {
		return nil, fmt.Errorf("read snapshots: %w", err)
	}
	ps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (certinv.PublishedSnapshot, error) {
		p, err := scanSnapshot(r)
		if err != nil {
			return certinv.PublishedSnapshot{}, err
		}
		return *p, nil
	})
	if err != nil {
		return nil, fmt.Errorf("read snapshots: %w", err)
	}
	return ps, nil
}

// RetireSnapshot marks a snapshot retired; ENotFound when it is unknown.
// Retiring a retired snapshot does nothing.
func (db *DB) RetireSnapshot(ctx context.Context, id string) error {
	ct, err := db.pool.Exec(ctx, `UPDATE snapshots SET retired_at = coalesce(retired_at, $1) WHERE id = $2`, db.Now().UnixMicro(), id)
	if err != nil {
		return fmt.Errorf("retire snapshot %s: %w", id, err)
	}
	if ct.RowsAffected() == 0 {
		return certinv.Errorf(certinv.ENotFound, "snapshot %q does not exist", id)
	}
	return nil
}
