package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/certinv/certinv"
	"github.com/jackc/pgx/v5"
)

// The DB keeps the audit log.
var _ certinv.AuditLog = (*DB)(nil)

// MaxAuditEntries is the most entries one AuditEntries call returns.
const MaxAuditEntries = 10000

// audit appends an entry within tx, so that the action and its record
// commit together. tx holds the write lock, so entries commit in the order
// of their ids. details is marshalled to JSON; it must hold no secret.
func (db *DB) audit(ctx context.Context, tx pgx.Tx, actor, action, target string, details any) error {
	d := "{}"
	if details != nil {
		b, err := json.Marshal(details)
		if err != nil {
			return fmt.Errorf("audit %s: %w", action, err)
		}
		d = string(b)
	}
	if actor == "" {
		actor = "unknown"
	}
	if _, err := tx.Exec(ctx, `INSERT INTO audit_log (at, actor, action, target, details) VALUES ($1, $2, $3, $4, $5)`,
		db.Now().UnixMicro(), actor, action, target, d); err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	return nil
}

// AppendAudit records an action done outside the stores of this package.
func (db *DB) AppendAudit(ctx context.Context, e certinv.AuditEntry) error {
	if e.Action == "" {
		return certinv.Errorf(certinv.EInvalid, "an audit entry needs an action")
	}
	if e.Details == "" {
		e.Details = "{}"
	}
	if !json.Valid([]byte(e.Details)) {
		return certinv.Errorf(certinv.EInvalid, "the details of an audit entry must be JSON")
	}
	at := e.Time
	if at.IsZero() {
		at = db.Now()
	}
	return db.inWriteTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO audit_log (at, actor, action, target, details) VALUES ($1, $2, $3, $4, $5)`,
			at.UnixMicro(), e.Actor, e.Action, e.Target, e.Details); err != nil {
			return fmt.Errorf("append audit entry: %w", err)
		}
		return nil
	})
}

// AuditEntries returns up to limit entries with an id above afterID, oldest
// first.
func (db *DB) AuditEntries(ctx context.Context, afterID int64, limit int) ([]certinv.AuditEntry, error) {
	if limit < 1 || limit > MaxAuditEntries {
		return nil, certinv.Errorf(certinv.EInvalid, "limit must be between 1 and %d", MaxAuditEntries)
	}
	rows, err := db.pool.Query(ctx, `SELECT id, at, actor, action, target, details FROM audit_log WHERE id > $1 ORDER BY id LIMIT $2`, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (certinv.AuditEntry, error) {
		var e certinv.AuditEntry
		var at int64
		err := r.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Target, &e.Details)
		e.Time = timeOfMicro(at)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	return out, nil
}
