package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/certinv/certinv"
)

func timeOfMicro(us int64) time.Time { return time.UnixMicro(us).UTC() }

// PublishSnapshot makes s the latest snapshot: it is recorded and the
// previous latest is marked superseded in one transaction.
func (db *DB) PublishSnapshot(ctx context.Context, s *certinv.Snapshot) error {
	return db.publish(ctx, s, false, "")
}

// PublishSnapshotAfter publishes s only if the latest snapshot is still
// prev ("" for none); see certinv.SnapshotSwapper.
func (db *DB) PublishSnapshotAfter(ctx context.Context, s *certinv.Snapshot, prev string) error {
	return db.publish(ctx, s, true, prev)
}

func (db *DB) publish(ctx context.Context, s *certinv.Snapshot, check bool, prev string) error {
	if s == nil || s.ID == "" || s.ManifestKey == "" {
		return errors.New("publish snapshot: id and manifest key are required")
	}
	now := db.Now().UnixMicro()
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if check {
			var latest string
			err := tx.QueryRowContext(ctx, `SELECT id FROM snapshots WHERE superseded_at IS NULL AND retired_at IS NULL`).Scan(&latest)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			if latest != prev {
				return certinv.Errorf(certinv.EConflict, "snapshot %s was published meanwhile; %s is not published", latest, s.ID)
			}
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM snapshots WHERE id = ?`, s.ID).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return certinv.Errorf(certinv.EConflict, "snapshot %s is already published", s.ID)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE snapshots SET superseded_at = ? WHERE superseded_at IS NULL`, now); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO snapshots (id, generated_at, version, manifest_key, records, files, published_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`,
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

func scanSnapshot(sc interface{ Scan(...any) error }) (*certinv.PublishedSnapshot, error) {
	var (
		p          certinv.PublishedSnapshot
		generated  int64
		superseded sql.NullInt64
	)
	if err := sc.Scan(&p.ID, &generated, &p.Version, &p.ManifestKey, &p.Records, &p.Files, &superseded); err != nil {
		return nil, err
	}
	p.GeneratedAt = timeOfMicro(generated)
	if superseded.Valid {
		p.SupersededAt = timeOfMicro(superseded.Int64)
	}
	return &p, nil
}

// LatestSnapshot returns the newest published snapshot; ENotFound when there
// is none or it was retired.
func (db *DB) LatestSnapshot(ctx context.Context) (*certinv.Snapshot, error) {
	p, err := scanSnapshot(db.reader.QueryRowContext(ctx,
		`SELECT `+snapshotColumns+` FROM snapshots WHERE superseded_at IS NULL AND retired_at IS NULL`))
	if errors.Is(err, sql.ErrNoRows) {
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
	p, err := scanSnapshot(db.reader.QueryRowContext(ctx,
		`SELECT `+snapshotColumns+` FROM snapshots WHERE id = ? AND retired_at IS NULL`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, certinv.Errorf(certinv.ENotFound, "snapshot %q does not exist or was retired", id)
	}
	if err != nil {
		return nil, fmt.Errorf("read snapshot %s: %w", id, err)
	}
	return &p.Snapshot, nil
}

// Snapshots returns every published, unretired snapshot, newest first.
func (db *DB) Snapshots(ctx context.Context) ([]certinv.PublishedSnapshot, error) {
	rows, err := db.reader.QueryContext(ctx,
		`SELECT `+snapshotColumns+` FROM snapshots WHERE retired_at IS NULL ORDER BY seq DESC`)
	if err != nil {
		return nil, fmt.Errorf("read snapshots: %w", err)
	}
	defer rows.Close()
	var ps []certinv.PublishedSnapshot
	for rows.Next() {
		p, err := scanSnapshot(rows)
		if err != nil {
			return nil, fmt.Errorf("read snapshots: %w", err)
		}
		ps = append(ps, *p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read snapshots: %w", err)
	}
	return ps, nil
}

// RetireSnapshot marks a snapshot retired; ENotFound when it is unknown.
// Retiring a retired snapshot does nothing.
func (db *DB) RetireSnapshot(ctx context.Context, id string) error {
	var n int64
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE snapshots SET retired_at = coalesce(retired_at, ?) WHERE id = ?`, db.Now().UnixMicro(), id)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("retire snapshot %s: %w", id, err)
	}
	if n == 0 {
		return certinv.Errorf(certinv.ENotFound, "snapshot %q does not exist", id)
	}
	return nil
}
