// Package storetest is the contract suite of certinv's stores, as a library
// in the manner of testing/fstest: every store (sqlite, postgres) runs
// storetest.Run against a real database, and so is held to the behaviour
// that the doc comments of certinv.Inventory, certinv.InventoryReader and
// certinv.SnapshotRegistry promise.
package storetest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/certinv/certinv"
)

// Store is what a store of certinv implements.
type Store interface {
	certinv.Inventory
	certinv.InventoryReader
	certinv.SnapshotRegistry
	certinv.SnapshotSwapper
}

// Run runs the contract suite. open returns a new, empty store for each
// subtest; it arranges its own cleanup with t.Cleanup.
func Run(t *testing.T, open func(t *testing.T) Store) {
	certs := NewCertificates(t, 12)
	s := &suite{open: open, c: certs}
	tests := []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"OrgID", s.testOrgID},
		{"Empty", s.testEmpty},
		{"NewDevice", s.testNewDevice},
		{"SetReplacement", s.testSetReplacement},
		{"UnchangedSet", s.testUnchanged},
		{"EmptySetRemovesRecords", s.testEmptySet},
		{"DuplicateLinks", s.testDuplicateLinks},
		{"CertificatesStoredOnce", s.testStoredOnce},
		{"MissingCertificates", s.testMissing},
		{"StaleReportRejected", s.testStale},
		{"UnknownCertificateRejected", s.testUnknown},
		{"BatchIsolatesFailures", s.testBatch},
		{"SameDeviceTwiceInBatch", s.testSameDeviceTwice},
		{"VersionBumpsOnVisibleChange", s.testVersion},
		{"Groups", s.testGroups},
		{"ReadInventoryOrder", s.testOrder},
		{"ReadInventoryConsistent", s.testConsistent},
		{"ReadInventoryStopsOnError", s.testStopsOnError},
		{"ConcurrentApply", s.testConcurrent},
		{"Snapshots", s.testSnapshots},
		{"PublishSnapshotAfter", s.testPublishAfter},
	}
	for _, tc := range tests {
		t.Run(tc.name, tc.fn)
	}
}

type suite struct {
	open func(t *testing.T) Store
	c    []*Certificate
}

// t0 is the collection time of the first reports.
var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// deviceID returns the 40-hex id of test device n.
func deviceID(n int) string { return fmt.Sprintf("%040x", n) }

func device(n int, at time.Time) certinv.Device {
	return certinv.Device{ID: deviceID(n), Name: fmt.Sprintf("host%d.example.com", n), OS: "Ubuntu 24.04", CollectedAt: at}
}

// set returns a device set of links to certificates, each at its path, and
// carrying all of them in New.
func set(d certinv.Device, links ...link) certinv.DeviceSet {
	s := certinv.DeviceSet{Device: d}
	for _, l := range links {
		s.Links = append(s.Links, certinv.Link{Path: l.path, SHA256: l.cert.SHA256})
		if !slices.ContainsFunc(s.New, func(c certinv.StoredCertificate) bool { return c.SHA256 == l.cert.SHA256 }) {
			s.New = append(s.New, l.cert.Stored())
		}
	}
	return s
}

type link struct {
	path string
	cert *Certificate
}

// row is an InventoryRow with its JSON copied.
type row struct {
	GroupID    int64
	GroupName  string
	DeviceID   string
	DeviceName string
	Path       string
	JSON       string
}

func rowOf(r *certinv.InventoryRow) row {
	return row{r.GroupID, r.GroupName, r.DeviceID, r.DeviceName, r.Path, string(r.CertificateJSON)}
}

// want returns the row a store must read for certificate c at path of d.
func want(groupID int64, groupName string, d certinv.Device, path string, c *Certificate) row {
	return row{groupID, groupName, d.ID, d.Name, path, string(c.JSON)}
}

// applyResults applies sets and returns their results.
func applyResults(t *testing.T, s Store, sets ...certinv.DeviceSet) []certinv.SetResult {
	t.Helper()
	results, err := s.ApplyDeviceSets(context.Background(), sets)
	if err != nil {
		t.Fatalf("ApplyDeviceSets: %v", err)
	}
	if len(results) != len(sets) {
		t.Fatalf("ApplyDeviceSets returned %d results for %d sets", len(results), len(sets))
	}
	return results
}

// applyAll applies sets and returns the error of each.
func applyAll(t *testing.T, s Store, sets ...certinv.DeviceSet) []error {
	t.Helper()
	var errs []error
	for _, r := range applyResults(t, s, sets...) {
		errs = append(errs, r.Err)
	}
	return errs
}

func mustApply(t *testing.T, s Store, sets ...certinv.DeviceSet) {
	t.Helper()
	for i, err := range applyAll(t, s, sets...) {
		if err != nil {
			t.Fatalf("ApplyDeviceSets: set %d (device %s): %v", i, sets[i].Device.ID, err)
		}
	}
}

func readAll(t *testing.T, s Store) (int64, []row) {
	t.Helper()
	var rows []row
	v, err := s.ReadInventory(context.Background(), func(r *certinv.InventoryRow) error {
		rows = append(rows, rowOf(r))
		return nil
	})
	if err != nil {
		t.Fatalf("ReadInventory: %v", err)
	}
	return v, rows
}

func version(t *testing.T, s Store) int64 {
	t.Helper()
	v, err := s.Version(context.Background())
	if err != nil {
		t.Fatalf("Version: %v", err)
	}
	return v
}

// sortRows sorts rows in the order ReadInventory promises, computed here
// from the fixtures' thumbprints.
func (s *suite) sortRows(rows []row) {
	thumb := make(map[string]string, len(s.c))
	for _, c := range s.c {
		thumb[string(c.JSON)] = c.Thumbprint
	}
	slices.SortFunc(rows, func(a, b row) int {
		return cmp.Or(
			cmp.Compare(a.GroupID, b.GroupID),
			cmp.Compare(a.DeviceID, b.DeviceID),
			cmp.Compare(a.Path, b.Path),
			cmp.Compare(thumb[a.JSON], thumb[b.JSON]))
	})
}

func diffRows(t *testing.T, what string, got, want []row) {
	t.Helper()
	if slices.Equal(got, want) {
		return
	}
	t.Errorf("%s: ReadInventory read %d rows, want %d", what, len(got), len(want))
	for i := range max(len(got), len(want)) {
		var g, w row
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			t.Errorf("  row %d = %s, want %s", i, show(g), show(w))
		}
	}
}

func show(r row) string {
	if r == (row{}) {
		return "(none)"
	}
	j := r.JSON
	if len(j) > 60 {
		j = j[:60] + "..."
	}
	return fmt.Sprintf("{group %d %q, device %s %q, path %q, json %s}", r.GroupID, r.GroupName, r.DeviceID, r.DeviceName, r.Path, j)
}

func (s *suite) missing(t *testing.T, st Store, cs ...*Certificate) [][32]byte {
	t.Helper()
	var hs [][32]byte
	for _, c := range cs {
		hs = append(hs, c.SHA256)
	}
	m, err := st.MissingCertificates(context.Background(), hs)
	if err != nil {
		t.Fatalf("MissingCertificates: %v", err)
	}
	return m
}

var guidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func (s *suite) testOrgID(t *testing.T) {
	st := s.open(t)
	ctx := context.Background()
	id, err := st.OrgID(ctx)
	if err != nil {
		t.Fatalf("OrgID: %v", err)
	}
	if !guidRE.MatchString(id) {
		t.Errorf("OrgID() = %q, want a lowercase version 4 GUID", id)
	}
	again, err := st.OrgID(ctx)
	if err != nil || again != id {
		t.Errorf("OrgID() again = %q, %v; want %q, nil", again, err, id)
	}
}

func (s *suite) testEmpty(t *testing.T) {
	st := s.open(t)
	_, rows := readAll(t, st)
	if len(rows) != 0 {
		t.Errorf("ReadInventory on an empty store read %d rows, want 0", len(rows))
	}
	gs, err := st.Groups(context.Background())
	if err != nil || len(gs) != 0 {
		t.Errorf("Groups() = %v, %v; want none", gs, err)
	}
	if m := s.missing(t, st, s.c[0], s.c[1]); len(m) != 2 {
		t.Errorf("MissingCertificates on an empty store returned %d hashes, want 2", len(m))
	}
}

func (s *suite) testNewDevice(t *testing.T) {
	st := s.open(t)
	c := s.c
	d := device(1, t0)
	mustApply(t, st, set(d, link{`LocalMachine\Root`, c[0]}, link{`LocalMachine\Root`, c[1]}, link{`/etc/ssl/certs/a.pem`, c[2]}))
	_, got := readAll(t, st)
	w := []row{
		want(certinv.NoGroupID, certinv.GroupNone, d, `LocalMachine\Root`, c[0]),
		want(certinv.NoGroupID, certinv.GroupNone, d, `LocalMachine\Root`, c[1]),
		want(certinv.NoGroupID, certinv.GroupNone, d, `/etc/ssl/certs/a.pem`, c[2]),
	}
	s.sortRows(w)
	diffRows(t, "new device", got, w)
	if m := s.missing(t, st, c[0], c[1], c[2], c[3]); !slices.Equal(m, [][32]byte{c[3].SHA256}) {
		t.Errorf("MissingCertificates after the report = %x, want only %x", m, c[3].SHA256)
	}
}

func (s *suite) testSetReplacement(t *testing.T) {
	st := s.open(t)
	c := s.c
	d1, d2 := device(1, t0), device(2, t0)
	mustApply(t, st,
		set(d1, link{"p/a", c[0]}, link{"p/b", c[1]}, link{"p/c", c[2]}),
		set(d2, link{"p/a", c[0]}))
	// d1: c[0] kept, c[1] moved to another path, c[2] removed, c[3] added.
	d1.CollectedAt = t0.Add(time.Hour)
	mustApply(t, st, set(d1, link{"p/a", c[0]}, link{"p/moved", c[1]}, link{"p/d", c[3]}))
	_, got := readAll(t, st)
	w := []row{
		want(0, certinv.GroupNone, d1, "p/a", c[0]),
		want(0, certinv.GroupNone, d1, "p/moved", c[1]),
		want(0, certinv.GroupNone, d1, "p/d", c[3]),
		want(0, certinv.GroupNone, d2, "p/a", c[0]),
	}
	s.sortRows(w)
	diffRows(t, "after replacement", got, w)
}

func (s *suite) testUnchanged(t *testing.T) {
	st := s.open(t)
	c := s.c
	d := device(1, t0)
	if r := applyResults(t, st, set(d, link{"p/a", c[0]}, link{"p/b", c[1]})); r[0].Unchanged {
		t.Errorf("first report of a device: Unchanged = true, want false")
	}
	// The same links in another order, collected later: unchanged.
	d.CollectedAt = t0.Add(time.Hour)
	if r := applyResults(t, st, set(d, link{"p/b", c[1]}, link{"p/a", c[0]})); !r[0].Unchanged || r[0].Err != nil {
		t.Errorf("same links again: result = %+v, want Unchanged and no error", r[0])
	}
	// One certificate moved: changed.
	d.CollectedAt = t0.Add(2 * time.Hour)
	if r := applyResults(t, st, set(d, link{"p/a", c[0]}, link{"p/c", c[1]})); r[0].Unchanged {
		t.Errorf("a certificate moved to another path: Unchanged = true, want false")
	}
	// A stale report is neither applied nor unchanged.
	d.CollectedAt = t0
	if r := applyResults(t, st, set(d, link{"p/a", c[0]}, link{"p/c", c[1]})); r[0].Unchanged || r[0].Err == nil {
		t.Errorf("stale report: result = %+v, want an error and Unchanged false", r[0])
	}
}

func (s *suite) testEmptySet(t *testing.T) {
	st := s.open(t)
	d := device(1, t0)
	mustApply(t, st, set(d, link{"p", s.c[0]}, link{"q", s.c[1]}))
	d.CollectedAt = t0.Add(time.Minute)
	mustApply(t, st, set(d))
	if _, got := readAll(t, st); len(got) != 0 {
		t.Errorf("after an empty report ReadInventory read %d rows, want 0: %v", len(got), got)
	}
}

func (s *suite) testDuplicateLinks(t *testing.T) {
	st := s.open(t)
	d := device(1, t0)
	ds := set(d, link{"p", s.c[0]}, link{"p", s.c[0]}, link{"q", s.c[0]})
	mustApply(t, st, ds)
	_, got := readAll(t, st)
	w := []row{want(0, certinv.GroupNone, d, "p", s.c[0]), want(0, certinv.GroupNone, d, "q", s.c[0])}
	diffRows(t, "duplicate links", got, w)
}

func (s *suite) testStoredOnce(t *testing.T) {
	st := s.open(t)
	c := s.c[0]
	d1, d2 := device(1, t0), device(2, t0)
	mustApply(t, st, set(d1, link{"p", c}))
	// A second device carries the same certificate in New, with another
	// fragment: the store keeps the one it holds.
	other := *c
	other.JSON = []byte(`"thumbprint":"other"`)
	mustApply(t, st, set(d2, link{"p", &other}))
	_, got := readAll(t, st)
	w := []row{want(0, certinv.GroupNone, d1, "p", c), want(0, certinv.GroupNone, d2, "p", c)}
	diffRows(t, "shared certificate", got, w)
	// And a set naming it by hash alone is accepted.
	d3 := device(3, t0)
	mustApply(t, st, certinv.DeviceSet{Device: d3, Links: []certinv.Link{{Path: "x", SHA256: c.SHA256}}})
	if _, got := readAll(t, st); len(got) != 3 {
		t.Errorf("after a hash-only report ReadInventory read %d rows, want 3", len(got))
	}
}

func (s *suite) testMissing(t *testing.T) {
	st := s.open(t)
	c := s.c
	mustApply(t, st, set(device(1, t0), link{"p", c[0]}, link{"p", c[2]}))
	tests := []struct {
		name string
		in   []*Certificate
		want []*Certificate
	}{
		{"none", nil, nil},
		{"all held", []*Certificate{c[0], c[2]}, nil},
		{"none held", []*Certificate{c[3], c[1]}, []*Certificate{c[3], c[1]}},
		{"mixed", []*Certificate{c[1], c[0], c[4]}, []*Certificate{c[1], c[4]}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := s.missing(t, st, tc.in...)
			var w [][32]byte
			for _, x := range tc.want {
				w = append(w, x.SHA256)
			}
			slices.SortFunc(got, func(a, b [32]byte) int { return slices.Compare(a[:], b[:]) })
			slices.SortFunc(w, func(a, b [32]byte) int { return slices.Compare(a[:], b[:]) })
			if !slices.Equal(got, w) {
				t.Errorf("MissingCertificates = %x, want %x", got, w)
			}
		})
	}
}

func (s *suite) testStale(t *testing.T) {
	st := s.open(t)
	c := s.c
	d := device(1, t0.Add(time.Hour))
	mustApply(t, st, set(d, link{"p", c[0]}))
	v, before := readAll(t, st)

	old := d
	old.CollectedAt = t0
	old.Name = "renamed.example.com"
	errs := applyAll(t, st, set(old, link{"p", c[1]}))
	if certinv.KindOf(errs[0]) != certinv.EConflict {
		t.Fatalf("ApplyDeviceSets(older report) error = %v, want kind %s", errs[0], certinv.EConflict)
	}
	v2, after := readAll(t, st)
	diffRows(t, "after a stale report", after, before)
	if v2 != v {
		t.Errorf("version after a stale report = %d, want %d", v2, v)
	}
	if m := s.missing(t, st, c[1]); len(m) != 1 {
		t.Errorf("the stale report's new certificate was stored")
	}

	// A report collected at the same time is taken (an agent retrying).
	same := d
	mustApply(t, st, set(same, link{"p", c[2]}))
	_, got := readAll(t, st)
	diffRows(t, "same-time report", got, []row{want(0, certinv.GroupNone, d, "p", c[2])})
}

func (s *suite) testUnknown(t *testing.T) {
	st := s.open(t)
	c := s.c
	mustApply(t, st, set(device(1, t0), link{"p", c[0]}))
	v := version(t, st)

	d := device(2, t0)
	ds := set(d, link{"p", c[0]}, link{"q", c[1]})
	ds.Links = append(ds.Links, certinv.Link{Path: "r", SHA256: c[5].SHA256}, certinv.Link{Path: "s", SHA256: c[6].SHA256})
	errs := applyAll(t, st, ds)
	var unknown *certinv.UnknownCertificatesError
	if !errors.As(errs[0], &unknown) {
		t.Fatalf("ApplyDeviceSets(unknown hash) error = %v, want *certinv.UnknownCertificatesError", errs[0])
	}
	if certinv.KindOf(errs[0]) != certinv.EConflict {
		t.Errorf("KindOf(%v) = %s, want %s", errs[0], certinv.KindOf(errs[0]), certinv.EConflict)
	}
	got := slices.Clone(unknown.SHA256)
	w := [][32]byte{c[5].SHA256, c[6].SHA256}
	slices.SortFunc(got, func(a, b [32]byte) int { return slices.Compare(a[:], b[:]) })
	slices.SortFunc(w, func(a, b [32]byte) int { return slices.Compare(a[:], b[:]) })
	if !slices.Equal(got, w) {
		t.Errorf("UnknownCertificatesError.SHA256 = %x, want %x", got, w)
	}
	_, rows := readAll(t, st)
	if len(rows) != 1 || rows[0].DeviceID != deviceID(1) {
		t.Errorf("after a rejected report ReadInventory read %v, want only device 1's row", rows)
	}
	if m := s.missing(t, st, c[1]); len(m) != 1 {
		t.Errorf("the rejected report's new certificate was stored")
	}
	if v2 := version(t, st); v2 != v {
		t.Errorf("version after a rejected report = %d, want %d", v2, v)
	}
}

func (s *suite) testBatch(t *testing.T) {
	st := s.open(t)
	c := s.c
	stale := device(3, t0.Add(time.Hour))
	mustApply(t, st, set(stale, link{"p", c[0]}))

	d1, d2 := device(1, t0), device(2, t0)
	staleSet := set(device(3, t0), link{"p", c[1]})
	unknownSet := certinv.DeviceSet{Device: device(4, t0), Links: []certinv.Link{{Path: "p", SHA256: c[7].SHA256}}}
	errs := applyAll(t, st, set(d1, link{"p", c[2]}), staleSet, unknownSet, set(d2, link{"p", c[3]}))
	if errs[0] != nil || errs[3] != nil {
		t.Errorf("ApplyDeviceSets: valid sets got errors %v, %v", errs[0], errs[3])
	}
	if certinv.KindOf(errs[1]) != certinv.EConflict {
		t.Errorf("ApplyDeviceSets: stale set error = %v, want kind %s", errs[1], certinv.EConflict)
	}
	var unknown *certinv.UnknownCertificatesError
	if !errors.As(errs[2], &unknown) {
		t.Errorf("ApplyDeviceSets: unknown set error = %v, want *certinv.UnknownCertificatesError", errs[2])
	}
	_, got := readAll(t, st)
	w := []row{
		want(0, certinv.GroupNone, d1, "p", c[2]),
		want(0, certinv.GroupNone, d2, "p", c[3]),
		want(0, certinv.GroupNone, stale, "p", c[0]),
	}
	s.sortRows(w)
	diffRows(t, "batch", got, w)
}

func (s *suite) testSameDeviceTwice(t *testing.T) {
	st := s.open(t)
	c := s.c
	d := device(1, t0)
	later := d
	later.CollectedAt = t0.Add(time.Minute)
	later.Name = "later.example.com"
	errs := applyAll(t, st, set(d, link{"p", c[0]}), set(later, link{"p", c[1]}), set(d, link{"p", c[2]}))
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("ApplyDeviceSets: errors %v, %v; want none", errs[0], errs[1])
	}
	if certinv.KindOf(errs[2]) != certinv.EConflict {
		t.Errorf("ApplyDeviceSets: third set, older than the second, error = %v, want kind %s", errs[2], certinv.EConflict)
	}
	_, got := readAll(t, st)
	diffRows(t, "same device twice", got, []row{want(0, certinv.GroupNone, later, "p", c[1])})
}

func (s *suite) testVersion(t *testing.T) {
	st := s.open(t)
	ctx := context.Background()
	c := s.c
	d := device(1, t0)
	at := t0
	next := func() time.Time { at = at.Add(time.Minute); return at }
	type step struct {
		name string
		do   func(t *testing.T)
		bump bool
	}
	base := []link{{"p", c[0]}, {"q", c[1]}}
	steps := []step{
		{"new device with certificates", func(t *testing.T) { mustApply(t, st, set(d, base...)) }, true},
		{"same report again", func(t *testing.T) { mustApply(t, st, set(d, base...)) }, false},
		{"same set collected later", func(t *testing.T) {
			d.CollectedAt = next()
			mustApply(t, st, set(d, base...))
		}, false},
		{"same set, links in another order", func(t *testing.T) {
			mustApply(t, st, set(d, base[1], base[0]))
		}, false},
		{"OS changed", func(t *testing.T) {
			d.OS = "Ubuntu 26.04"
			mustApply(t, st, set(d, base...))
		}, false},
		{"name changed", func(t *testing.T) {
			d.Name = "renamed.example.com"
			mustApply(t, st, set(d, base...))
		}, true},
		{"certificate added", func(t *testing.T) {
			d.CollectedAt = next()
			base = append(base, link{"r", c[2]})
			mustApply(t, st, set(d, base...))
		}, true},
		{"certificate moved", func(t *testing.T) {
			base[2].path = "r2"
			mustApply(t, st, set(d, base...))
		}, true},
		{"new device without certificates", func(t *testing.T) { mustApply(t, st, set(device(2, t0))) }, false},
		{"stale report", func(t *testing.T) {
			old := d
			old.CollectedAt = t0
			if errs := applyAll(t, st, set(old, link{"z", c[3]})); errs[0] == nil {
				t.Fatalf("stale report accepted")
			}
		}, false},
		{"group given in a report", func(t *testing.T) {
			ds := set(d, base...)
			ds.GroupName = "servers"
			mustApply(t, st, ds)
		}, true},
		{"same group again", func(t *testing.T) {
			ds := set(d, base...)
			ds.GroupName = "servers"
			mustApply(t, st, ds)
		}, false},
		{"no group given", func(t *testing.T) { mustApply(t, st, set(d, base...)) }, false},
		{"SetDeviceGroup to the same group", func(t *testing.T) {
			if err := st.SetDeviceGroup(ctx, d.ID, "servers"); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"SetDeviceGroup out of the group", func(t *testing.T) {
			if err := st.SetDeviceGroup(ctx, d.ID, ""); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"all certificates removed", func(t *testing.T) {
			d.CollectedAt = next()
			mustApply(t, st, set(d))
		}, true},
		{"empty set again", func(t *testing.T) { mustApply(t, st, set(d)) }, false},
	}
	prev := version(t, st)
	for _, step := range steps {
		step.do(t)
		v := version(t, st)
		read, _ := readAll(t, st)
		if read != v {
			t.Errorf("%s: ReadInventory returned version %d, Version() %d", step.name, read, v)
		}
		switch {
		case v < prev:
			t.Errorf("%s: version went from %d down to %d", step.name, prev, v)
		case step.bump && v == prev:
			t.Errorf("%s: version stayed %d, want it bumped (reads see different rows)", step.name, v)
		case !step.bump && v != prev:
			t.Errorf("%s: version went from %d to %d, want it unchanged (reads see the same rows)", step.name, prev, v)
		}
		prev = v
	}
}

func (s *suite) testGroups(t *testing.T) {
	st := s.open(t)
	ctx := context.Background()
	c := s.c
	a, b, e := device(1, t0), device(2, t0), device(3, t0)
	mustApply(t, st, set(a, link{"p", c[0]}), set(b, link{"p", c[1]}))
	_, got := readAll(t, st)
	diffRows(t, "no groups", got, []row{
		want(certinv.NoGroupID, certinv.GroupNone, a, "p", c[0]),
		want(certinv.NoGroupID, certinv.GroupNone, b, "p", c[1]),
	})

	// A report names a group: it is created; devices without one become Unassigned.
	as := set(a, link{"p", c[0]})
	as.GroupName = "web servers"
	mustApply(t, st, as)
	gs, err := st.Groups(ctx)
	if err != nil || len(gs) != 1 || gs[0].Name != "web servers" || gs[0].ID == certinv.NoGroupID {
		t.Fatalf("Groups() = %v, %v; want one group named %q with an id other than %d", gs, err, "web servers", certinv.NoGroupID)
	}
	web := gs[0]
	_, got = readAll(t, st)
	diffRows(t, "one group", got, []row{
		want(certinv.NoGroupID, certinv.GroupUnassigned, b, "p", c[1]),
		want(web.ID, web.Name, a, "p", c[0]),
	})

	// A report without a group leaves the device where it is.
	mustApply(t, st, set(a, link{"p", c[0]}))
	// SetDeviceGroup moves a device, creating the group.
	if err := st.SetDeviceGroup(ctx, b.ID, "databases"); err != nil {
		t.Fatalf("SetDeviceGroup(%s, databases): %v", b.ID, err)
	}
	// And a report may name an existing group.
	es := set(e, link{"p", c[2]})
	es.GroupName = "databases"
	mustApply(t, st, es)
	gs, err = st.Groups(ctx)
	if err != nil || len(gs) != 2 || gs[0] != web || gs[1].Name != "databases" || gs[1].ID <= web.ID {
		t.Fatalf("Groups() = %v, %v; want %v then databases, by id", gs, err, web)
	}
	dbs := gs[1]
	_, got = readAll(t, st)
	diffRows(t, "two groups", got, []row{
		want(web.ID, web.Name, a, "p", c[0]),
		want(dbs.ID, dbs.Name, b, "p", c[1]),
		want(dbs.ID, dbs.Name, e, "p", c[2]),
	})

	// Out of its group: Unassigned, since groups exist.
	if err := st.SetDeviceGroup(ctx, a.ID, ""); err != nil {
		t.Fatalf("SetDeviceGroup(%s, \"\"): %v", a.ID, err)
	}
	_, got = readAll(t, st)
	diffRows(t, "device taken out of its group", got, []row{
		want(certinv.NoGroupID, certinv.GroupUnassigned, a, "p", c[0]),
		want(dbs.ID, dbs.Name, b, "p", c[1]),
		want(dbs.ID, dbs.Name, e, "p", c[2]),
	})

	if err := st.SetDeviceGroup(ctx, deviceID(99), "databases"); certinv.KindOf(err) != certinv.ENotFound {
		t.Errorf("SetDeviceGroup(unknown device) = %v, want kind %s", err, certinv.ENotFound)
	}
}

func (s *suite) testOrder(t *testing.T) {
	st := s.open(t)
	ctx := context.Background()
	c := s.c
	// Devices reported out of order, in two groups and none; paths shared and
	// distinct; several certificates at one path.
	var sets []certinv.DeviceSet
	var w []row
	for i, n := range []int{7, 3, 9, 1, 5, 2} {
		d := device(n, t0)
		var links []link
		for j := range 5 {
			cert := c[(i*5+j*7)%len(c)]
			path := []string{`LocalMachine\Root`, `LocalMachine\My`, "/etc/ssl/certs/ca-certificates.crt"}[j%3]
			links = append(links, link{path, cert})
		}
		sets = append(sets, set(d, links...))
		for _, l := range links {
			w = append(w, want(0, "", d, l.path, l.cert))
		}
	}
	mustApply(t, st, sets...)
	groupOf := map[string]string{deviceID(9): "b", deviceID(1): "a", deviceID(5): "b"}
	for _, id := range []string{deviceID(9), deviceID(1), deviceID(5)} {
		if err := st.SetDeviceGroup(ctx, id, groupOf[id]); err != nil {
			t.Fatalf("SetDeviceGroup: %v", err)
		}
	}
	gs, err := st.Groups(ctx)
	if err != nil {
		t.Fatalf("Groups: %v", err)
	}
	ids := map[string]int64{}
	for _, g := range gs {
		ids[g.Name] = g.ID
	}
	for i := range w {
		w[i].GroupName = certinv.GroupUnassigned
		if g, ok := groupOf[w[i].DeviceID]; ok {
			w[i].GroupID, w[i].GroupName = ids[g], g
		}
	}
	s.sortRows(w)
	_, got := readAll(t, st)
	diffRows(t, "order", got, w)
}

func (s *suite) testConsistent(t *testing.T) {
	st := s.open(t)
	ctx := context.Background()
	c := s.c
	d1, d2 := device(1, t0), device(2, t0)
	mustApply(t, st, set(d1, link{"p", c[0]}, link{"q", c[1]}), set(d2, link{"p", c[2]}))
	v0, before := readAll(t, st)

	var got []row
	wrote := false
	v, err := st.ReadInventory(ctx, func(r *certinv.InventoryRow) error {
		if !wrote {
			wrote = true
			// Meanwhile, reports are taken.
			d1.CollectedAt = t0.Add(time.Minute)
			mustApply(t, st, set(d1, link{"p", c[3]}), set(device(3, t0), link{"p", c[4]}))
			if err := st.SetDeviceGroup(ctx, d2.ID, "g"); err != nil {
				return err
			}
		}
		got = append(got, rowOf(r))
		return nil
	})
	if err != nil {
		t.Fatalf("ReadInventory: %v", err)
	}
	diffRows(t, "read during writes", got, before)
	if v != v0 {
		t.Errorf("ReadInventory during writes returned version %d, want %d (the version it read)", v, v0)
	}
	v1, after := readAll(t, st)
	if v1 <= v0 {
		t.Errorf("version after the writes = %d, want more than %d", v1, v0)
	}
	if len(after) != 3 || slices.Equal(after, before) {
		t.Errorf("after the writes ReadInventory read %v, want the 3 new rows", after)
	}
}

func (s *suite) testStopsOnError(t *testing.T) {
	st := s.open(t)
	mustApply(t, st, set(device(1, t0), link{"p", s.c[0]}, link{"q", s.c[1]}, link{"r", s.c[2]}))
	stop := errors.New("stop here")
	calls := 0
	_, err := st.ReadInventory(context.Background(), func(*certinv.InventoryRow) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) {
		t.Errorf("ReadInventory error = %v, want the callback's %v", err, stop)
	}
	if calls != 1 {
		t.Errorf("ReadInventory called fn %d times after it failed, want 1", calls)
	}
	// The store still works.
	if _, rows := readAll(t, st); len(rows) != 3 {
		t.Errorf("ReadInventory after a stopped read read %d rows, want 3", len(rows))
	}
}

func (s *suite) testConcurrent(t *testing.T) {
	st := s.open(t)
	const workers, each = 4, 5
	var wg sync.WaitGroup
	errc := make(chan error, workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				n := w*each + i
				results, err := st.ApplyDeviceSets(context.Background(), []certinv.DeviceSet{
					set(device(n, t0), link{"p", s.c[n%len(s.c)]}, link{"q", s.c[(n+1)%len(s.c)]}),
				})
				if err == nil {
					err = results[0].Err
				}
				if err != nil {
					errc <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Errorf("concurrent ApplyDeviceSets: %v", err)
	}
	if _, rows := readAll(t, st); len(rows) != workers*each*2 {
		t.Errorf("after concurrent reports ReadInventory read %d rows, want %d", len(rows), workers*each*2)
	}
}

// testPublishAfter: a conditional publication happens only while the
// latest snapshot is the one expected, and a refused one leaves nothing.
func (s *suite) testPublishAfter(t *testing.T) {
	st := s.open(t)
	ctx := context.Background()
	snap := func(n int) *certinv.Snapshot {
		return &certinv.Snapshot{ID: certinv.NewGUID(), GeneratedAt: t0.Add(time.Duration(n) * time.Hour), Version: int64(n), ManifestKey: fmt.Sprintf("s%d/manifest.json", n), Records: 1, Files: 1}
	}
	s1, s2, s3 := snap(1), snap(2), snap(3)
	if err := st.PublishSnapshotAfter(ctx, s1, "not-the-latest"); certinv.KindOf(err) != certinv.EConflict {
		t.Errorf("PublishSnapshotAfter(s1, another) on an empty registry = %v, want kind %s", err, certinv.EConflict)
	}
	if err := st.PublishSnapshotAfter(ctx, s1, ""); err != nil {
		t.Fatalf("PublishSnapshotAfter(s1, none) on an empty registry: %v", err)
	}
	if err := st.PublishSnapshotAfter(ctx, s2, s1.ID); err != nil {
		t.Fatalf("PublishSnapshotAfter(s2, s1): %v", err)
	}
	// A builder that began while s1 was the latest comes too late.
	if err := st.PublishSnapshotAfter(ctx, s3, s1.ID); certinv.KindOf(err) != certinv.EConflict {
		t.Errorf("PublishSnapshotAfter(s3, s1) with s2 published = %v, want kind %s", err, certinv.EConflict)
	}
	if got, err := st.LatestSnapshot(ctx); err != nil || got.ID != s2.ID {
		t.Errorf("LatestSnapshot() after a refused publication = %v, %v; want %s", got, err, s2.ID)
	}
	if _, err := st.Snapshot(ctx, s3.ID); certinv.KindOf(err) != certinv.ENotFound {
		t.Errorf("Snapshot(refused s3) = %v, want kind %s", err, certinv.ENotFound)
	}
}

func (s *suite) testSnapshots(t *testing.T) {
	st := s.open(t)
	ctx := context.Background()
	if _, err := st.LatestSnapshot(ctx); certinv.KindOf(err) != certinv.ENotFound {
		t.Errorf("LatestSnapshot() on an empty registry = %v, want kind %s", err, certinv.ENotFound)
	}
	if list, err := st.Snapshots(ctx); err != nil || len(list) != 0 {
		t.Errorf("Snapshots() on an empty registry = %v, %v; want none", list, err)
	}
	s1 := &certinv.Snapshot{ID: certinv.NewGUID(), GeneratedAt: t0, Version: 3, ManifestKey: "snap1/manifest.json", Records: 1200, Files: 2}
	s2 := &certinv.Snapshot{ID: certinv.NewGUID(), GeneratedAt: t0.Add(time.Hour), Version: 5, ManifestKey: "snap2/manifest.json", Records: 1300, Files: 3}
	publish := func(sn *certinv.Snapshot) {
		t.Helper()
		if err := st.PublishSnapshot(ctx, sn); err != nil {
			t.Fatalf("PublishSnapshot(%s): %v", sn.ID, err)
		}
	}
	check := func(what string, got *certinv.Snapshot, err error, w *certinv.Snapshot) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if got.ID != w.ID || !got.GeneratedAt.Equal(w.GeneratedAt) || got.Version != w.Version ||
			got.ManifestKey != w.ManifestKey || got.Records != w.Records || got.Files != w.Files {
			t.Errorf("%s = %+v, want %+v", what, *got, *w)
		}
		if got.TimePath() != w.TimePath() {
			t.Errorf("%s: TimePath() = %q, want %q", what, got.TimePath(), w.TimePath())
		}
	}

	publish(s1)
	got, err := st.LatestSnapshot(ctx)
	check("LatestSnapshot() after the first publish", got, err, s1)
	publish(s2)
	got, err = st.LatestSnapshot(ctx)
	check("LatestSnapshot() after the second publish", got, err, s2)
	got, err = st.Snapshot(ctx, s1.ID)
	check("Snapshot(first)", got, err, s1)

	list, err := st.Snapshots(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("Snapshots() = %v, %v; want 2", list, err)
	}
	check("Snapshots()[0]", &list[0].Snapshot, nil, s2)
	check("Snapshots()[1]", &list[1].Snapshot, nil, s1)
	if !list[0].SupersededAt.IsZero() {
		t.Errorf("Snapshots()[0].SupersededAt = %v, want zero for the latest", list[0].SupersededAt)
	}
	if list[1].SupersededAt.IsZero() {
		t.Errorf("Snapshots()[1].SupersededAt is zero, want the time the second snapshot replaced it")
	}

	if err := st.PublishSnapshot(ctx, s1); err == nil {
		t.Errorf("PublishSnapshot(an already published id) = nil, want an error")
	}
	if err := st.RetireSnapshot(ctx, s1.ID); err != nil {
		t.Fatalf("RetireSnapshot(%s): %v", s1.ID, err)
	}
	if _, err := st.Snapshot(ctx, s1.ID); certinv.KindOf(err) != certinv.ENotFound {
		t.Errorf("Snapshot(retired) = %v, want kind %s", err, certinv.ENotFound)
	}
	if list, err := st.Snapshots(ctx); err != nil || len(list) != 1 || list[0].ID != s2.ID {
		t.Errorf("Snapshots() after retiring the first = %v, %v; want only the second", list, err)
	}
	got, err = st.LatestSnapshot(ctx)
	check("LatestSnapshot() after retiring an older one", got, err, s2)

	if err := st.RetireSnapshot(ctx, s2.ID); err != nil {
		t.Fatalf("RetireSnapshot(%s): %v", s2.ID, err)
	}
	if _, err := st.LatestSnapshot(ctx); certinv.KindOf(err) != certinv.ENotFound {
		t.Errorf("LatestSnapshot() when the latest is retired = %v, want kind %s", err, certinv.ENotFound)
	}
	unknown := certinv.NewGUID()
	if _, err := st.Snapshot(ctx, unknown); certinv.KindOf(err) != certinv.ENotFound {
		t.Errorf("Snapshot(unknown) = %v, want kind %s", err, certinv.ENotFound)
	}
	if err := st.RetireSnapshot(ctx, unknown); certinv.KindOf(err) != certinv.ENotFound {
		t.Errorf("RetireSnapshot(unknown) = %v, want kind %s", err, certinv.ENotFound)
	}
}
