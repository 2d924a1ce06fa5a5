package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/certinv/certinv"
	"github.com/certinv/certinv/sqlite"
	"github.com/certinv/certinv/storetest"
)

// TestPlacementAgreesWithSQLite runs one seeded sequence of reports, group
// changes, rules, tags and pins against this store and the sqlite store
// (whose triggers define the placement), and after every step compares
// what each reads: the records with their groups, every device's access
// (group, pin, tags), whether the version moved, and the error kind.
func TestPlacementAgreesWithSQLite(t *testing.T) {
	ctx := context.Background()
	pg := openTest(t)
	lite, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "certinv.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lite.Close() })
	stores := []storetest.AccessStore{lite, pg}

	certs := storetest.NewCertificates(t, 5)
	names := []string{"web1.corp.example.com", "DB1.corp.example.com", "laptop7.eu.example.com", "printer.example.org", "web2.eu.example.com"}
	oses := []string{"Windows Server 2022", "Ubuntu 24.04", "Windows 11"}
	groups := []string{"reported-a", "reported-b", "corp", "eu"}
	tags := []string{"PCI", "dc1"}
	rules := []certinv.GroupRule{
		{GroupName: "corp", Priority: 10, DomainSuffix: "corp.example.com"},
		{GroupName: "windows", Priority: 5, OSGlob: "windows*"},
		{GroupName: "eu", Priority: 20, NameGlob: "*.EU.example.com"},
		{GroupName: "pci", Priority: 1, Tag: "PCI"},
		{GroupName: "reported-a", Priority: 30, NameGlob: "web?.*"},
	}
	const devices = 6
	rng := rand.New(rand.NewPCG(4, 2))
	at := make([]time.Time, devices)
	for i := range at {
		at[i] = time.Unix(1.8e9, 0)
	}
	var ruleIDs [2][]int64 // per store, in the order added
	last := make([]*certinv.DeviceSet, devices)

	for step := range 400 {
		dev := rng.IntN(devices)
		id := fmt.Sprintf("%040x", dev+1)
		var op string
		var do func(i int, st storetest.AccessStore) error
		switch k := rng.IntN(10); {
		case k < 5:
			at[dev] = at[dev].Add(time.Minute)
			s := certinv.DeviceSet{Device: certinv.Device{ID: id, Name: names[rng.IntN(len(names))], OS: oses[rng.IntN(len(oses))], CollectedAt: at[dev]}}
			// Half the reports repeat the device's last set: only its
			// name or OS may change.
			if last[dev] != nil && rng.IntN(2) == 0 {
				s.Links, s.New = last[dev].Links, last[dev].New
				if rng.IntN(2) == 0 {
					s.Device.Name = last[dev].Device.Name
				}
			} else {
				for j, c := range certs {
					if rng.IntN(2) == 0 {
						s.Links = append(s.Links, certinv.Link{Path: fmt.Sprintf("p%d", j%2), SHA256: c.SHA256})
						s.New = append(s.New, c.Stored())
					}
				}
			}
			last[dev] = &s
			if rng.IntN(4) == 0 {
				s.GroupName = groups[rng.IntN(len(groups))]
			}
			op = fmt.Sprintf("report %s name %q os %q group %q links %d", id[36:], s.Device.Name, s.Device.OS, s.GroupName, len(s.Links))
			do = func(_ int, st storetest.AccessStore) error {
				res, err := st.ApplyDeviceSets(ctx, []certinv.DeviceSet{s})
				if err != nil {
					return err
				}
				return res[0].Err
			}
		case k == 5:
			g := ""
			if rng.IntN(3) > 0 {
				g = groups[rng.IntN(len(groups))]
			}
			op = fmt.Sprintf("SetDeviceGroup %s %q", id[36:], g)
			do = func(_ int, st storetest.AccessStore) error { return st.SetDeviceGroup(ctx, id, g) }
		case k == 6:
			r := rules[rng.IntN(len(rules))]
			op = fmt.Sprintf("AddGroupRule %+v", r)
			do = func(i int, st storetest.AccessStore) error {
				added, err := st.AddGroupRule(ctx, admin, r)
				if err == nil {
					ruleIDs[i] = append(ruleIDs[i], added.ID)
				}
				return err
			}
		case k == 7 && len(ruleIDs[0]) > 0:
			n := rng.IntN(len(ruleIDs[0]))
			op = fmt.Sprintf("DeleteGroupRule #%d", n)
			do = func(i int, st storetest.AccessStore) error {
				err := st.DeleteGroupRule(ctx, admin, ruleIDs[i][n])
				ruleIDs[i] = slices.Delete(ruleIDs[i], n, n+1)
				return err
			}
		case k == 8:
			var ts []string
			for _, tg := range tags {
				if rng.IntN(2) == 0 {
					ts = append(ts, tg)
				}
			}
			op = fmt.Sprintf("SetDeviceTags %s %q", id[36:], ts)
			do = func(_ int, st storetest.AccessStore) error { return st.SetDeviceTags(ctx, admin, id, ts) }
		default:
			g := ""
			switch rng.IntN(3) {
			case 0:
				g = groups[rng.IntN(len(groups))]
			case 1:
				g = certinv.GroupUnassigned
			}
			op = fmt.Sprintf("PinDeviceGroup %s %q", id[36:], g)
			do = func(_ int, st storetest.AccessStore) error { return st.PinDeviceGroup(ctx, admin, id, g) }
		}

		var state [2]string
		var moved [2]bool
		var kinds [2]certinv.ErrorKind
		for i, st := range stores {
			before, err := st.Version(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := do(i, st); err != nil {
				kinds[i] = certinv.KindOf(err)
				if kinds[i] == certinv.EInternal {
					t.Fatalf("step %d %s: store %d: %v", step, op, i, err)
				}
			}
			after, err := st.Version(ctx)
			if err != nil {
				t.Fatal(err)
			}
			moved[i] = after > before
			state[i] = describe(t, st, devices)
		}
		if kinds[0] != kinds[1] {
			t.Fatalf("step %d %s: error kinds sqlite %q, postgres %q", step, op, kinds[0], kinds[1])
		}
		if state[0] != state[1] {
			t.Fatalf("step %d %s: states differ\nsqlite:\n%s\npostgres:\n%s", step, op, state[0], state[1])
		}
		if moved[0] != moved[1] {
			t.Fatalf("step %d %s: version moved: sqlite %v, postgres %v\nstate:\n%s", step, op, moved[0], moved[1], state[1])
		}
	}
}

// admin is the actor of the placement test's administrative actions.
const admin = "cli:test"

// describe returns what st reads of the fleet: every record and every
// device's placement.
func describe(t *testing.T, st storetest.AccessStore, devices int) string {
	t.Helper()
	ctx := context.Background()
	var out []byte
	if _, err := st.ReadInventory(ctx, func(r *certinv.InventoryRow) error {
		out = fmt.Appendf(out, "%s %s %s %s %.20s\n", r.GroupName, r.DeviceID[36:], r.DeviceName, r.Path, r.CertificateJSON)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for d := range devices {
		a, err := st.DeviceAccess(ctx, fmt.Sprintf("%040x", d+1))
		if err != nil {
			t.Fatal(err)
		}
		out = fmt.Appendf(out, "device %d known=%v group=%q pin=%q tags=%q\n", d+1, a.Known, a.Group, a.PinnedGroup, a.Tags)
	}
	return string(out)
}
