// Package sqlite is the embedded store of certinv: the inventory (devices,
// certificates stored once, links between them) and the snapshot registry in
// one SQLite file, through modernc.org/sqlite (pure Go, no cgo).
//
// Several processes may use one file at once (certinv serve, seed and
// snapshot): the database runs in WAL mode, so readers never block the
// writer, and every write transaction starts with BEGIN IMMEDIATE, so
// writers queue on busy_timeout instead of failing on a lock upgrade.
// Within a process a DB holds one writer connection and a pool of readers.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/certinv/certinv"
	"github.com/certinv/certinv/internal/migrate"
	"github.com/certinv/certinv/internal/refcache"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// busyTimeout is how long a connection waits for another's lock before it
// gives up with SQLITE_BUSY. A snapshot build reads for minutes but, in WAL
// mode, takes no lock a writer waits on; writers wait only for each other.
const busyTimeout = 10 * time.Second

// DB is the SQLite store. It implements certinv.Inventory,
// certinv.InventoryReader and certinv.SnapshotRegistry. It is safe for
// concurrent use.
type DB struct {
	// Now returns the current time; it stamps snapshot publication and
	// retirement. Open sets it to time.Now.
	Now func() time.Time

	path   string
	log    *slog.Logger
	writer *sql.DB // one connection; transactions BEGIN IMMEDIATE
	reader *sql.DB // a pool of query-only connections

	orgMu sync.Mutex
	orgID string // cached: it never changes

	certs *refcache.Cache[certRef]

	// fragmentBudget overrides fragmentCacheBytes, for tests.
	fragmentBudget int

	stmtMu sync.Mutex
	stmts  map[stmtKey]*sql.Stmt
}

// stmtKey names a prepared statement on one of the pools.
type stmtKey struct {
	db    *sql.DB
	query string
}

// Open opens the SQLite database at path, creating it if needed, and brings
// its schema up to date. The organization's GUID is made on first Open.
func Open(ctx context.Context, path string, log *slog.Logger) (*DB, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if path == "" {
		return nil, errors.New("open sqlite: empty path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	db := &DB{Now: time.Now, path: abs, log: log, stmts: make(map[stmtKey]*sql.Stmt), certs: refcache.New[certRef](maxCached)}

	db.writer, err = sql.Open("sqlite", dsn(abs, false))
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", abs, err)
	}
	db.writer.SetMaxOpenConns(1)
	db.writer.SetMaxIdleConns(1)
	db.writer.SetConnMaxLifetime(0)
	db.writer.SetConnMaxIdleTime(0)

	if err := db.migrate(ctx); err != nil {
		db.writer.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", abs, err)
	}

	if err := db.prepareWriter(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", abs, err)
	}

	// Readers open after the writer has made the file and switched it to WAL.
	db.reader, err = sql.Open("sqlite", dsn(abs, true))
	if err != nil {
		db.writer.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", abs, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	db.reader.SetMaxOpenConns(n)
	db.reader.SetMaxIdleConns(n)
	if err := db.reader.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", abs, err)
	}
	return db, nil
}

// dsn returns the data source name of the database file at abs. The driver
// runs each _pragma on every connection it opens, so every pooled
// connection gets the same settings. The name is a file: URI so that any
// character of the path is escaped, not taken for the query.
func dsn(abs string, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout("+strconv.FormatInt(busyTimeout.Milliseconds(), 10)+")")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(NORMAL)")
	if readOnly {
		// A snapshot build reads every link and, through it, the
		// certificates that many devices share: a page cache of 32 MiB per
		// reader (the default is 2 MiB) keeps those in memory and reads the
		// inventory about a third faster.
		q.Add("_pragma", "cache_size(-32768)")
		q.Set("_query_only", "1")
	} else {
		q.Add("_pragma", "journal_mode(WAL)")
		q.Set("_txlock", "immediate")
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: q.Encode()}
	return u.String()
}

// Close closes the database's connections.
func (db *DB) Close() error {
	db.stmtMu.Lock()
	for _, s := range db.stmts {
		s.Close()
	}
	db.stmts = nil
	db.stmtMu.Unlock()
	var errs []error
	if db.reader != nil {
		errs = append(errs, db.reader.Close())
	}
	if db.writer != nil {
		errs = append(errs, db.writer.Close())
	}
	return errors.Join(errs...)
}

// Path returns the absolute path of the database file.
func (db *DB) Path() string { return db.path }

// migrate applies the migrations this database lacks, each in its own
// transaction, and makes the meta row. BEGIN IMMEDIATE makes two processes
// opening a new file at once apply each migration exactly once.
func (db *DB) migrate(ctx context.Context) error {
	ms, err := migrate.Load(migrationFS, "migrations")
	if err != nil {
		return err
	}
	if _, err := db.writer.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT    NOT NULL,
		applied_at INTEGER NOT NULL
	)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	var newest int
	if err := db.writer.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&newest); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if newest > len(ms) {
		return fmt.Errorf("database schema version %d is newer than this program's %d", newest, len(ms))
	}
	for _, m := range ms {
		if err := db.apply(ctx, m); err != nil {
			return fmt.Errorf("migration %s: %w", m.Name, err)
		}
	}
	return db.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO meta (id, org_id, version) VALUES (1, ?, 0) ON CONFLICT (id) DO NOTHING`, certinv.NewGUID())
		return err
	})
}

func (db *DB) apply(ctx context.Context, m migrate.Migration) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, m.Version).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
			m.Version, m.Name, time.Now().UnixNano()); err != nil {
			return err
		}
		db.log.Info("sqlite: applied migration", "path", db.path, "migration", m.Name)
		return nil
	})
}

// inTx runs fn in a write transaction (BEGIN IMMEDIATE) and commits it when
// fn returns nil.
func (db *DB) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.writer.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// stmt returns query prepared on pool, preparing it once. The writer's
// statements are all prepared by Open: preparing one needs a connection,
// and the writer's only one is held by the transaction that uses it.
func (db *DB) stmt(ctx context.Context, pool *sql.DB, query string) (*sql.Stmt, error) {
	k := stmtKey{pool, query}
	db.stmtMu.Lock()
	defer db.stmtMu.Unlock()
	if s, ok := db.stmts[k]; ok {
		return s, nil
	}
	if db.stmts == nil {
		return nil, errors.New("sqlite: database is closed")
	}
	if pool == db.writer {
		return nil, fmt.Errorf("sqlite: writer statement not prepared at Open: %.60s", query)
	}
	s, err := pool.PrepareContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("prepare %.60s: %w", query, err)
	}
	db.stmts[k] = s
	return s, nil
}

// prepareWriter prepares every statement of the writer.
func (db *DB) prepareWriter(ctx context.Context) error {
	for _, q := range writerStatements() {
		s, err := db.writer.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("prepare %.60s: %w", q, err)
		}
		db.stmts[stmtKey{db.writer, q}] = s
	}
	return nil
}

// OrgID returns the organization's GUID, made when the database was created.
func (db *DB) OrgID(ctx context.Context) (string, error) {
	db.orgMu.Lock()
	defer db.orgMu.Unlock()
	if db.orgID != "" {
		return db.orgID, nil
	}
	var id string
	if err := db.reader.QueryRowContext(ctx, `SELECT org_id FROM meta WHERE id = 1`).Scan(&id); err != nil {
		return "", fmt.Errorf("read organization id: %w", err)
	}
	db.orgID = id
	return id, nil
}

// Version returns the inventory's version.
func (db *DB) Version(ctx context.Context) (int64, error) {
	var v int64
	if err := db.reader.QueryRowContext(ctx, `SELECT version FROM meta WHERE id = 1`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read inventory version: %w", err)
	}
	return v, nil
}

// Stats returns how many devices, certificates and links the store holds.
func (db *DB) Stats(ctx context.Context) (devices, certificates, links int64, err error) {
	err = db.reader.QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM devices),
		(SELECT count(*) FROM certificates),
		(SELECT count(*) FROM links)`).Scan(&devices, &certificates, &links)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("read store stats: %w", err)
	}
	return devices, certificates, links, nil
}
