package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/certinv/certinv"
)

// The DB implements certinv.AppStore.
var _ certinv.AppStore = (*DB)(nil)

const appColumns = `id, name, roles, secret_id, secret_hash, created_at, secret_created_at`

// CreateApp stores a new registered application; EConflict when its id is
// taken.
func (db *DB) CreateApp(ctx context.Context, app *certinv.App) error {
	if app == nil || app.ID == "" || app.SecretID == "" || len(app.SecretHash) != 32 {
		return errors.New("create app: id, secret id and a 32-byte secret hash are required")
	}
	roles, err := json.Marshal(nonNil(app.Roles))
	if err != nil {
		return fmt.Errorf("create app %s: %w", app.ID, err)
	}
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO apps (`+appColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
			app.ID, app.Name, string(roles), app.SecretID, app.SecretHash, app.CreatedAt.UnixMicro(), app.SecretCreatedAt.UnixMicro())
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return certinv.Errorf(certinv.EConflict, "an application with id %s exists", app.ID)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("create app %s: %w", app.ID, err)
	}
	return nil
}

// App returns the registered application id; ENotFound when there is none.
func (db *DB) App(ctx context.Context, id string) (*certinv.App, error) {
	s, err := db.stmt(ctx, db.reader, `SELECT `+appColumns+` FROM apps WHERE id = ?`)
	if err != nil {
		return nil, err
	}
	app, err := scanApp(s.QueryRowContext(ctx, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, certinv.Errorf(certinv.ENotFound, "no application with id %q", id)
	}
	if err != nil {
		return nil, fmt.Errorf("read app %s: %w", id, err)
	}
	return app, nil
}

// Apps returns every registered application, oldest first.
func (db *DB) Apps(ctx context.Context) ([]*certinv.App, error) {
	rows, err := db.reader.QueryContext(ctx, `SELECT `+appColumns+` FROM apps ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("read apps: %w", err)
	}
	defer rows.Close()
	var apps []*certinv.App
	for rows.Next() {
		app, err := scanApp(rows)
		if err != nil {
			return nil, fmt.Errorf("read apps: %w", err)
		}
		apps = append(apps, app)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read apps: %w", err)
	}
	return apps, nil
}

// SetAppSecret replaces the secret of application id; ENotFound when there
// is none.
func (db *DB) SetAppSecret(ctx context.Context, id, secretID string, hash []byte, at time.Time) error {
	if secretID == "" || len(hash) != 32 {
		return errors.New("set app secret: a secret id and a 32-byte hash are required")
	}
	return db.changeApp(ctx, id, "set secret of", `UPDATE apps SET secret_id = ?, secret_hash = ?, secret_created_at = ? WHERE id = ?`,
		secretID, hash, at.UnixMicro(), id)
}

// DeleteApp removes application id; ENotFound when there is none.
func (db *DB) DeleteApp(ctx context.Context, id string) error {
	return db.changeApp(ctx, id, "delete", `DELETE FROM apps WHERE id = ?`, id)
}

// changeApp runs a statement that changes one app row and turns "no row"
// into ENotFound.
func (db *DB) changeApp(ctx context.Context, id, what, query string, args ...any) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, query, args...)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			return certinv.Errorf(certinv.ENotFound, "no application with id %q", id)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s app %s: %w", what, id, err)
	}
	return nil
}

func scanApp(sc interface{ Scan(...any) error }) (*certinv.App, error) {
	var (
		app              certinv.App
		roles            string
		created, rotated int64
	)
	if err := sc.Scan(&app.ID, &app.Name, &roles, &app.SecretID, &app.SecretHash, &created, &rotated); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(roles), &app.Roles); err != nil {
		return nil, fmt.Errorf("roles of app %s: %w", app.ID, err)
	}
	app.CreatedAt = timeOfMicro(created)
	app.SecretCreatedAt = timeOfMicro(rotated)
	return &app, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
