package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/certinv/certinv"
	"github.com/jackc/pgx/v5"
)

// The DB keeps the rules that place devices in groups.
//
// The group a device is exported in stays in devices.group_id, which
// ReadInventory reads as before: rules cost nothing on the read path. It is
// computed in Go, by certinv.GroupRule.Matches (the reference the sqlite
// store's SQL agrees with), whenever something it depends on changes, in
// the transaction of that change and under the write lock: by this file's
// methods when rules, tags or pins change, and by ApplyDeviceSets and
// SetDeviceGroup when a device is inserted or its name, OS or group
// changes. The placement is the sqlite store's (its triggers of migration
// 0004): a group given at ingest or by SetDeviceGroup that differs from the
// device's current one pins it; taking it away lets rules decide again; a
// new name or OS lets rules decide again unless the device is pinned.
var _ certinv.DeviceGroupRules = (*DB)(nil)

// ruleSet is the rules in evaluation order, as one transaction read them.
type ruleSet []certinv.GroupRule

// rulesSQL reads the rules in evaluation order.
const rulesSQL = `SELECT r.id, r.group_id, g.name, r.priority, r.name_glob, r.domain_suffix, r.os_glob, r.tag
	FROM group_rules AS r JOIN groups AS g ON g.id = r.group_id ORDER BY r.priority, r.id`

func scanRules(rows pgx.Rows) (ruleSet, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (certinv.GroupRule, error) {
		var g certinv.GroupRule
		err := r.Scan(&g.ID, &g.GroupID, &g.GroupName, &g.Priority, &g.NameGlob, &g.DomainSuffix, &g.OSGlob, &g.Tag)
		return g, err
	})
}

func readRules(ctx context.Context, q querier) (ruleSet, error) {
	rows, err := q.Query(ctx, rulesSQL)
	if err != nil {
		return nil, fmt.Errorf("read rules: %w", err)
	}
	rs, err := scanRules(rows)
	if err != nil {
		return nil, fmt.Errorf("read rules: %w", err)
	}
	return rs, nil
}

// needTags reports whether a rule matches on tags.
func (rs ruleSet) needTags() bool {
	return slices.ContainsFunc(rs, func(r certinv.GroupRule) bool { return r.Tag != "" })
}

// match returns the group id of the first rule that matches a device, or
// NoGroupID.
func (rs ruleSet) match(name, os string, tags []string) int64 {
	for i := range rs {
		if rs[i].Matches(name, os, tags) {
			return rs[i].GroupID
		}
	}
	return certinv.NoGroupID
}

// place returns the group of a device: its pinned group, else its rules'.
func (rs ruleSet) place(pin *int64, name, os string, tags []string) int64 {
	if pin != nil {
		return *pin
	}
	return rs.match(name, os, tags)
}

// tagsSQL is the expression of a devices row's tags, sorted.
const tagsSQL = `ARRAY(SELECT t.tag FROM device_tags AS t WHERE t.device_id = d.device_id ORDER BY t.tag)`

// bumpVersion records a visible change of the inventory.
func bumpVersion(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `UPDATE meta SET version = version + 1 WHERE id = 1`); err != nil {
		return fmt.Errorf("bump inventory version: %w", err)
	}
	return nil
}

// placeChunk is the most devices one UPDATE of placeAll moves.
const placeChunk = 10000

// placeAll places every device anew and bumps the version when one moved or
// a group was created (the first turns None into Unassigned). It reads the
// devices in one pass and writes only those whose group changes.
func placeAll(ctx context.Context, tx pgx.Tx, created bool) (moved int64, err error) {
	rs, err := readRules(ctx, tx)
	if err != nil {
		return 0, err
	}
	tags := `'{}'::text[]`
	if rs.needTags() {
		tags = tagsSQL
	}
	rows, err := tx.Query(ctx, `SELECT d.id, d.name, d.os, d.group_id, d.explicit_group, `+tags+` FROM devices AS d`)
	if err != nil {
		return 0, fmt.Errorf("place devices by rules: %w", err)
	}
	var ids, groups []int64
	var (
		id, group int64
		pin       *int64
		name, os  string
		tagList   []string
	)
	for rows.Next() {
		if err := rows.Scan(&id, &name, &os, &group, &pin, &tagList); err != nil {
			rows.Close()
			return 0, fmt.Errorf("place devices by rules: %w", err)
		}
		if g := rs.place(pin, name, os, tagList); g != group {
			ids, groups = append(ids, id), append(groups, g)
		}
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("place devices by rules: %w", err)
	}
	for start := 0; start < len(ids); start += placeChunk {
		end := min(start+placeChunk, len(ids))
		if _, err := tx.Exec(ctx, `UPDATE devices SET group_id = w.g FROM unnest($1::bigint[], $2::bigint[]) AS w(id, g) WHERE devices.id = w.id`,
			ids[start:end], groups[start:end]); err != nil {
			return 0, fmt.Errorf("place devices by rules: %w", err)
		}
	}
	if len(ids) > 0 || created {
		return int64(len(ids)), bumpVersion(ctx, tx)
	}
	return 0, nil
}

// placeOne places one device (row id) anew: its pinned group, else its
// rules'. It returns the group before and after, and whether the device has
// links (whether a move shows in a read).
func placeOne(ctx context.Context, tx pgx.Tx, row int64) (before, after int64, hasLinks bool, err error) {
	rs, err := readRules(ctx, tx)
	if err != nil {
		return 0, 0, false, err
	}
	var (
		pin      *int64
		name, os string
		tags     []string
	)
	if err := tx.QueryRow(ctx, `SELECT d.name, d.os, d.group_id, d.explicit_group, `+tagsSQL+`,
			EXISTS (SELECT 1 FROM links WHERE device = d.id)
		FROM devices AS d WHERE d.id = $1`, row).Scan(&name, &os, &before, &pin, &tags, &hasLinks); err != nil {
		return 0, 0, false, fmt.Errorf("read device: %w", err)
	}
	after = rs.place(pin, name, os, tags)
	if after != before {
		if _, err := tx.Exec(ctx, `UPDATE devices SET group_id = $1 WHERE id = $2`, after, row); err != nil {
			return 0, 0, false, fmt.Errorf("place device: %w", err)
		}
	}
	return before, after, hasLinks, nil
}

// placeOneAndBump places one device anew and bumps the version when its
// records move or a group was created.
func placeOneAndBump(ctx context.Context, tx pgx.Tx, row int64, created bool) error {
	before, after, hasLinks, err := placeOne(ctx, tx, row)
	if err != nil {
		return err
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
	err := db.inWriteTx(ctx, func(tx pgx.Tx) error {
		id, created, err := groupByName(ctx, tx, r.GroupName, false, true)
		if err != nil {
			return err
		}
		r.GroupID = id
		if err := tx.QueryRow(ctx, `INSERT INTO group_rules (group_id, priority, name_glob, domain_suffix, os_glob, tag, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
			id, r.Priority, r.NameGlob, r.DomainSuffix, r.OSGlob, r.Tag, db.Now().UnixMicro()).Scan(&r.ID); err != nil {
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
	return db.inWriteTx(ctx, func(tx pgx.Tx) error {
		var group string
		err := tx.QueryRow(ctx, `SELECT g.name FROM group_rules AS r JOIN groups AS g ON g.id = r.group_id WHERE r.id = $1`, id).Scan(&group)
		if errors.Is(err, pgx.ErrNoRows) {
			return certinv.Errorf(certinv.ENotFound, "there is no rule %d", id)
		}
		if err != nil {
			return fmt.Errorf("read rule %d: %w", id, err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM group_rules WHERE id = $1`, id); err != nil {
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
	return readRules(ctx, db.pool)
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
	return db.inWriteTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM device_tags WHERE device_id = $1`, deviceID); err != nil {
			return fmt.Errorf("set tags of %s: %w", deviceID, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO device_tags (device_id, tag) SELECT $1, unnest($2::text[])`, deviceID, nonNil(tags)); err != nil {
			return fmt.Errorf("set tags of %s: %w", deviceID, err)
		}
		var row int64
		err := tx.QueryRow(ctx, `SELECT id FROM devices WHERE device_id = $1`, deviceID).Scan(&row)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			// Not reported yet: ApplyDeviceSets places it when it is.
		case err != nil:
			return fmt.Errorf("read device %s: %w", deviceID, err)
		default:
			if err := placeOneAndBump(ctx, tx, row, false); err != nil {
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
	return db.inWriteTx(ctx, func(tx pgx.Tx) error {
		var row int64
		err := tx.QueryRow(ctx, `SELECT id FROM devices WHERE device_id = $1`, deviceID).Scan(&row)
		if errors.Is(err, pgx.ErrNoRows) {
			return certinv.Errorf(certinv.ENotFound, "device %s is not in the inventory", deviceID)
		}
		if err != nil {
			return fmt.Errorf("read device %s: %w", deviceID, err)
		}
		var pin *int64
		created := false
		if group != "" {
			id, c, err := groupByName(ctx, tx, group, true, true)
			if err != nil {
				return err
			}
			pin, created = &id, c
		}
		if _, err := tx.Exec(ctx, `UPDATE devices SET explicit_group = $1 WHERE id = $2`, pin, row); err != nil {
			return fmt.Errorf("pin device %s: %w", deviceID, err)
		}
		if err := placeOneAndBump(ctx, tx, row, created); err != nil {
			return err
		}
		action := "device.pin"
		if group == "" {
			action = "device.unpin"
		}
		return db.audit(ctx, tx, actor, action, deviceID, map[string]any{"group": group, "groupCreated": created})
	})
}

// DeviceAccess returns how a device is placed and enrolled, read in one
// consistent transaction.
func (db *DB) DeviceAccess(ctx context.Context, deviceID string) (*certinv.DeviceAccess, error) {
	if err := checkDeviceID(deviceID); err != nil {
		return nil, err
	}
	tx, err := db.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("read device %s: %w", deviceID, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	a := &certinv.DeviceAccess{DeviceID: deviceID}
	var hasGroups bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM groups)`).Scan(&hasGroups); err != nil {
		return nil, fmt.Errorf("read groups: %w", err)
	}
	noGroup := certinv.GroupNone
	if hasGroups {
		noGroup = certinv.GroupUnassigned
	}
	var pinned *int64
	var group, pinName *string
	err = tx.QueryRow(ctx, `SELECT d.name, d.os, d.group_id, g.name, d.explicit_group, p.name
		FROM devices AS d LEFT JOIN groups AS g ON g.id = d.group_id LEFT JOIN groups AS p ON p.id = d.explicit_group
		WHERE d.device_id = $1`, deviceID).Scan(&a.Name, &a.OS, &a.GroupID, &group, &pinned, &pinName)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return nil, fmt.Errorf("read device %s: %w", deviceID, err)
	default:
		a.Known = true
	}
	a.Group = noGroup
	if group != nil {
		a.Group = *group
	}
	if pinned != nil {
		a.PinnedGroup = noGroup
		if pinName != nil {
			a.PinnedGroup = *pinName
		}
	}
	rows, err := tx.Query(ctx, `SELECT tag FROM device_tags WHERE device_id = $1 ORDER BY tag`, deviceID)
	if err != nil {
		return nil, fmt.Errorf("read tags of %s: %w", deviceID, err)
	}
	a.Tags, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("read tags of %s: %w", deviceID, err)
	}
	if len(a.Tags) == 0 {
		a.Tags = nil
	}
	c, err := scanCredential(tx.QueryRow(ctx, credentialSQL, deviceID))
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("read credential of %s: %w", deviceID, err)
	}
	a.Credential = c
	return a, nil
}
