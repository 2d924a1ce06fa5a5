package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certinv/certinv"
	"github.com/certinv/certinv/storetest"
	"github.com/jackc/pgx/v5"
)

// fleet applies 30 devices that share certificates 0-3 and hold the rest by
// turns, some at two paths, in two groups.
func fleet(t *testing.T, db *DB, certs []*storetest.Certificate) {
	t.Helper()
	var sets []certinv.DeviceSet
	for d := range 30 {
		set := certinv.DeviceSet{Device: certinv.Device{ID: fmt.Sprintf("%040x", d+1), Name: fmt.Sprintf("host-%d", d), CollectedAt: time.Unix(1, 0)}}
		if d%3 == 0 {
			set.GroupName = "third"
		}
		for i, c := range certs {
			if i < 4 || (i+d)%3 == 0 {
				set.Links = append(set.Links, certinv.Link{Path: fmt.Sprintf("/p/%02d", i), SHA256: c.SHA256})
				if i%5 == 0 {
					set.Links = append(set.Links, certinv.Link{Path: fmt.Sprintf("/q/%02d", i), SHA256: c.SHA256})
				}
				set.New = append(set.New, c.Stored())
			}
		}
		sets = append(sets, set)
	}
	res, err := db.ApplyDeviceSets(context.Background(), sets)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("set %d: %v", i, r.Err)
		}
	}
}

// TestReadInventoryTinyCache reads a fleet with fragment caches far smaller
// than its fragments, so that most come with the devices' rows, and checks
// every row against a read with the default cache, and that against the
// rows the fixture implies: eviction never loses or swaps a fragment.
func TestReadInventoryTinyCache(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	certs := storetest.NewCertificates(t, 12)
	fleet(t, db, certs)
	read := func() []string {
		var out []string
		if _, err := db.ReadInventory(ctx, func(r *certinv.InventoryRow) error {
			out = append(out, fmt.Sprintf("%d|%s|%s|%s|%s", r.GroupID, r.DeviceID, r.DeviceName, r.Path, r.CertificateJSON))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	want := read()
	jsonOf := map[string]string{}
	for i, c := range certs {
		jsonOf[fmt.Sprintf("%02d", i)] = string(c.JSON)
	}
	for _, line := range want {
		f := strings.Split(line, "|")
		if got := f[4]; got != jsonOf[f[3][3:]] {
			t.Fatalf("default read: %s at %s has the fragment of another certificate", f[1], f[3])
		}
	}
	if len(want) == 0 {
		t.Fatal("no rows read")
	}
	for _, budget := range []int{1, 500, 3000} {
		db.fragmentBudget = budget
		if got := read(); !slices.Equal(got, want) {
			t.Errorf("ReadInventory with a cache of %d bytes read %d rows that differ from the %d of the default cache", budget, len(got), len(want))
		}
	}
	db.fragmentBudget = 0
}

// TestReadInventoryPlan checks that ReadInventory walks indexes in the
// order it emits, with no sort over the fleet, under the settings it reads
// with, in both its forms.
func TestReadInventoryPlan(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	fleet(t, db, storetest.NewCertificates(t, 6))
	if _, err := db.pool.Exec(ctx, `ANALYZE`); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{readInventorySQL, readInventoryMissSQL} {
		err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, readSettingsSQL); err != nil {
				return err
			}
			args := []any{}
			if q == readInventoryMissSQL {
				args = append(args, int64(3))
			}
			rows, err := tx.Query(ctx, "EXPLAIN "+q, args...)
			if err != nil {
				return err
			}
			lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return err
			}
			plan := strings.Join(lines, "\n")
			if strings.Contains(plan, "Sort") || strings.Contains(plan, "Seq Scan on links") || strings.Contains(plan, "Seq Scan on devices") {
				t.Errorf("plan of %.40s... sorts or scans a table; want index walks only:\n%s", q, plan)
			}
			if !strings.Contains(plan, "using devices_group_device on devices") || !strings.Contains(plan, "using links_pkey on links") {
				t.Errorf("plan of %.40s... does not walk devices_group_device and links_pkey:\n%s", q, plan)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestChangeOneLinkWritesOneRow changes one certificate of a device's set:
// the other link rows stay where they are (same ctid), one is deleted and
// one inserted.
func TestChangeOneLinkWritesOneRow(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	certs := storetest.NewCertificates(t, 4)
	set := func(at int64, cs ...*storetest.Certificate) certinv.DeviceSet {
		s := certinv.DeviceSet{Device: certinv.Device{ID: strings.Repeat("e", 40), Name: "h", CollectedAt: time.Unix(at, 0)}}
		for i, c := range cs {
			s.Links = append(s.Links, certinv.Link{Path: fmt.Sprint("p", i), SHA256: c.SHA256})
			s.New = append(s.New, c.Stored())
		}
		return s
	}
	ctids := func() map[string]string {
		rows, err := db.pool.Query(ctx, `SELECT path || '/' || certificate, ctid::text FROM links`)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		var k, v string
		if _, err := pgx.ForEachRow(rows, []any{&k, &v}, func() error { m[k] = v; return nil }); err != nil {
			t.Fatal(err)
		}
		return m
	}
	for _, s := range []certinv.DeviceSet{set(1, certs[0], certs[1], certs[2]), set(2, certs[0], certs[1], certs[3])} {
		before := ctids()
		res, err := db.ApplyDeviceSets(ctx, []certinv.DeviceSet{s})
		if err != nil || res[0].Err != nil {
			t.Fatalf("ApplyDeviceSets: %v %v", err, res)
		}
		after := ctids()
		if len(after) != 3 {
			t.Fatalf("%d link rows, want 3: %v", len(after), after)
		}
		kept := 0
		for k, v := range before {
			if after[k] == v {
				kept++
			}
		}
		if len(before) > 0 && kept != 2 {
			t.Errorf("a change of one certificate of three kept %d rows in place, want 2 (before %v, after %v)", kept, before, after)
		}
	}
}
