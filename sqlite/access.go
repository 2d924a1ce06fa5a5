package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/certinv/certinv"
)

// The DB keeps the users' RBAC groups.
var _ certinv.UserGroups = (*DB)(nil)

// groupByName returns the id of the named group within tx. "None" and
// "Unassigned" name the devices of no group (NoGroupID) when noGroup is
// true. A group that does not exist is made when create is true, and is
// ENotFound otherwise.
func groupByName(ctx context.Context, tx *sql.Tx, name string, noGroup, create bool) (id int64, created bool, err error) {
	if name == certinv.GroupNone || name == certinv.GroupUnassigned {
		if !noGroup {
			return 0, false, certinv.Errorf(certinv.EInvalid, "%q is not a group one can place devices in", name)
		}
		return certinv.NoGroupID, false, nil
	}
	if strings.TrimSpace(name) == "" || len(name) > certinv.MaxGroupNameBytes {
		return 0, false, certinv.Errorf(certinv.EInvalid, "a group name is 1 to %d bytes", certinv.MaxGroupNameBytes)
	}
	err = tx.QueryRowContext(ctx, `SELECT id FROM groups WHERE name = ?`, name).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		if !create {
			return 0, false, certinv.Errorf(certinv.ENotFound, "there is no group %q", name)
		}
		err = tx.QueryRowContext(ctx, `INSERT INTO groups (name) VALUES (?) RETURNING id`, name).Scan(&id)
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
	return db.inTx(ctx, func(tx *sql.Tx) error {
		id, _, err := groupByName(ctx, tx, group, true, false)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO user_groups (user_key, user_name, group_id, granted_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			key, strings.TrimSpace(user), id, db.Now().UnixMicro())
		if err != nil {
			return fmt.Errorf("grant group %q to %s: %w", group, key, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
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
	return db.inTx(ctx, func(tx *sql.Tx) error {
		id, _, err := groupByName(ctx, tx, group, true, false)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM user_groups WHERE user_key = ? AND group_id = ?`, key, id)
		if err != nil {
			return fmt.Errorf("revoke group %q from %s: %w", group, key, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return certinv.Errorf(certinv.ENotFound, "%s does not hold the group %q", key, group)
		}
		return db.audit(ctx, tx, actor, "user.revoke", key, map[string]any{"group": group, "groupId": id})
	})
}

// UserGrants returns the grants of user, or of every user when user is "".
func (db *DB) UserGrants(ctx context.Context, user string) ([]certinv.UserGrant, error) {
	q := `SELECT u.user_name, u.group_id, coalesce(g.name, ''), u.granted_at FROM user_groups u LEFT JOIN groups g ON g.id = u.group_id`
	var args []any
	if user != "" {
		key, err := certinv.UserKey(user)
		if err != nil {
			return nil, err
		}
		q += ` WHERE u.user_key = ?`
		args = append(args, key)
	}
	q += ` ORDER BY u.user_key, u.group_id`
	hasGroups, err := db.hasGroups(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := db.reader.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read user grants: %w", err)
	}
	defer rows.Close()
	var out []certinv.UserGrant
	for rows.Next() {
		var g certinv.UserGrant
		var at int64
		if err := rows.Scan(&g.User, &g.GroupID, &g.GroupName, &at); err != nil {
			return nil, fmt.Errorf("read user grants: %w", err)
		}
		if g.GroupID == certinv.NoGroupID {
			g.GroupName = certinv.GroupNone
			if hasGroups {
				g.GroupName = certinv.GroupUnassigned
			}
		}
		g.GrantedAt = timeOfMicro(at)
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read user grants: %w", err)
	}
	return out, nil
}

func (db *DB) hasGroups(ctx context.Context) (bool, error) {
	var n int
	if err := db.reader.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM groups)`).Scan(&n); err != nil {
		return false, fmt.Errorf("read groups: %w", err)
	}
	return n == 1, nil
}

// userGroupIDsSQL is the query of every delegated request: two lookups of
// the primary key.
const userGroupIDsSQL = `SELECT DISTINCT group_id FROM user_groups WHERE user_key IN (?, ?) ORDER BY group_id`

// UserGroupIDs returns the groups granted to the user by oid or upn.
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
	s, err := db.stmt(ctx, db.reader, userGroupIDsSQL)
	if err != nil {
		return nil, err
	}
	rows, err := s.QueryContext(ctx, oid, upn)
	if err != nil {
		return nil, fmt.Errorf("read groups of user: %w", err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("read groups of user: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read groups of user: %w", err)
	}
	return ids, nil
}
