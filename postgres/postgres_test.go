package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"maps"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certinv/certinv"
	"github.com/certinv/certinv/internal/migrate"
	"github.com/certinv/certinv/storetest"
	"github.com/jackc/pgx/v5"
)

// envPostgres names the variable that holds the URL of the PostgreSQL
// server the tests run against; scripts/services.sh starts one and sets it.
const envPostgres = "CERTINV_TEST_POSTGRES"

// serverURL returns the test server's URL, or fails the test: a store test
// that cannot reach its database must not pass unseen.
func serverURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv(envPostgres)
	if u == "" {
		tb.Fatalf("%s is not set: the PostgreSQL store is tested against a real server. "+
			"Run scripts/services.sh (as root) and then . \"$(scripts/services.sh env)\", or set %s to a postgres:// URL of a superuser",
			envPostgres, envPostgres)
	}
	return u
}

// newSchema makes an empty schema on the test server, dropped when the test
// ends, and returns a URL whose connections use it.
func newSchema(tb testing.TB) string {
	tb.Helper()
	ctx := context.Background()
	base := serverURL(tb)
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		tb.Fatalf("%s=%q: want a postgres:// URL", envPostgres, base)
	}
	var b [6]byte
	rand.Read(b[:])
	schema := "certinv_test_" + hex.EncodeToString(b[:])
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		tb.Fatalf("connect to %s: %v", envPostgres, err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, `CREATE SCHEMA `+schema); err != nil {
		tb.Fatalf("create schema: %v", err)
	}
	tb.Cleanup(func() {
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
	})
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func openURL(tb testing.TB, u string) *DB {
	tb.Helper()
	db, err := Open(context.Background(), u, slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func openTest(tb testing.TB) *DB { return openURL(tb, newSchema(tb)) }

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store { return openTest(t) })
}

func TestOpenBadURL(t *testing.T) {
	const secret = "hunter2-secret"
	_, err := Open(context.Background(), "postgres://u:"+secret+"@host:notaport/db", nil)
	if err == nil {
		t.Fatal("Open of a URL with a bad port succeeded, want an error")
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("Open error %q shows the password", err)
	}
}

// TestMigrateConcurrently opens a new schema from several replicas at once:
// each migration is applied once, and all agree on the organization.
func TestMigrateConcurrently(t *testing.T) {
	ctx := context.Background()
	u := newSchema(t)
	const replicas = 4
	dbs := make([]*DB, replicas)
	errs := make([]error, replicas)
	var wg sync.WaitGroup
	for i := range replicas {
		wg.Go(func() { dbs[i], errs[i] = Open(ctx, u, nil) })
	}
	wg.Wait()
	var org string
	for i := range replicas {
		if errs[i] != nil {
			t.Fatalf("Open by replica %d: %v", i, errs[i])
		}
		defer dbs[i].Close()
		got, err := dbs[i].OrgID(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			org = got
		} else if got != org {
			t.Errorf("OrgID() of replica %d = %q, want %q (replica 0's)", i, got, org)
		}
	}
	var n, metas int
	if err := dbs[0].pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM schema_migrations), (SELECT count(*) FROM meta)`).Scan(&n, &metas); err != nil {
		t.Fatal(err)
	}
	ms, _ := migrate.Load(migrationFS, "migrations")
	if n != len(ms) || metas != 1 {
		t.Errorf("after %d concurrent opens: %d migrations recorded, %d meta rows; want %d, 1", replicas, n, metas, len(ms))
	}
}

func TestReopenKeepsState(t *testing.T) {
	ctx := context.Background()
	u := newSchema(t)
	db := openURL(t, u)
	org, _ := db.OrgID(ctx)
	c := storetest.NewCertificates(t, 1)[0]
	set := certinv.DeviceSet{
		Device: certinv.Device{ID: strings.Repeat("ab", 20), Name: "a.example.com", CollectedAt: time.Now()},
		Links:  []certinv.Link{{Path: "p", SHA256: c.SHA256}},
		New:    []certinv.StoredCertificate{c.Stored()},
	}
	if res, err := db.ApplyDeviceSets(ctx, []certinv.DeviceSet{set}); err != nil || res[0].Err != nil {
		t.Fatalf("ApplyDeviceSets: %v %v", err, res)
	}
	v, _ := db.Version(ctx)
	db.Close()

	db = openURL(t, u)
	if got, err := db.OrgID(ctx); err != nil || got != org {
		t.Errorf("OrgID() after reopening = %q, %v; want %q", got, err, org)
	}
	if got, _ := db.Version(ctx); got != v {
		t.Errorf("Version() after reopening = %d, want %d", got, v)
	}
	devices, certs, links, err := db.Stats(ctx)
	if err != nil || devices != 1 || certs != 1 || links != 1 {
		t.Errorf("Stats() = %d, %d, %d, %v; want 1, 1, 1, nil", devices, certs, links, err)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	ctx := context.Background()
	u := newSchema(t)
	db := openURL(t, u)
	if _, err := db.pool.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES (999, '0999_future.sql')`); err != nil {
		t.Fatal(err)
	}
	if db2, err := Open(ctx, u, nil); err == nil {
		db2.Close()
		t.Errorf("Open of a database with a newer schema succeeded, want an error")
	}
}

// TestTwoReplicas writes through two handles of one database at once, as
// two replicas do, including the same new certificates.
func TestTwoReplicas(t *testing.T) {
	ctx := context.Background()
	u := newSchema(t)
	a, b := openURL(t, u), openURL(t, u)
	cs := storetest.NewCertificates(t, 2)
	done := make(chan error, 2)
	for i, db := range []*DB{a, b} {
		go func() {
			var err error
			for n := range 20 {
				set := certinv.DeviceSet{
					Device: certinv.Device{ID: strings.Repeat("0", 38) + string("0123456789abcdef"[i]) + string("0123456789abcdef"[n%16]), Name: "h", CollectedAt: time.Unix(int64(n), 0)},
					Links:  []certinv.Link{{Path: "p", SHA256: cs[0].SHA256}, {Path: "q", SHA256: cs[1].SHA256}},
					New:    []certinv.StoredCertificate{cs[0].Stored(), cs[1].Stored()},
				}
				var res []certinv.SetResult
				if res, err = db.ApplyDeviceSets(ctx, []certinv.DeviceSet{set}); err == nil {
					err = res[0].Err
				}
				if err != nil {
					break
				}
			}
			done <- err
		}()
	}
	for range 2 {
		if err := <-done; err != nil {
			t.Errorf("ApplyDeviceSets through two replicas: %v", err)
		}
	}
	devices, certs, links, err := b.Stats(ctx)
	if err != nil || devices != 32 || certs != 2 || links != 64 {
		t.Errorf("Stats() = %d, %d, %d, %v; want 32, 2, 64, nil", devices, certs, links, err)
	}
}

// TestPublishRace publishes from two replicas at once, many times: there is
// always exactly one latest snapshot.
func TestPublishRace(t *testing.T) {
	ctx := context.Background()
	u := newSchema(t)
	dbs := []*DB{openURL(t, u), openURL(t, u)}
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for _, db := range dbs {
		wg.Go(func() {
			for range 10 {
				id := certinv.NewGUID()
				errs <- db.PublishSnapshot(ctx, &certinv.Snapshot{ID: id, GeneratedAt: time.Unix(1.8e9, 0), ManifestKey: id + "/manifest.json"})
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("PublishSnapshot: %v", err)
		}
	}
	ps, err := dbs[0].Snapshots(ctx)
	if err != nil {
		t.Fatal(err)
	}
	latest := 0
	for _, p := range ps {
		if p.SupersededAt.IsZero() {
			latest++
		}
	}
	if len(ps) != 20 || latest != 1 {
		t.Errorf("after 20 concurrent publishes: %d snapshots, %d of them latest; want 20, 1", len(ps), latest)
	}
}

func TestBuildLock(t *testing.T) {
	ctx := context.Background()
	u := newSchema(t)
	a, b := openURL(t, u), openURL(t, u)
	other := openTest(t) // another schema: another deployment

	release, ok, err := a.TryBuildLock(ctx)
	if err != nil || !ok {
		t.Fatalf("first TryBuildLock = %v, %v; want it taken", ok, err)
	}
	if _, ok, err := b.TryBuildLock(ctx); err != nil || ok {
		t.Fatalf("TryBuildLock by a second replica while held = %v, %v; want false, nil", ok, err)
	}
	if rel, ok, err := other.TryBuildLock(ctx); err != nil || !ok {
		t.Errorf("TryBuildLock in another schema = %v, %v; want true (each deployment has its own lock)", ok, err)
	} else {
		rel()
	}
	release()
	release() // twice is harmless
	relB, ok, err := b.TryBuildLock(ctx)
	if err != nil || !ok {
		t.Fatalf("TryBuildLock after release = %v, %v; want it taken", ok, err)
	}

	// The holder dies: its session ends, and another replica takes over.
	var killed int
	err = b.pool.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
		AND ((classid::bigint << 32) | objid::bigint) = `+lockKeySQL, lockBuild).Scan(&killed)
	if err != nil || killed != 1 {
		t.Fatalf("terminate the holder's session: %d terminated, %v; want 1", killed, err)
	}
	var took bool
	for range 100 { // the server frees the lock as the backend exits
		rel, ok, err := a.TryBuildLock(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			rel()
			took = true
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !took {
		t.Errorf("TryBuildLock after the holder's session died: never taken, want it taken")
	}
	relB() // on a dead connection: logs, does not panic
}

// TestUpgradeFromFirstSchema opens a database made by the first schema,
// with a device placed in a group at ingest: the access migrations keep it
// there, pinned, and the links lose no row to the new migrations.
func TestUpgradeFromFirstSchema(t *testing.T) {
	ctx := context.Background()
	u := newSchema(t)
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	first, err := migrationFS.ReadFile("migrations/0001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now());
		`+string(first)+`
		INSERT INTO schema_migrations (version, name) VALUES (1, '0001_init.sql');
		INSERT INTO meta (id, org_id) VALUES (1, 'org');
		INSERT INTO groups (name) VALUES ('web');
		INSERT INTO certificates (sha256, sha1, der, json) VALUES (decode(repeat('ab', 32), 'hex'), decode(repeat('cd', 20), 'hex'), '\x30', '"a":1');
		INSERT INTO devices (device_id, name, os, collected_at, group_id, links_digest) VALUES
			(repeat('a', 40), 'a.example.com', 'Linux', 1, 1, '\x00'), (repeat('b', 40), 'b.example.com', 'Linux', 1, 0, '\x00');
		INSERT INTO links SELECT id, 'p', decode(repeat('cd', 20), 'hex'), 1 FROM devices`); err != nil {
		t.Fatalf("make a database of the first schema: %v", err)
	}
	db := openURL(t, u)
	for _, tc := range []struct{ id, group, pin string }{
		{strings.Repeat("a", 40), "web", "web"},
		{strings.Repeat("b", 40), certinv.GroupUnassigned, ""},
	} {
		a, err := db.DeviceAccess(ctx, tc.id)
		if err != nil || a.Group != tc.group || a.PinnedGroup != tc.pin {
			t.Errorf("DeviceAccess(%s) after upgrade = %+v, %v; want group %q, pin %q", tc.id[:4], a, err, tc.group, tc.pin)
		}
	}
	if _, err := db.AddGroupRule(ctx, "cli:test", certinv.GroupRule{GroupName: "all", Priority: 1, NameGlob: "*"}); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	if _, err := db.ReadInventory(ctx, func(r *certinv.InventoryRow) error { got[r.DeviceID[:4]] = r.GroupName; return nil }); err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"aaaa": "web", "bbbb": "all"}; !maps.Equal(got, want) {
		t.Errorf("groups after upgrade and a rule = %v, want %v (the group given before stays pinned)", got, want)
	}
}

// TestFailedBatchWritesNothing sends a batch that the server refuses in its
// write round trip (a device id the schema's CHECK rejects): nothing of it
// is written, the transaction is rolled back, and the next batches on the
// same pool go through.
func TestFailedBatchWritesNothing(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	c := storetest.NewCertificates(t, 1)[0]
	good := certinv.DeviceSet{
		Device: certinv.Device{ID: strings.Repeat("ab", 20), Name: "a", CollectedAt: time.Unix(1, 0)},
		Links:  []certinv.Link{{Path: "p", SHA256: c.SHA256}},
		New:    []certinv.StoredCertificate{c.Stored()},
	}
	bad := good
	bad.Device.ID = strings.Repeat("c", 39)
	if _, err := db.ApplyDeviceSets(ctx, []certinv.DeviceSet{good, bad}); err == nil {
		t.Fatal("ApplyDeviceSets with a device id of 39 characters succeeded, want an error")
	}
	if d, certs, l, err := db.Stats(ctx); err != nil || d != 0 || certs != 0 || l != 0 {
		t.Errorf("Stats() after a failed batch = %d, %d, %d, %v; want 0, 0, 0, nil", d, certs, l, err)
	}
	if v, _ := db.Version(ctx); v != 0 {
		t.Errorf("Version() after a failed batch = %d, want 0", v)
	}
	for i := range 8 { // more than the pool's connections
		good.Device.CollectedAt = time.Unix(int64(2+i), 0)
		if res, err := db.ApplyDeviceSets(ctx, []certinv.DeviceSet{good}); err != nil || res[0].Err != nil {
			t.Fatalf("ApplyDeviceSets %d after a failed batch: %v %v", i, err, res)
		}
	}
	if d, certs, l, err := db.Stats(ctx); err != nil || d != 1 || certs != 1 || l != 1 {
		t.Errorf("Stats() = %d, %d, %d, %v; want 1, 1, 1, nil", d, certs, l, err)
	}
}
