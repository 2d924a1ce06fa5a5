package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/certinv/certinv"
)

// The DB keeps the rules that place devices in groups.
//
// The group a device is exported in stays in devices.group_id, which
// ReadInventory reads as before: rules cost nothing on the read path. It is
// computed when something it depends on changes, in the same transaction:
// by this file's methods when rules, tags or pins change, and by the
// triggers of migration 0004 when the inventory inserts a device or changes
// its name, OS or group (a group given at ingest or by SetDeviceGroup is
// pinned; taking it away lets rules decide again).
var _ certinv.DeviceGroupRules = (*DB)(nil)

// globSQL translates a certinv glob (* and ?, everything else literal,
// ASCII case-insensitive) into a lower-case SQLite GLOB pattern: "[", the
// only other character GLOB treats specially outside a class, becomes the
// class "[[]".
func globSQL(pattern string) string {
	return strings.ReplaceAll(lowerASCII(pattern), "[", "[[]")
}

// placeAllSQL places every device anew: its pinned group, else its rules'
// group, else none. Only the devices whose group changes are written.
const placeAllSQL = `UPDATE devices SET group_id = p.g, assign_seq = assign_seq + 1
FROM (SELECT v.device AS id, coalesce(d.explicit_group, v.group_id, 0) AS g
      FROM device_rule_groups v JOIN devices d ON d.id = v.device) AS p
WHERE devices.id = p.id AND devices.group_id <> p.g`

// placeOneSQL places the device of row id anew.
const placeOneSQL = `UPDATE devices SET
	group_id = coalesce(explicit_group, (SELECT v.group_id FROM device_rule_groups v WHERE v.device = devices.id), 0),
	assign_seq = assign_seq + 1
WHERE id = ?`

// bumpVersion records a visible change of the inventory.
func bumpVersion(ctx context.Context, tx *sql.Tx) error {
	if _, err := tx.ExecContext(ctx, `UPDATE meta SET version = version + 1 WHERE id = 1`); err != nil {
		return fmt.Errorf("bump inventory version: %w", err)
	}
	return nil
}

// placeAll places every device anew and bumps the version when one moved or
// a group was created (the first turns None into Unassigned).
func placeAll(ctx context.Context, tx *sql.Tx, created bool) (moved int64, err error) {
	res, err := tx.ExecContext(ctx, placeAllSQL)
	if err != nil {
		return 0, fmt.Errorf("place devices by rules: %w", err)
	}
	moved, err = res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("place devices by rules: %w", err)
	}
	if moved > 0 || created {
		return moved, bumpVersion(ctx, tx)
	}
	return 0, nil
}

// placeOne places one device (row id) anew, and bumps the version when its
// records move or a group was created.
func placeOne(ctx context.Context, tx *sql.Tx, row int64, created bool) error {
	var before, after int64
	var hasLinks bool
	if err := tx.QueryRowContext(ctx, `SELECT group_id, EXISTS (SELECT 1 FROM links WHERE device = ?) FROM devices WHERE id = ?`, row, row).Scan(&before, &hasLinks); err != nil {
		return fmt.Errorf("read device: %w", err)
	}
	if _, err := tx.ExecContext(ctx, placeOneSQL, row); err != nil {
		return fmt.Errorf("place device: %w", err)
	}
	if err := tx.QueryRowContext(ctx, `SELECT group_id FROM devices WHERE id = ?`, row).Scan(&after); err != nil {
		return fmt.Errorf("read device: %w", err)
	}
	if (after != before && hasLinks) || created {
		return bumpVersion(ctx, tx)
	}
	return nil
}

// AddGroupRule stores r and places every device anew.
func (db *DB) AddGroupRule(ctx context.Context, actor string, r certinv.GroupRule) (*certinv.GroupRule, error) {
	if err := r.Normalize(); err != nil {
		return nil, err
	}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		id, created, err := groupByName(ctx, tx, r.GroupName, false, true)
		if err != nil {
			return err
		}
		r.GroupID = id
		if err := tx.QueryRowContext(ctx, `INSERT INTO group_rules (group_id, priority, name_glob, name_sql, domain_suffix, os_glob, os_sql, tag, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			id, r.Priority, r.NameGlob, globSQL(r.NameGlob), r.DomainSuffix, r.OSGlob, globSQL(r.OSGlob), r.Tag, db.Now().UnixMicro()).Scan(&r.ID); err != nil {
			return fmt.Errorf("insert rule: %w", err)
		}
		moved, err := placeAll(ctx, tx, created)
		if err != nil {
			return err
		}
		return db.audit(ctx, tx, actor, "rule.add", fmt.Sprint(r.ID), map[string]any{
			"group": r.GroupName, "priority": r.Priority, "deviceNameGlob": r.NameGlob, "domainSuffix": r.DomainSuffix,
			"osGlob": r.OSGlob, "tag": r.Tag, "groupCreated": created, "devicesMoved": moved})
	})
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// DeleteGroupRule deletes rule id and places every device anew.
func (db *DB) DeleteGroupRule(ctx context.Context, actor string, id int64) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		var group string
		err := tx.QueryRowContext(ctx, `SELECT g.name FROM group_rules r JOIN groups g ON g.id = r.group_id WHERE r.id = ?`, id).Scan(&group)
		if errors.Is(err, sql.ErrNoRows) {
			return certinv.Errorf(certinv.ENotFound, "there is no rule %d", id)
		}
		if err != nil {
			return fmt.Errorf("read rule %d: %w", id, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM group_rules WHERE id = ?`, id); err != nil {
			return fmt.Errorf("delete rule %d: %w", id, err)
		}
		moved, err := placeAll(ctx, tx, false)
		if err != nil {
			return err
		}
		return db.audit(ctx, tx, actor, "rule.delete", fmt.Sprint(id), map[string]any{"group": group, "devicesMoved": moved})
	})
}

// GroupRules returns the rules in evaluation order.
func (db *DB) GroupRules(ctx context.Context) ([]certinv.GroupRule, error) {
	rows, err := db.reader.QueryContext(ctx, `SELECT r.id, r.group_id, g.name, r.priority, r.name_glob, r.domain_suffix, r.os_glob, r.tag
		FROM group_rules r JOIN groups g ON g.id = r.group_id ORDER BY r.priority, r.id`)
	if err != nil {
		return nil, fmt.Errorf("read rules: %w", err)
	}
	defer rows.Close()
	var out []certinv.GroupRule
	for rows.Next() {
		var r certinv.GroupRule
		if err := rows.Scan(&r.ID, &r.GroupID, &r.GroupName, &r.Priority, &r.NameGlob, &r.DomainSuffix, &r.OSGlob, &r.Tag); err != nil {
			return nil, fmt.Errorf("read rules: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read rules: %w", err)
	}
	return out, nil
}

// lowerASCII lower-cases the ASCII letters of s, as SQLite's lower() does.
func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func checkDeviceID(id string) error {
	if !certinv.ValidDeviceID(id) {
		return certinv.Errorf(certinv.EInvalid, "a device id is 40 lowercase hex characters")
	}
	return nil
}

// SetDeviceTags replaces a device's tags and places it anew.
func (db *DB) SetDeviceTags(ctx context.Context, actor, deviceID string, tags []string) error {
	if err := checkDeviceID(deviceID); err != nil {
		return err
	}
	tags, err := certinv.NormalizeTags(tags)
	if err != nil {
		return err
	}
	return db.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM device_tags WHERE device_id = ?`, deviceID); err != nil {
			return fmt.Errorf("set tags of %s: %w", deviceID, err)
		}
		for _, t := range tags {
			if _, err := tx.ExecContext(ctx, `INSERT INTO device_tags (device_id, tag) VALUES (?, ?)`, deviceID, t); err != nil {
				return fmt.Errorf("set tags of %s: %w", deviceID, err)
			}
		}
		var row int64
		err := tx.QueryRowContext(ctx, `SELECT id FROM devices WHERE device_id = ?`, deviceID).Scan(&row)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			// Not reported yet: the insert trigger places it.
		case err != nil:
			return fmt.Errorf("read device %s: %w", deviceID, err)
		default:
			if err := placeOne(ctx, tx, row, false); err != nil {
				return err
			}
		}
		return db.audit(ctx, tx, actor, "device.tags", deviceID, map[string]any{"tags": nonNil(tags)})
	})
}

// PinDeviceGroup places a known device in the named group whatever the
// rules say; "" unpins it. "Unassigned" (or "None") pins it to no group.
func (db *DB) PinDeviceGroup(ctx context.Context, actor, deviceID, group string) error {
	if err := checkDeviceID(deviceID); err != nil {
		return err
	}
	return db.inTx(ctx, func(tx *sql.Tx) error {
		var row int64
		err := tx.QueryRowContext(ctx, `SELECT id FROM devices WHERE device_id = ?`, deviceID).Scan(&row)
		if errors.Is(err, sql.ErrNoRows) {
			return certinv.Errorf(certinv.ENotFound, "device %s is not in the inventory", deviceID)
		}
		if err != nil {
			return fmt.Errorf("read device %s: %w", deviceID, err)
		}
		var pin sql.NullInt64
		created := false
		if group != "" {
			id, c, err := groupByName(ctx, tx, group, true, true)
			if err != nil {
				return err
			}
			pin, created = sql.NullInt64{Int64: id, Valid: true}, c
		}
		if _, err := tx.ExecContext(ctx, `UPDATE devices SET explicit_group = ?, assign_seq = assign_seq + 1 WHERE id = ?`, pin, row); err != nil {
			return fmt.Errorf("pin device %s: %w", deviceID, err)
		}
		if err := placeOne(ctx, tx, row, created); err != nil {
			return err
		}
		action := "device.pin"
		if group == "" {
			action = "device.unpin"
		}
		return db.audit(ctx, tx, actor, action, deviceID, map[string]any{"group": group, "groupCreated": created})
	})
}

// DeviceAccess returns how a device is placed and enrolled.
func (db *DB) DeviceAccess(ctx context.Context, deviceID string) (*certinv.DeviceAccess, error) {
	if err := checkDeviceID(deviceID); err != nil {
		return nil, err
	}
	tx, err := db.reader.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("read device %s: %w", deviceID, err)
	}
	defer tx.Rollback()
	a := &certinv.DeviceAccess{DeviceID: deviceID}
	var hasGroups bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM groups)`).Scan(&hasGroups); err != nil {
		return nil, fmt.Errorf("read groups: %w", err)
	}
	noGroup := certinv.GroupNone
	if hasGroups {
		noGroup = certinv.GroupUnassigned
	}
	var pinned sql.NullInt64
	var group, pinName sql.NullString
	err = tx.QueryRowContext(ctx, `SELECT d.name, d.os, d.group_id, g.name, d.explicit_group, p.name
		FROM devices d LEFT JOIN groups g ON g.id = d.group_id LEFT JOIN groups p ON p.id = d.explicit_group
		WHERE d.device_id = ?`, deviceID).Scan(&a.Name, &a.OS, &a.GroupID, &group, &pinned, &pinName)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return nil, fmt.Errorf("read device %s: %w", deviceID, err)
	default:
		a.Known = true
	}
	a.Group = noGroup
	if group.Valid {
		a.Group = group.String
	}
	if pinned.Valid {
		a.PinnedGroup = noGroup
		if pinName.Valid {
			a.PinnedGroup = pinName.String
		}
	}
	rows, err := tx.QueryContext(ctx, `SELECT tag FROM device_tags WHERE device_id = ? ORDER BY tag`, deviceID)
	if err != nil {
		return nil, fmt.Errorf("read tags of %s: %w", deviceID, err)
	}
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read tags of %s: %w", deviceID, err)
		}
		a.Tags = append(a.Tags, t)
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("read tags of %s: %w", deviceID, err)
	}
	c, err := scanCredential(tx.QueryRowContext(ctx, credentialSQL, deviceID))
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("read credential of %s: %w", deviceID, err)
	}
	a.Credential = c
	return a, nil
}
