package postgres

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/certinv/certinv"
	"github.com/jackc/pgx/v5"
)

// SetDeviceGroup places a known device in the named group, created if
// needed; an empty name takes it out of its group. ENotFound when the device
// is unknown.
func (db *DB) SetDeviceGroup(ctx context.Context, deviceID, groupName string) error {
	return db.inWriteTx(ctx, func(tx pgx.Tx) error {
		var id, current int64
		var hasLinks bool
		err := tx.QueryRow(ctx, `SELECT id, group_id, EXISTS (SELECT 1 FROM links WHERE device = devices.id) FROM devices WHERE device_id = $1`, deviceID).Scan(&id, &current, &hasLinks)
		if errors.Is(err, pgx.ErrNoRows) {
			return certinv.Errorf(certinv.ENotFound, "device %q is not in the inventory", deviceID)
		}
		if err != nil {
			return fmt.Errorf("read device %s: %w", deviceID, err)
		}
		var groupID int64
		created := false
		if groupName != "" {
			err := tx.QueryRow(ctx, `SELECT id FROM groups WHERE name = $1`, groupName).Scan(&groupID)
			if errors.Is(err, pgx.ErrNoRows) {
				err = tx.QueryRow(ctx, `INSERT INTO groups (name) VALUES ($1) RETURNING id`, groupName).Scan(&groupID)
				created = true
			}
			if err != nil {
				return fmt.Errorf("group %q: %w", groupName, err)
			}
		}
		if groupID == current && !created {
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE devices SET group_id = $1 WHERE id = $2`, groupID, id); err != nil {
			return fmt.Errorf("update device %s: %w", deviceID, err)
		}
		if hasLinks || created {
			if _, err := tx.Exec(ctx, `UPDATE meta SET version = version + 1 WHERE id = 1`); err != nil {
				return fmt.Errorf("bump inventory version: %w", err)
			}
		}
		return nil
	})
}

// Groups returns the organization's RBAC groups, by id.
func (db *DB) Groups(ctx context.Context) ([]certinv.Group, error) {
	return readGroups(ctx, db.pool)
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func readGroups(ctx context.Context, q querier) ([]certinv.Group, error) {
	rows, err := q.Query(ctx, `SELECT id, name FROM groups ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("read groups: %w", err)
	}
	gs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (certinv.Group, error) {
		var g certinv.Group
		err := r.Scan(&g.ID, &g.Name)
		return g, err
	})
	if err != nil {
		return nil, fmt.Errorf("read groups: %w", err)
	}
	return gs, nil
}

// readInventorySQL reads every record in the export's order: device ids and
// paths are COLLATE "C" and thumbprints raw bytes, so PostgreSQL's order is
// the bytewise order the export defines.
const readInventorySQL = `SELECT d.group_id, d.device_id, d.name, l.path, c.json
FROM devices AS d
JOIN links AS l ON l.device = d.id
JOIN certificates AS c ON c.id = l.certificate
ORDER BY d.group_id, d.device_id, l.path, l.sha1, l.certificate`

// ReadInventory calls fn for every record in one REPEATABLE READ, READ ONLY
// transaction, ordered by group id, device id, path and thumbprint, and
// returns the version it read. Rows are decoded as they arrive from the
// server, each into the same InventoryRow: memory does not grow with the
// fleet.
func (db *DB) ReadInventory(ctx context.Context, fn func(*certinv.InventoryRow) error) (version int64, err error) {
	tx, err := db.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return 0, fmt.Errorf("read inventory: begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	// The first statement fixes the transaction's snapshot: every later one
	// sees the same state.
	if err := tx.QueryRow(ctx, `SELECT version FROM meta WHERE id = 1`).Scan(&version); err != nil {
		return 0, fmt.Errorf("read inventory version: %w", err)
	}
	groups, err := readGroups(ctx, tx)
	if err != nil {
		return 0, err
	}
	names := certinv.GroupNames(groups)

	rows, err := tx.Query(ctx, readInventorySQL)
	if err != nil {
		return 0, fmt.Errorf("read inventory: %w", err)
	}
	defer rows.Close()
	fields := rows.FieldDescriptions()
	// Every column is read from its wire bytes. Text is the same in both
	// formats; the group id and the json must come in binary (the json in
	// text would be hex-escaped), as pgx asks for them.
	for _, i := range []int{0, 4} {
		if fields[i].Format != pgx.BinaryFormatCode {
			return 0, fmt.Errorf("read inventory: column %s arrived in text format", fields[i].Name)
		}
	}
	var (
		row   certinv.InventoryRow
		first = true
	)
	for rows.Next() {
		v := rows.RawValues()
		if len(v) != 5 || len(v[0]) != 8 || v[4] == nil {
			return 0, errors.New("read inventory: unexpected row shape")
		}
		groupID := int64(binary.BigEndian.Uint64(v[0]))
		devID, devName, path := v[1], v[2], v[3]
		// Strings are made once per device and path, not once per row.
		if first || groupID != row.GroupID {
			name, ok := names[groupID]
			if !ok {
				return 0, fmt.Errorf("read inventory: device %s is in unknown group %d", devID, groupID)
			}
			row.GroupID, row.GroupName = groupID, name
		}
		if first || string(devID) != row.DeviceID {
			row.DeviceID = string(devID)
		}
		if first || string(devName) != row.DeviceName {
			row.DeviceName = string(devName)
		}
		if first || string(path) != row.Path {
			row.Path = string(path)
		}
		first = false
		row.CertificateJSON = v[4]
		if err := fn(&row); err != nil {
			return 0, err
		}
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("read inventory: %w", err)
	}
	return version, nil
}
