package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/certinv/certinv/auth"
	"github.com/certinv/certinv/blob"
	"github.com/certinv/certinv/certparse"
	"github.com/certinv/certinv/datadir"
	"github.com/certinv/certinv/sqlite"
)

// env is everything an embedded deployment keeps in its data folder, opened.
type env struct {
	dir    *datadir.Dir
	db     *sqlite.DB
	bucket *blob.Dir
	orgID  string
	log    *slog.Logger
}

// openEnv opens (and on first use, creates) the data folder at path.
func openEnv(ctx context.Context, path string, log *slog.Logger) (*env, error) {
	dir, err := datadir.Open(path)
	if err != nil {
		return nil, err
	}
	db, err := sqlite.Open(ctx, dir.DatabasePath(), log)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	orgID, err := db.OrgID(ctx)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("read organization id: %w", err)
	}
	// Certificates stored by an older parser get their fields derived anew.
	start := time.Now()
	changed, failed, err := db.Rederive(ctx, certparse.Version, certparse.Fragment)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("derive the fields of stored certificates with parser version %d: %w", certparse.Version, err)
	}
	if changed > 0 || failed > 0 {
		log.Info("stored certificates derived anew by the current parser", "version", certparse.Version,
			"changed", changed, "refused", failed, "took", time.Since(start).Round(time.Millisecond))
	}
	bucket, err := blob.NewDir(dir.FilesPath())
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open snapshot files: %w", err)
	}
	return &env{dir: dir, db: db, bucket: bucket, orgID: orgID, log: log}, nil
}

func (e *env) Close() error { return e.db.Close() }

// issuerName is the iss claim of the embedded issuer's tokens. It does not
// depend on the server's public URL, so that `certinv token` (which runs
// without one) and `certinv serve` agree.
func issuerName(orgID string) string { return "urn:certinv:" + orgID }

// issuer returns the embedded token issuer, making its key on first use.
func (e *env) issuer() (*auth.Issuer, error) {
	key, err := auth.LoadOrCreateKey(e.dir.TokenKeyPath())
	if err != nil {
		return nil, fmt.Errorf("token signing key: %w", err)
	}
	return auth.NewIssuer(auth.IssuerConfig{Key: key, Issuer: issuerName(e.orgID), TenantID: e.orgID})
}
