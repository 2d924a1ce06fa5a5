package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/certinv/certinv"
	"github.com/certinv/certinv/auth"
	"github.com/certinv/certinv/blob"
	"github.com/certinv/certinv/blob/azure"
	"github.com/certinv/certinv/certparse"
	"github.com/certinv/certinv/datadir"
	"github.com/certinv/certinv/postgres"
	"github.com/certinv/certinv/sqlite"
)

// Store is what the commands need of a store: the domain's interfaces,
// which both the embedded SQLite store and the PostgreSQL store implement,
// and two maintenance calls.
type Store interface {
	certinv.Inventory
	certinv.InventoryReader
	certinv.SnapshotRegistry
	certinv.AppStore
	certinv.UserGroups
	certinv.DeviceGroupRules
	certinv.DeviceCredentials
	certinv.AuditLog

	// Stats returns how many devices, distinct certificates and records
	// (links) the store holds.
	Stats(ctx context.Context) (devices, certificates, links int64, err error)
	// Rederive derives the stored certificates' record fragments anew when
	// the parser's version changed.
	Rederive(ctx context.Context, version int, derive func(der []byte) ([]byte, error)) (changed, failed int, err error)
	Close() error
}

// Both stores are Stores.
var (
	_ Store = (*sqlite.DB)(nil)
	_ Store = (*postgres.DB)(nil)
)

// buildLocker is a store that gives one process at a time the right to
// build snapshots (postgres.DB): replicas that share a store take turns.
type buildLocker interface {
	TryBuildLock(ctx context.Context) (release func(), ok bool, err error)
}

// pinger is a dependency that can say whether it answers, for /readyz.
type pinger interface {
	Ping(ctx context.Context) error
}

// storeOptions say where a command's state lives: by default all of it in
// the data folder (SQLite, snapshot files, keys); with --db, --blob and
// --keys, in PostgreSQL, Azure Blob Storage and a folder of keys shared by
// every replica.
type storeOptions struct {
	data    string
	db      string
	blob    string
	blobKey string
	keys    string
}

// flagSet is the part of flag.FlagSet that options register on.
type flagSet interface {
	StringVar(*string, string, string, string)
}

func (o *storeOptions) register(fs flagSet) {
	fs.StringVar(&o.data, "data", envOr("CERTINV_DATA", o.data), "data folder: the SQLite database, snapshot files and keys, unless --db, --blob and --keys say otherwise (env CERTINV_DATA)")
	fs.StringVar(&o.db, "db", envOr("CERTINV_DB", ""), "PostgreSQL URL (postgres://user:password@host:5432/db?sslmode=verify-full) instead of the data folder's SQLite (env CERTINV_DB)")
	fs.StringVar(&o.blob, "blob", envOr("CERTINV_BLOB", ""), "Azure Blob Storage for snapshot files instead of the data folder: a connection string with an account key, or the account URL https://ACCOUNT.blob.core.windows.net with --blob-key (env CERTINV_BLOB)")
	fs.StringVar(&o.blobKey, "blob-key", envOr("CERTINV_BLOB_KEY", ""), "the storage account key (base64) when --blob is an account URL (env CERTINV_BLOB_KEY; prefer the variable: flags show in process lists)")
	fs.StringVar(&o.keys, "keys", envOr("CERTINV_KEYS", ""), "folder of the keys every replica must share: token signing, skiptoken signing, enrollment secret (env CERTINV_KEYS; default: the data folder's)")
}

// commandFlags returns the flags that name this state on another
// command's line, for hints: never a secret (the database URL and the
// storage account are named by their environment variables).
func (o *storeOptions) commandFlags() string {
	var f []string
	if o.data != "" {
		abs, err := filepath.Abs(o.data)
		if err != nil {
			abs = o.data
		}
		f = append(f, "--data "+abs)
	}
	if o.db != "" {
		f = append(f, `--db "$CERTINV_DB"`)
	}
	if o.keys != "" {
		f = append(f, "--keys "+o.keys)
	}
	return strings.Join(f, " ")
}

// needs says which parts of the state a command uses.
type needs struct {
	bucket bool // snapshot files
	keys   bool // signing keys and the enrollment secret
}

// check validates the options for a command that needs n: the data folder
// is required for whatever --db, --blob and --keys leave to it.
func (o *storeOptions) check(cmd string, n needs) error {
	if o.data != "" {
		return nil
	}
	var missing []string
	if o.db == "" {
		missing = append(missing, "the database (or --db URL)")
	}
	if n.bucket && o.blob == "" {
		missing = append(missing, "the snapshot files (or --blob)")
	}
	if n.keys && o.keys == "" {
		missing = append(missing, "the keys (or --keys DIR)")
	}
	if len(missing) == 0 {
		return nil
	}
	if o.db == "" {
		return &usageError{cmd + ": --data DIR is required"}
	}
	return &usageError{fmt.Sprintf("%s: --data DIR is required for %s", cmd, strings.Join(missing, " and "))}
}

// env is a command's state, opened: the store, the bucket of snapshot
// files and the keys.
type env struct {
	store  Store
	bucket blob.Bucket // nil unless the command needs it
	// local is the data folder's bucket when the files are kept there
	// (served by the server itself under /files/); nil with Azure.
	local *blob.Dir
	// azure is the Azure bucket with --blob; nil otherwise.
	azure *azure.Bucket
	keys  keyring // nil unless the command needs keys
	dir   *datadir.Dir
	orgID string
	log   *slog.Logger
	// where describes the state for messages, without secrets.
	where string
	// dbKind and blobKind name the backends ("sqlite", "postgres";
	// "files", "azure") for /readyz and the log.
	dbKind, blobKind string
}

// openEnv opens (and on first use, creates) what the command needs of the
// state o names.
// openStore parses the flags of a command that needs only the store, and
// opens it, logging warnings only.
func openStore(ctx context.Context, fs *flag.FlagSet, so *storeOptions, args []string, stderr io.Writer) (*env, error) {
	if err := parse(fs, args); err != nil {
		return nil, err
	}
	if err := so.check(strings.TrimPrefix(fs.Name(), "certinv "), needs{}); err != nil {
		return nil, err
	}
	log, _ := newLogger(stderr, "warn")
	return openEnv(ctx, so, needs{}, log)
}

func openEnv(ctx context.Context, o *storeOptions, n needs, log *slog.Logger) (_ *env, err error) {
	e := &env{log: log}
	if o.data != "" && (o.db == "" || (n.bucket && o.blob == "") || (n.keys && o.keys == "")) {
		if e.dir, err = datadir.Open(o.data); err != nil {
			return nil, err
		}
	}
	var where []string
	if o.db == "" {
		db, err := sqlite.Open(ctx, e.dir.DatabasePath(), log)
		if err != nil {
			return nil, fmt.Errorf("open database: %w", err)
		}
		e.store, e.dbKind = db, "sqlite"
		where = append(where, e.dir.Root)
	} else {
		if e.store, err = openPostgres(ctx, o.db, log); err != nil {
			return nil, err
		}
		e.dbKind = "postgres"
		where = append(where, redactDB(o.db))
	}
	defer func() {
		if err != nil {
			e.store.Close()
		}
	}()
	if e.orgID, err = e.store.OrgID(ctx); err != nil {
		return nil, fmt.Errorf("read organization id: %w", err)
	}
	// Certificates stored by an older parser get their fields derived anew.
	start := time.Now()
	changed, failed, err := e.store.Rederive(ctx, certparse.Version, certparse.Fragment)
	if err != nil {
		return nil, fmt.Errorf("derive the fields of stored certificates with parser version %d: %w", certparse.Version, err)
	}
	if changed > 0 || failed > 0 {
		log.Info("stored certificates derived anew by the current parser", "version", certparse.Version,
			"changed", changed, "refused", failed, "took", time.Since(start).Round(time.Millisecond))
	}
	if n.bucket {
		if o.blob == "" {
			if e.local, err = blob.NewDir(e.dir.FilesPath()); err != nil {
				return nil, fmt.Errorf("open snapshot files: %w", err)
			}
			e.bucket, e.blobKind = e.local, "files"
			if o.db != "" {
				where = append(where, e.dir.FilesPath())
			}
		} else {
			cfg, desc, err := azureConfig(o.blob, o.blobKey)
			if err != nil {
				return nil, err
			}
			if e.azure, err = azure.NewBucket(ctx, cfg); err != nil {
				return nil, fmt.Errorf("open Azure Blob Storage %s: %w", desc, err)
			}
			e.bucket, e.blobKind = e.azure, "azure"
			where = append(where, desc)
		}
	}
	if n.keys {
		if o.keys == "" {
			e.keys = e.dir
		} else {
			// Made when missing (a read-only mount exists already).
			_ = os.MkdirAll(o.keys, 0o700)
			e.keys = keyDir(o.keys)
			where = append(where, "keys "+o.keys)
		}
	}
	e.where = strings.Join(where, ", ")
	return e, nil
}

// openPostgres opens the PostgreSQL store at url (migrating its schema).
func openPostgres(ctx context.Context, url string, log *slog.Logger) (Store, error) {
	db, err := postgres.Open(ctx, url, log)
	if err != nil {
		return nil, fmt.Errorf("open PostgreSQL %s: %w", redactDB(url), err)
	}
	return db, nil
}

func (e *env) Close() error { return e.store.Close() }

// issuerName is the iss claim of the embedded issuer's tokens. It does not
// depend on the server's public URL, so that `certinv token` (which runs
// without one) and `certinv serve` agree.
func issuerName(orgID string) string { return "urn:certinv:" + orgID }

// issuer returns the embedded token issuer, making its key on first use.
func (e *env) issuer() (*auth.Issuer, error) {
	key, err := auth.LoadOrCreateKey(e.keys.TokenKeyPath())
	if err != nil {
		return nil, fmt.Errorf("token signing key: %w", err)
	}
	return auth.NewIssuer(auth.IssuerConfig{Key: key, Issuer: issuerName(e.orgID), TenantID: e.orgID})
}
