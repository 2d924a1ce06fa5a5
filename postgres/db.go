// Package postgres is the PostgreSQL store of certinv, for fleets that
// outgrow one machine: the inventory (devices, certificates stored once,
// links between them), the snapshot registry, the registered applications
// and access (users' groups, rules that place devices in groups, device
// credentials, the audit log), shared by any number of stateless replicas,
// through github.com/jackc/pgx/v5.
//
// It keeps the semantics of the embedded sqlite store exactly (both pass
// storetest.Run, RunApps and RunAccess; TestPlacementAgreesWithSQLite
// compares their placement step by step). The differences are in how it
// talks to the server:
//
//   - The schema is migrated on Open by versioned, embedded migrations, each
//     in its own transaction, under a session advisory lock, so that
//     replicas starting at once apply each migration exactly once.
//   - Writes queue on one transaction-level advisory lock per schema, as
//     SQLite's writers queue on its one writer: a write is a few round trips
//     (ApplyDeviceSets reads and writes a whole batch of reports in two
//     pipelined round trips, BEGIN and COMMIT included, and COPYs many new
//     links), so the lock is held for milliseconds, and two replicas can
//     never race on a new certificate, a new group or the latest snapshot.
//   - Devices are placed in groups by Go code (certinv.GroupRule.Matches) in
//     the transaction that moves them, where the sqlite store uses triggers.
//   - ReadInventory reads through one REPEATABLE READ, READ ONLY transaction:
//     the fragments of certificates into a bounded cache, then one row per
//     device, in order, with its links as arrays, streamed as the server
//     sends them: memory stays flat.
//   - TryBuildLock gives one replica at a time the right to build snapshots.
//
// Every advisory lock key is derived from the schema's name (current_schema),
// so that several deployments, or tests, can share one database.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/certinv/certinv"
	"github.com/certinv/certinv/internal/migrate"
	"github.com/certinv/certinv/internal/refcache"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// DB is the PostgreSQL store. It implements certinv.Inventory,
// certinv.InventoryReader, certinv.SnapshotRegistry, certinv.AppStore,
// certinv.UserGroups, certinv.DeviceGroupRules, certinv.DeviceCredentials
// and certinv.AuditLog. It is safe for concurrent use, by any number of
// processes.
type DB struct {
	// Now returns the current time; it stamps snapshot publication and
	// retirement. Open sets it to time.Now.
	Now func() time.Time

	log  *slog.Logger
	pool *pgxpool.Pool

	orgMu sync.Mutex
	orgID string // cached: it never changes

	certs *refcache.Cache[certRef]

	// deviceSeq and certSeq name the sequences of devices.id and
	// certificates.id, from which ApplyDeviceSets draws new rows' ids.
	deviceSeq, certSeq string

	// fragmentBudget overrides fragmentCacheBytes, for tests.
	fragmentBudget int
}

// The advisory lock keys, each made distinct per schema by lockKeySQL.
const (
	lockMigrate = "certinv:migrate:"
	lockWrite   = "certinv:write:"
	lockBuild   = "certinv:build:"
)

// lockKeySQL is the SQL expression of the advisory lock key named $1 in the
// current schema.
const lockKeySQL = `hashtextextended($1::text || current_schema(), 0)`

// Open connects to the PostgreSQL database at url (a postgres:// URL or a
// key=value connection string, as pgx parses them) and brings its schema
// up to date. The organization's GUID is made on first Open. Tables live
// in the connection's current schema (the search_path parameter picks it).
func Open(ctx context.Context, url string, log *slog.Logger) (*DB, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's message may quote the URL, password included: keep it out.
		return nil, errors.New("open postgres: the database URL does not parse")
	}
	where := cfg.ConnConfig.Host + ":" + strconv.Itoa(int(cfg.ConnConfig.Port)) + "/" + cfg.ConnConfig.Database
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres %s: %w", where, err)
	}
	db := &DB{Now: time.Now, log: log, pool: pool, certs: refcache.New[certRef](maxCached)}
	if err := db.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres %s: %w", where, err)
	}
	if err := pool.QueryRow(ctx, `SELECT pg_get_serial_sequence('devices', 'id'), pg_get_serial_sequence('certificates', 'id')`).Scan(&db.deviceSeq, &db.certSeq); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres %s: find id sequences: %w", where, err)
	}
	return db, nil
}

// Close closes the database's connections.
func (db *DB) Close() error {
	db.pool.Close()
	return nil
}

// Ping checks that the database answers, for readiness checks.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping postgres: %w", err)
	}
	return nil
}

// migrate applies the migrations this database lacks, each in its own
// transaction, and makes the meta row, all under a session advisory lock:
// a replica that starts while another migrates waits, then finds the work
// done.
func (db *DB) migrate(ctx context.Context) error {
	ms, err := migrate.Load(migrationFS, "migrations")
	if err != nil {
		return err
	}
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(`+lockKeySQL+`)`, lockMigrate); err != nil {
		return fmt.Errorf("take the migration lock: %w", err)
	}
	defer func() {
		// A lock left behind would stall every later Open: if unlocking
		// fails, drop the connection, which ends the session and its locks.
		uctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := conn.Exec(uctx, `SELECT pg_advisory_unlock(`+lockKeySQL+`)`, lockMigrate); err != nil {
			conn.Hijack().Close(uctx)
		}
	}()

	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer PRIMARY KEY,
		name       text    NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now()
	)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	var newest int
	if err := conn.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&newest); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if newest > len(ms) {
		return fmt.Errorf("database schema version %d is newer than this program's %d", newest, len(ms))
	}
	for _, m := range ms[newest:] {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name)
			return err
		})
		if err != nil {
			return fmt.Errorf("migration %s: %w", m.Name, err)
		}
		db.log.Info("postgres: applied migration", "migration", m.Name)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO meta (id, org_id) VALUES (1, $1) ON CONFLICT (id) DO NOTHING`, certinv.NewGUID()); err != nil {
		return fmt.Errorf("make meta row: %w", err)
	}
	return nil
}

// inWriteTx runs fn in a read-committed transaction that holds the write
// lock, and commits it when fn returns nil.
func (db *DB) inWriteTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(`+lockKeySQL+`)`, lockWrite); err != nil {
			return fmt.Errorf("take the write lock: %w", err)
		}
		return fn(tx)
	})
}

// OrgID returns the organization's GUID, made when the database was created.
func (db *DB) OrgID(ctx context.Context) (string, error) {
	db.orgMu.Lock()
	defer db.orgMu.Unlock()
	if db.orgID != "" {
		return db.orgID, nil
	}
	var id string
	if err := db.pool.QueryRow(ctx, `SELECT org_id FROM meta WHERE id = 1`).Scan(&id); err != nil {
		return "", fmt.Errorf("read organization id: %w", err)
	}
	db.orgID = id
	return id, nil
}

// Version returns the inventory's version.
func (db *DB) Version(ctx context.Context) (int64, error) {
	var v int64
	if err := db.pool.QueryRow(ctx, `SELECT version FROM meta WHERE id = 1`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read inventory version: %w", err)
	}
	return v, nil
}

// Stats returns how many devices, certificates and links the store holds.
func (db *DB) Stats(ctx context.Context) (devices, certificates, links int64, err error) {
	err = db.pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM devices),
		(SELECT count(*) FROM certificates),
		(SELECT count(*) FROM links)`).Scan(&devices, &certificates, &links)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("read store stats: %w", err)
	}
	return devices, certificates, links, nil
}

// TryBuildLock tries to take the snapshot build lock of this schema: at
// most one holder at a time, across every replica. It answers at once: ok
// is false when another holds it. The holder calls release when its build
// and retirements are done.
//
// The lock is a session advisory lock on a connection of its own, taken out
// of the pool: if the holder dies, its connection ends and PostgreSQL frees
// the lock, so another replica takes over at its next try. Release unlocks
// and closes that connection; it may be called more than once.
func (db *DB) TryBuildLock(ctx context.Context) (release func(), ok bool, err error) {
	pc, err := db.pool.Acquire(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("build lock: connect: %w", err)
	}
	conn := pc.Hijack()
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(`+lockKeySQL+`)`, lockBuild).Scan(&ok); err != nil {
		conn.Close(context.Background())
		return nil, false, fmt.Errorf("build lock: %w", err)
	}
	if !ok {
		conn.Close(ctx)
		return nil, false, nil
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock(`+lockKeySQL+`)`, lockBuild); err != nil {
				db.log.Warn("postgres: unlock the build lock; closing its connection frees it", "err", err)
			}
			conn.Close(ctx)
		})
	}
	return release, true, nil
}
