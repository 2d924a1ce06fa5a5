package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/certinv/certinv"
	"github.com/jackc/pgx/v5"
)

// The DB keeps the users' RBAC groups.
var _ certinv.UserGroups = (*DB)(nil)

// groupByName returns the id of the named group within tx. "None" and
// "Unassigned" name the devices of no group (NoGroupID) when noGroup is
// true. A group that does not exist is made when create is true, and is
// ENotFound otherwise.
func groupByName(ctx context.Context, tx pgx.Tx, name string, noGroup, create bool) (id int64, created bool, err error) {
	if name == certinv.GroupNone || name == certinv.GroupUnassigned {
		if !noGroup {
			return 0, false, certinv.Errorf(certinv.EInvalid, "%q is not a group one can place devices in", name)
		}
		return certinv.NoGroupID, false, nil
	}
	if strings.TrimSpace(name) == "" || len(name) > certinv.MaxGroupNameBytes {
		return 0, false, certinv.Errorf(certinv.EInvalid, "a group name is 1 to %d bytes", certinv.MaxGroupNameBytes)
	}
	err = tx.QueryRow(ctx, `SELECT id FROM groups WHERE name = $1`, name).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		if !create {
			return 0, false, certinv.Errorf(certinv.ENotFound, "there is no group %q", name)
		}
		err = tx.QueryRow(ctx, `INSERT INTO groups (name) VALUES ($1) RETURNING id`, name).Scan(&id)
		created = true
	}
	if err != nil {
		return 0, false, fmt.Errorf("group %q: %w", name, err)
	}
	return id, created, nil
}

// GrantUserGroup gives user the named group; see certinv.UserGroups.
func (db *DB) GrantUserGroup(ctx context.Context, actor, user, group string) error {
	key, err := certinv.UserKey(user)
	if err != nil {
		return err
	}
	return db.inWriteTx(ctx, func(tx pgx.Tx) error {
		id, _, err := groupByName(ctx, tx, group, true, false)
		if err != nil {
			return err
		}
		ct, err := tx.Exec(ctx, `INSERT INTO user_groups (user_key, user_name, group_id, granted_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
			key, strings.TrimSpace(user), id, db.Now().UnixMicro())
		if err != nil {
			return fmt.Errorf("grant group %q to %s: %w", group, key, err)
		}
		if ct.RowsAffected() == 0 {
			return nil // held already: nothing happened, nothing to record
		}
		return db.audit(ctx, tx, actor, "user.grant", key, map[string]any{"group": group, "groupId": id})
	})
}

// RevokeUserGroup takes the named group from user; see certinv.UserGroups.
func (db *DB) RevokeUserGroup(ctx context.Context, actor, user, group string) error {
	key, err := certinv.UserKey(user)
	if err != nil {
		return err
	}
	return db.inWriteTx(ctx, func(tx pgx.Tx) error {
		id, _, err := groupByName(ctx, tx, group, true, false)
		if err != nil {
			return err
		}
		ct, err := tx.Exec(ctx, `DELETE FROM user_groups WHERE user_key = $1 AND group_id = $2`, key, id)
		if err != nil {
			return fmt.Errorf("revoke group %q from %s: %w", group, key, err)
		}
		if ct.RowsAffected() == 0 {
			return certinv.Errorf(certinv.ENotFound, "%s does not hold the group %q", key, group)
		}
		return db.audit(ctx, tx, actor, "user.revoke", key, map[string]any{"group": group, "groupId": id})
	})
}

// UserGrants returns the grants of user, or of every user when user is "".
func (db *DB) UserGrants(ctx context.Context, user string) ([]certinv.UserGrant, error) {
	q := `SELECT u.user_name, u.group_id, coalesce(g.name, ''), u.granted_at, EXISTS (SELECT 1 FROM groups)
		FROM user_groups u LEFT JOIN groups g ON g.id = u.group_id`
	var args []any
	if user != "" {
		key, err := certinv.UserKey(user)
		if err != nil {
			return nil, err
		}
		q += ` WHERE u.user_key = $1`
		args = append(args, key)
	}
	q += ` ORDER BY u.user_key, u.group_id`
	rows, err := db.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read user grants: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (certinv.UserGrant, error) {
		var g certinv.UserGrant
		var at int64
		var hasGroups bool
		if err := r.Scan(&g.User, &g.GroupID, &g.GroupName, &at, &hasGroups); err != nil {
			return g, err
		}
		if g.GroupID == certinv.NoGroupID {
			g.GroupName = certinv.GroupNone
			if hasGroups {
				g.GroupName = certinv.GroupUnassigned
			}
		}
		g.GrantedAt = timeOfMicro(at)
		return g, nil
	})
	if err != nil {
		return nil, fmt.Errorf("read user grants: %w", err)
	}
	return out, nil
}

// UserGroupIDs returns the groups granted to the user by oid or upn: two
// probes of the primary key, on every delegated request.
func (db *DB) UserGroupIDs(ctx context.Context, oid, upn string) ([]int64, error) {
	// Keys as stored: an empty or invalid name keys nothing.
	oid, _ = certinv.UserKey(oid)
	upn, _ = certinv.UserKey(upn)
	if oid == "" && upn == "" {
		return nil, nil
	}
	if oid == "" {
		oid = upn
	} else if upn == "" {
		upn = oid
	}
	rows, err := db.pool.Query(ctx, `SELECT DISTINCT group_id FROM user_groups WHERE user_key IN ($1, $2) ORDER BY group_id`, oid, upn)
	if err != nil {
		return nil, fmt.Errorf("read groups of user: %w", err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read groups of user: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read groups of user: %w", err)
	}
	return ids, nil
}
