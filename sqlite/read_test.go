package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/certinv/certinv"
	"github.com/certinv/certinv/storetest"
)

// TestReadInventoryTinyCache reads a fleet whose devices share some
// certificates and hold others alone with a fragment cache far smaller than
// the fleet's fragments, and checks every row against a read with the
// default cache: eviction never loses or swaps a fragment.
func TestReadInventoryTinyCache(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, filepath.Join(t.TempDir(), "certinv.db"))
	certs := storetest.NewCertificates(t, 12)
	var sets []certinv.DeviceSet
	for d := range 30 {
		set := certinv.DeviceSet{Device: certinv.Device{ID: fmt.Sprintf("%040x", d+1), Name: fmt.Sprintf("host-%d", d), CollectedAt: time.Unix(1, 0)}}
		for i, c := range certs {
			// Every device holds certificates 0-3; the rest by turns, some at two paths.
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
	if res, err := db.ApplyDeviceSets(ctx, sets); err != nil {
		t.Fatal(err)
	} else {
		for _, r := range res {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
		}
	}
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
	for _, budget := range []int{1, 500, 3000} {
		db.fragmentBudget = budget
		if got := read(); !slices.Equal(got, want) {
			t.Errorf("ReadInventory with a cache of %d bytes read %d rows that differ from the %d of the default cache", budget, len(got), len(want))
		}
	}
	db.fragmentBudget = 0
	if len(want) == 0 {
		t.Fatal("no rows read")
	}
}
