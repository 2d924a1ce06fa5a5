package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/certinv/certinv"
	"github.com/jackc/pgx/v5"
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
	ct, err := db.pool.Exec(ctx, `INSERT INTO apps (`+appColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING`,
		app.ID, app.Name, nonNil(app.Roles), app.SecretID, app.SecretHash, app.CreatedAt.UnixMicro(), app.SecretCreatedAt.UnixMicro())
	if err != nil {
		return fmt.Errorf("create app %s: %w", app.ID, err)
	}
	if ct.RowsAffected() == 0 {
		return certinv.Errorf(certinv.EConflict, "an application with id %s exists", app.ID)
	}
	return nil
}

// App returns the registered application id; ENotFound when there is none.
func (db *DB) App(ctx context.Context, id string) (*certinv.App, error) {
	app, err := scanApp(db.pool.QueryRow(ctx, `SELECT `+appColumns+` FROM apps WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, certinv.Errorf(certinv.ENotFound, "no application with id %q", id)
	}
	if err != nil {
		return nil, fmt.Errorf("read app %s: %w", id, err)
	}
	return app, nil
}

// Apps returns every registered application, oldest first (ties by id).
func (db *DB) Apps(ctx context.Context) ([]*certinv.App, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+appColumns+` FROM apps ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("read apps: %w", err)
	}
	apps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*certinv.App, error) { return scanApp(r) })
	if err != nil {
		return nil, fmt.Errorf("read apps: %w", err)
	}
	return apps, nil
}

// SetAppSecret replaces the secret of application id in one statement;
// ENotFound when there is none.
func (db *DB) SetAppSecret(ctx context.Context, id, secretID string, hash []byte, at time.Time) error {
	if secretID == "" || len(hash) != 32 {
		return errors.New("set app secret: a secret id and a 32-byte hash are required")
	}
	return db.changeApp(ctx, id, "set secret of", `UPDATE apps SET secret_id = $1, secret_hash = $2, secret_created_at = $3 WHERE id = $4`,
		secretID, hash, at.UnixMicro(), id)
}

// DeleteApp removes application id; ENotFound when there is none.
func (db *DB) DeleteApp(ctx context.Context, id string) error {
	return db.changeApp(ctx, id, "delete", `DELETE FROM apps WHERE id = $1`, id)
}

// changeApp runs a statement that changes one app row and turns "no row"
// into ENotFound.
func (db *DB) changeApp(ctx context.Context, id, what, query string, args ...any) error {
	ct, err := db.pool.Exec(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("%s app %s: %w", what, id, err)
	}
	if ct.RowsAffected() == 0 {
		return certinv.Errorf(certinv.ENotFound, "no application with id %q", id)
	}
	return nil
}

func scanApp(sc pgx.Row) (*certinv.App, error) {
	var (
		app              certinv.App
		created, rotated int64
	)
	if err := sc.Scan(&app.ID, &app.Name, &app.Roles, &app.SecretID, &app.SecretHash, &created, &rotated); err != nil {
		return nil, err
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
