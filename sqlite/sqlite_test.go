package sqlite

import (
	"context"
	"database/sql"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certinv/certinv"
	"github.com/certinv/certinv/internal/migrate"
	"github.com/certinv/certinv/storetest"
)

func openTest(t testing.TB, path string) *DB {
	t.Helper()
	db, err := Open(context.Background(), path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("Open(%q): %v", path, err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store {
		return openTest(t, filepath.Join(t.TempDir(), "certinv.db"))
	})
}

func TestReopenKeepsState(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "dir with ? and # in it", "certinv.db")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	db, err := Open(ctx, path, nil)
	if err != nil {
		t.Fatalf("Open(%q): %v", path, err)
	}
	org, err := db.OrgID(ctx)
	if err != nil {
		t.Fatal(err)
	}
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
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openTest(t, path)
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
	var n int
	if err := db.reader.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	ms, _ := migrate.Load(migrationFS, "migrations")
	if n != len(ms) {
		t.Errorf("schema_migrations holds %d rows after two opens, want %d", n, len(ms))
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "certinv.db")
	db := openTest(t, path)
	if _, err := db.writer.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, '0999_future.sql', 0)`); err != nil {
		t.Fatal(err)
	}
	if db2, err := Open(ctx, path, nil); err == nil {
		db2.Close()
		t.Errorf("Open of a database with a newer schema succeeded, want an error")
	}
}

// TestPragmas checks that every pooled connection, not only the first, runs
// with the settings the store relies on.
func TestPragmas(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, filepath.Join(t.TempDir(), "certinv.db"))
	tests := []struct {
		pragma string
		want   string
	}{
		{"journal_mode", "wal"},
		{"foreign_keys", "1"},
		{"synchronous", "1"},
		{"busy_timeout", "10000"},
	}
	for _, p := range []struct {
		name  string
		conns int
		db    *sql.DB
	}{{"writer", 1, db.writer}, {"reader", 3, db.reader}} {
		var held []*sql.Conn
		for range p.conns {
			c, err := p.db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			held = append(held, c)
		}
		for i, c := range held {
			for _, tc := range tests {
				var got string
				if err := c.QueryRowContext(ctx, "PRAGMA "+tc.pragma).Scan(&got); err != nil {
					t.Fatalf("%s connection %d: PRAGMA %s: %v", p.name, i, tc.pragma, err)
				}
				if got != tc.want {
					t.Errorf("%s connection %d: PRAGMA %s = %q, want %q", p.name, i, tc.pragma, got, tc.want)
				}
			}
			c.Close()
		}
	}
}

// TestReadInventoryPlan checks that ReadInventory walks indexes in the
// order it emits, with no sort over the fleet.
func TestReadInventoryPlan(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, filepath.Join(t.TempDir(), "certinv.db"))
	for _, q := range []string{readDevicesSQL, readLinksSQL} {
		rows, err := db.reader.QueryContext(ctx, "EXPLAIN QUERY PLAN "+q, 1)
		if q == readDevicesSQL {
			rows, err = db.reader.QueryContext(ctx, "EXPLAIN QUERY PLAN "+q)
		}
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		if len(plan) == 0 {
			t.Fatalf("no plan for %s", q)
		}
		for _, step := range plan {
			if strings.Contains(step, "TEMP B-TREE") || (strings.HasPrefix(step, "SCAN") && !strings.Contains(step, "USING")) {
				t.Errorf("plan of %s: step %q; want index walks only, no sort; plan: %q", q, step, plan)
			}
		}
		if q == readLinksSQL && !strings.Contains(strings.Join(plan, " "), "SEARCH") {
			t.Errorf("plan of %s = %q, want a SEARCH of the links key", q, plan)
		}
	}
}

// TestTwoProcesses opens one file twice, as serve and seed do, and writes
// through both at once.
func TestTwoProcesses(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "certinv.db")
	a, b := openTest(t, path), openTest(t, path)
	orgA, _ := a.OrgID(ctx)
	orgB, _ := b.OrgID(ctx)
	if orgA != orgB {
		t.Errorf("OrgID() differs between two handles of one file: %q, %q", orgA, orgB)
	}
	cs := storetest.NewCertificates(t, 2)
	done := make(chan error, 2)
	for i, db := range []*DB{a, b} {
		go func() {
			var err error
			for n := range 20 {
				set := certinv.DeviceSet{
					Device: certinv.Device{ID: strings.Repeat("0", 38) + string("0123456789abcdef"[i]) + string("0123456789abcdef"[n%16]), Name: "h", CollectedAt: time.Unix(int64(n), 0)},
					Links:  []certinv.Link{{Path: "p", SHA256: cs[i].SHA256}},
					New:    []certinv.StoredCertificate{cs[i].Stored()},
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
			t.Errorf("ApplyDeviceSets through two handles: %v", err)
		}
	}
	devices, certs, links, err := b.Stats(ctx)
	if err != nil || devices != 32 || certs != 2 || links != 32 {
		t.Errorf("Stats() = %d, %d, %d, %v; want 32, 2, 32, nil", devices, certs, links, err)
	}
}
