package certinv

import (
	"context"
	"time"
)

// App is an application registered with the embedded token issuer: a
// client that gets access tokens with the client-credentials grant, as an
// app registration of the vendor's identity platform does. Its secret is
// never stored, only a digest of it.
type App struct {
	// ID is the client id (appid, azp): a GUID.
	ID string
	// Name is what an administrator calls it; not unique.
	Name string
	// Roles are the application permissions its tokens carry (claim roles).
	Roles []string
	// SecretID names the current secret: a GUID that changes with every
	// rotation. Tokens carry it, so that a rotation can revoke them.
	SecretID string
	// SecretHash is the digest of the current secret (32 bytes).
	SecretHash []byte
	// CreatedAt is when the app was registered; SecretCreatedAt when its
	// current secret was made.
	CreatedAt       time.Time
	SecretCreatedAt time.Time
}

// AppStore keeps the registered applications.
//
// CreateApp stores a new app; an app with the same ID is an EConflict
// error. App returns one app; an unknown id is an ENotFound error. Apps
// returns every app, oldest first (ties by ID). SetAppSecret replaces an
// app's SecretID, SecretHash and SecretCreatedAt in one step; DeleteApp
// removes an app; both return ENotFound for an unknown id. Times are kept
// to the microsecond at least and come back in UTC.
type AppStore interface {
	CreateApp(ctx context.Context, app *App) error
	App(ctx context.Context, id string) (*App, error)
	Apps(ctx context.Context) ([]*App, error)
	SetAppSecret(ctx context.Context, id, secretID string, hash []byte, at time.Time) error
	DeleteApp(ctx context.Context, id string) error
}
