package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/certinv/certinv"
)

// The DB keeps the devices' reporting credentials.
var _ certinv.DeviceCredentials = (*DB)(nil)

const credentialSQL = `SELECT device_id, secret_hash, enrolled_at, revoked_at FROM device_credentials WHERE device_id = ?`

// scanCredential scans one row of credentialSQL; sql.ErrNoRows when there
// is none.
func scanCredential(row *sql.Row) (*certinv.DeviceCredential, error) {
	var c certinv.DeviceCredential
	var hash []byte
	var enrolled, revoked sql.NullInt64
	if err := row.Scan(&c.DeviceID, &hash, &enrolled, &revoked); err != nil {
		return nil, err
	}
	if hash != nil {
		if len(hash) != 32 {
			return nil, fmt.Errorf("credential of %s: corrupt secret hash", c.DeviceID)
		}
		c.SecretHash = [32]byte(hash)
	}
	c.EnrolledAt = microOrZero(enrolled)
	c.RevokedAt = microOrZero(revoked)
	return &c, nil
}

// EnrollDevice stores the credential of a device that has none.
func (db *DB) EnrollDevice(ctx context.Context, deviceID string, secretHash [32]byte) error {
	if err := checkDeviceID(deviceID); err != nil {
		return err
	}
	if secretHash == [32]byte{} {
		return errors.New("enroll device: empty secret hash")
	}
	return db.inTx(ctx, func(tx *sql.Tx) error {
		c, err := scanCredential(tx.QueryRowContext(ctx, credentialSQL, deviceID))
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return fmt.Errorf("read credential of %s: %w", deviceID, err)
		case c.Revoked():
			return revokedError(c)
		case c.SecretHash != [32]byte{}:
			return certinv.Errorf(certinv.EConflict, "device %s is enrolled already; an administrator can reset it (certinv device reset --id %s) so that it may enroll again", deviceID, deviceID)
		}
		now := db.Now().UnixMicro()
		if _, err := tx.ExecContext(ctx, `INSERT INTO device_credentials (device_id, secret_hash, enrolled_at) VALUES (?, ?, ?)
			ON CONFLICT (device_id) DO UPDATE SET secret_hash = excluded.secret_hash, enrolled_at = excluded.enrolled_at`,
			deviceID, secretHash[:], now); err != nil {
			return fmt.Errorf("enroll device %s: %w", deviceID, err)
		}
		return db.audit(ctx, tx, "device:"+deviceID, "device.enroll", deviceID, nil)
	})
}

// revokedError is the answer to a revoked device.
func revokedError(c *certinv.DeviceCredential) error {
	return certinv.Errorf(certinv.EForbidden, "device %s was revoked by an administrator at %s; its reports and enrollments are refused until an administrator resets it",
		c.DeviceID, c.RevokedAt.UTC().Format(certinv.TimeFormat))
}

// DeviceCredential returns a device's credential; ENotFound when it has none.
func (db *DB) DeviceCredential(ctx context.Context, deviceID string) (*certinv.DeviceCredential, error) {
	if !certinv.ValidDeviceID(deviceID) {
		return nil, certinv.Errorf(certinv.ENotFound, "device %q has no credential", deviceID)
	}
	s, err := db.stmt(ctx, db.reader, credentialSQL)
	if err != nil {
		return nil, err
	}
	c, err := scanCredential(s.QueryRowContext(ctx, deviceID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, certinv.Errorf(certinv.ENotFound, "device %s has no credential", deviceID)
	}
	if err != nil {
		return nil, fmt.Errorf("read credential of %s: %w", deviceID, err)
	}
	return c, nil
}

// RevokeDevice refuses the device's reports and enrollments from now on.
// Revoking a revoked device changes nothing.
func (db *DB) RevokeDevice(ctx context.Context, actor, deviceID string) error {
	if err := checkDeviceID(deviceID); err != nil {
		return err
	}
	return db.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO device_credentials (device_id, revoked_at) VALUES (?, ?)
			ON CONFLICT (device_id) DO UPDATE SET secret_hash = NULL, revoked_at = excluded.revoked_at WHERE revoked_at IS NULL`,
			deviceID, db.Now().UnixMicro())
		if err != nil {
			return fmt.Errorf("revoke device %s: %w", deviceID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil // revoked already
		}
		return db.audit(ctx, tx, actor, "device.revoke", deviceID, nil)
	})
}

// ResetDevice deletes a device's credential and revocation.
func (db *DB) ResetDevice(ctx context.Context, actor, deviceID string) error {
	if err := checkDeviceID(deviceID); err != nil {
		return err
	}
	return db.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM device_credentials WHERE device_id = ?`, deviceID)
		if err != nil {
			return fmt.Errorf("reset device %s: %w", deviceID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return certinv.Errorf(certinv.ENotFound, "device %s has neither a credential nor a revocation", deviceID)
		}
		return db.audit(ctx, tx, actor, "device.reset", deviceID, nil)
	})
}
