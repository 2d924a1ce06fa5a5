package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/certinv/certinv"
	"github.com/jackc/pgx/v5"
)

// The DB keeps the devices' reporting credentials.
var _ certinv.DeviceCredentials = (*DB)(nil)

const credentialSQL = `SELECT device_id, secret_hash, enrolled_at, revoked_at FROM device_credentials WHERE device_id = $1`

// scanCredential scans one row of credentialSQL; pgx.ErrNoRows when there
// is none.
func scanCredential(row pgx.Row) (*certinv.DeviceCredential, error) {
	var c certinv.DeviceCredential
	var hash []byte
	var enrolled, revoked *int64
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
	return db.inWriteTx(ctx, func(tx pgx.Tx) error {
		c, err := scanCredential(tx.QueryRow(ctx, credentialSQL, deviceID))
		switch {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return fmt.Errorf("read credential of %s: %w", deviceID, err)
		case c.Revoked():
			return revokedError(c)
		case c.SecretHash != [32]byte{}:
			return certinv.Errorf(certinv.EConflict, "device %s is enrolled already; an administrator can reset it (certinv device reset --id %s) so that it may enroll again", deviceID, deviceID)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO device_credentials (device_id, secret_hash, enrolled_at) VALUES ($1, $2, $3)
			ON CONFLICT (device_id) DO UPDATE SET secret_hash = excluded.secret_hash, enrolled_at = excluded.enrolled_at`,
			deviceID, secretHash[:], db.Now().UnixMicro()); err != nil {
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
	c, err := scanCredential(db.pool.QueryRow(ctx, credentialSQL, deviceID))
	if errors.Is(err, pgx.ErrNoRows) {
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
	return db.inWriteTx(ctx, func(tx pgx.Tx) error {
		ct, err := tx.Exec(ctx, `INSERT INTO device_credentials (device_id, revoked_at) VALUES ($1, $2)
			ON CONFLICT (device_id) DO UPDATE SET secret_hash = NULL, revoked_at = excluded.revoked_at
			WHERE device_credentials.revoked_at IS NULL`,
			deviceID, db.Now().UnixMicro())
		if err != nil {
			return fmt.Errorf("revoke device %s: %w", deviceID, err)
		}
		if ct.RowsAffected() == 0 {
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
	return db.inWriteTx(ctx, func(tx pgx.Tx) error {
		ct, err := tx.Exec(ctx, `DELETE FROM device_credentials WHERE device_id = $1`, deviceID)
		if err != nil {
			return fmt.Errorf("reset device %s: %w", deviceID, err)
		}
		if ct.RowsAffected() == 0 {
			return certinv.Errorf(certinv.ENotFound, "device %s has neither a credential nor a revocation", deviceID)
		}
		return db.audit(ctx, tx, actor, "device.reset", deviceID, nil)
	})
}

// microOrZero returns the time of a nullable microsecond column.
func microOrZero(v *int64) time.Time {
	if v == nil {
		return time.Time{}
	}
	return timeOfMicro(*v)
}
