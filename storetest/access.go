package storetest

import (
	"context"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certinv/certinv"
)

// AccessStore is a store that also keeps who may read what: users' groups,
// rules that place devices in groups, device credentials and the audit log.
type AccessStore interface {
	Store
	certinv.UserGroups
	certinv.DeviceGroupRules
	certinv.DeviceCredentials
	certinv.AuditLog
}

// RunAccess runs the contract suite of access: the doc comments of
// certinv.UserGroups, certinv.DeviceGroupRules, certinv.DeviceCredentials
// and certinv.AuditLog. open returns a new, empty store for each subtest.
func RunAccess(t *testing.T, open func(t *testing.T) AccessStore) {
	a := &accessSuite{open: open, c: NewCertificates(t, 6)}
	tests := []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"UserGrants", a.testUserGrants},
		{"RulesPlaceDevices", a.testRulesPlace},
		{"RulesAgreeWithMatches", a.testRulesAgree},
		{"ReportedChangesPlaceDevice", a.testReportedChanges},
		{"TagsPlaceDevices", a.testTags},
		{"ExplicitGroupsWin", a.testExplicit},
		{"RuleValidation", a.testRuleValidation},
		{"DeviceCredentials", a.testCredentials},
		{"AuditLog", a.testAudit},
	}
	for _, tc := range tests {
		t.Run(tc.name, tc.fn)
	}
}

type accessSuite struct {
	open func(t *testing.T) AccessStore
	c    []*Certificate
}

const admin = "cli:test-admin"

// groupsOf returns, by device id, the group id and name ReadInventory
// reads for each device.
func groupsOf(t *testing.T, st Store) map[string]string {
	t.Helper()
	out := map[string]string{}
	_, rows := readAll(t, st)
	for _, r := range rows {
		out[r.DeviceID] = r.GroupName
	}
	return out
}

func named(n int, name, os string) certinv.Device {
	return certinv.Device{ID: deviceID(n), Name: name, OS: os, CollectedAt: t0}
}

func groupID(t *testing.T, st Store, name string) int64 {
	t.Helper()
	gs, err := st.Groups(context.Background())
	if err != nil {
		t.Fatalf("Groups: %v", err)
	}
	for _, g := range gs {
		if g.Name == name {
			return g.ID
		}
	}
	t.Fatalf("Groups() = %v: no group %q", gs, name)
	return 0
}

func (a *accessSuite) testUserGrants(t *testing.T) {
	st := a.open(t)
	ctx := context.Background()
	c := a.c
	web := set(device(1, t0), link{"p", c[0]})
	web.GroupName = "web"
	dbs := set(device(2, t0), link{"p", c[1]})
	dbs.GroupName = "databases"
	mustApply(t, st, web, dbs)
	webID, dbsID := groupID(t, st, "web"), groupID(t, st, "databases")

	if err := st.GrantUserGroup(ctx, admin, "Alice@Contoso.com", "web"); err != nil {
		t.Fatalf("GrantUserGroup(alice, web): %v", err)
	}
	if err := st.GrantUserGroup(ctx, admin, "alice@contoso.com", "web"); err != nil {
		t.Errorf("GrantUserGroup twice = %v, want nil", err)
	}
	oid := "6f0e8a3c-0b7e-4b8e-9d3a-2f1c0d9e8b7a"
	if err := st.GrantUserGroup(ctx, admin, oid, "databases"); err != nil {
		t.Fatalf("GrantUserGroup(oid, databases): %v", err)
	}
	if err := st.GrantUserGroup(ctx, admin, oid, "Unassigned"); err != nil {
		t.Fatalf("GrantUserGroup(oid, Unassigned): %v", err)
	}
	if err := st.GrantUserGroup(ctx, admin, oid, "no such group"); certinv.KindOf(err) != certinv.ENotFound {
		t.Errorf("GrantUserGroup(unknown group) = %v, want kind %s", err, certinv.ENotFound)
	}
	if err := st.GrantUserGroup(ctx, admin, "  ", "web"); certinv.KindOf(err) != certinv.EInvalid {
		t.Errorf("GrantUserGroup(blank user) = %v, want kind %s", err, certinv.EInvalid)
	}

	tests := []struct {
		oid, upn string
		want     []int64
	}{
		{"", "alice@contoso.com", []int64{webID}},
		{"", "ALICE@CONTOSO.COM", []int64{webID}},
		{strings.ToUpper(oid), "", []int64{0, dbsID}},
		{oid, "alice@contoso.com", []int64{0, webID, dbsID}},
		{"someone-else", "bob@contoso.com", nil},
		{"", "", nil},
	}
	slices.Sort(tests[3].want)
	for _, tc := range tests {
		got, err := st.UserGroupIDs(ctx, tc.oid, tc.upn)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("UserGroupIDs(%q, %q) = %v, %v; want %v", tc.oid, tc.upn, got, err, tc.want)
		}
	}

	grants, err := st.UserGrants(ctx, oid)
	if err != nil || len(grants) != 2 {
		t.Fatalf("UserGrants(oid) = %v, %v; want 2 grants", grants, err)
	}
	if grants[0].GroupID != 0 || grants[0].GroupName != certinv.GroupUnassigned || grants[1].GroupName != "databases" {
		t.Errorf("UserGrants(oid) = %+v, want Unassigned (0) then databases", grants)
	}
	all, err := st.UserGrants(ctx, "")
	if err != nil || len(all) != 3 {
		t.Errorf("UserGrants(\"\") = %v, %v; want 3 grants", all, err)
	}

	if err := st.RevokeUserGroup(ctx, admin, "alice@contoso.com", "web"); err != nil {
		t.Fatalf("RevokeUserGroup: %v", err)
	}
	if got, _ := st.UserGroupIDs(ctx, "", "alice@contoso.com"); len(got) != 0 {
		t.Errorf("UserGroupIDs(alice) after revoke = %v, want none", got)
	}
	if err := st.RevokeUserGroup(ctx, admin, "alice@contoso.com", "web"); certinv.KindOf(err) != certinv.ENotFound {
		t.Errorf("RevokeUserGroup of a group not held = %v, want kind %s", err, certinv.ENotFound)
	}
}

func (a *accessSuite) testRulesPlace(t *testing.T) {
	st := a.open(t)
	ctx := context.Background()
	c := a.c
	devs := []certinv.Device{
		named(1, "web1.corp.example.com", "Windows Server 2022"),
		named(2, "db1.corp.example.com", "Ubuntu 24.04"),
		named(3, "laptop7.branch.example.com", "Windows 11"),
		named(4, "printer.example.org", "Linux"),
	}
	for i, d := range devs {
		mustApply(t, st, set(d, link{"p", c[i]}))
	}
	if g := groupsOf(t, st); g[devs[0].ID] != certinv.GroupNone {
		t.Fatalf("no groups: device in %q, want %q", g[devs[0].ID], certinv.GroupNone)
	}
	v0 := version(t, st)
	// Priority, not the order of creation, decides.
	if _, err := st.AddGroupRule(ctx, admin, certinv.GroupRule{GroupName: "corp", Priority: 20, DomainSuffix: "corp.example.com"}); err != nil {
		t.Fatalf("AddGroupRule(corp): %v", err)
	}
	if v := version(t, st); v <= v0 {
		t.Errorf("Version after a rule moved devices = %d, want above %d", v, v0)
	}
	r, err := st.AddGroupRule(ctx, admin, certinv.GroupRule{GroupName: "windows servers", Priority: 10, OSGlob: "windows server*"})
	if err != nil {
		t.Fatalf("AddGroupRule(windows servers): %v", err)
	}
	if r.ID == 0 || r.GroupID == 0 || r.GroupName != "windows servers" {
		t.Errorf("AddGroupRule returned %+v, want an id and the group", r)
	}
	if _, err := st.AddGroupRule(ctx, admin, certinv.GroupRule{GroupName: "laptops", Priority: 30, NameGlob: "LAPTOP?.*", OSGlob: "Windows 1?"}); err != nil {
		t.Fatalf("AddGroupRule(laptops): %v", err)
	}
	want := map[string]string{
		devs[0].ID: "windows servers", // matches corp too, but later
		devs[1].ID: "corp",
		devs[2].ID: "laptops",
		devs[3].ID: certinv.GroupUnassigned,
	}
	if got := groupsOf(t, st); !mapsEqual(got, want) {
		t.Errorf("groups after rules = %v, want %v", got, want)
	}
	rules, err := st.GroupRules(ctx)
	if err != nil || len(rules) != 3 || rules[0].GroupName != "windows servers" || rules[1].GroupName != "corp" || rules[2].GroupName != "laptops" {
		t.Errorf("GroupRules() = %+v, %v; want windows servers, corp, laptops (by priority)", rules, err)
	}

	v1 := version(t, st)
	if err := st.DeleteGroupRule(ctx, admin, r.ID); err != nil {
		t.Fatalf("DeleteGroupRule(%d): %v", r.ID, err)
	}
	want[devs[0].ID] = "corp"
	if got := groupsOf(t, st); !mapsEqual(got, want) {
		t.Errorf("groups after deleting a rule = %v, want %v", got, want)
	}
	if v := version(t, st); v <= v1 {
		t.Errorf("Version after deleting a rule that moved a device = %d, want above %d", v, v1)
	}
	if err := st.DeleteGroupRule(ctx, admin, r.ID); certinv.KindOf(err) != certinv.ENotFound {
		t.Errorf("DeleteGroupRule twice = %v, want kind %s", err, certinv.ENotFound)
	}
	// A rule that moves nothing leaves the version.
	v2 := version(t, st)
	if _, err := st.AddGroupRule(ctx, admin, certinv.GroupRule{GroupName: "corp", Priority: 99, NameGlob: "nothing-matches-this"}); err != nil {
		t.Fatalf("AddGroupRule: %v", err)
	}
	if v := version(t, st); v != v2 {
		t.Errorf("Version after a rule that moved nothing = %d, want %d", v, v2)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || v != w {
			return false
		}
	}
	return true
}

// testRulesAgree checks the store's placement against GroupRule.Matches on
// names and OS texts that probe globs, case and suffixes.
func (a *accessSuite) testRulesAgree(t *testing.T) {
	st := a.open(t)
	ctx := context.Background()
	rules := []certinv.GroupRule{
		{GroupName: "g-brackets", Priority: 1, NameGlob: "[ab]*"},
		{GroupName: "g-star-dot", Priority: 2, NameGlob: "*.Lab.Example.COM"},
		{GroupName: "g-q", Priority: 3, NameGlob: "h?st-?"},
		{GroupName: "g-suffix", Priority: 4, DomainSuffix: ".Example.NET."},
		{GroupName: "g-os", Priority: 5, OSGlob: "*server*"},
		{GroupName: "g-both", Priority: 6, NameGlob: "*%*", OSGlob: "_*"},
		{GroupName: "g-unicode", Priority: 7, NameGlob: "é?*"},
	}
	for i := range rules {
		r, err := st.AddGroupRule(ctx, admin, rules[i])
		if err != nil {
			t.Fatalf("AddGroupRule(%+v): %v", rules[i], err)
		}
		rules[i] = *r
	}
	names := []struct{ name, os string }{
		{"[ab]x", "Linux"}, {"abc", "Linux"}, {"x.lab.example.com", "Linux"}, {".lab.example.com", "Linux"},
		{"host-1", "Linux"}, {"hoost-1", "Linux"}, {"HOST-Z", "Linux"}, {"example.net", "Linux"},
		{"a.b.EXAMPLE.net", "Linux"}, {"notexample.net", "Linux"}, {"x", "Windows Server 2019"},
		{"x", "SERVER"}, {"50%off", "_x"}, {"50%off", "x_"}, {"éa", "Linux"}, {"É", "Linux"}, {"", ""},
		{"lab.example.com", "server"}, {"x*y", "Linux"}, {"[", "Linux"},
	}
	for i, n := range names {
		mustApply(t, st, set(named(100+i, n.name, n.os), link{"p", a.c[0]}))
	}
	got := groupsOf(t, st)
	for i, n := range names {
		want := certinv.GroupUnassigned
		for _, r := range rules {
			if r.Matches(n.name, n.os, nil) {
				want = r.GroupName
				break
			}
		}
		if g := got[deviceID(100+i)]; g != want {
			t.Errorf("device %q (os %q) placed in %q; GroupRule.Matches says %q", n.name, n.os, g, want)
		}
	}
}

func (a *accessSuite) testReportedChanges(t *testing.T) {
	st := a.open(t)
	ctx := context.Background()
	c := a.c
	if _, err := st.AddGroupRule(ctx, admin, certinv.GroupRule{GroupName: "linux", Priority: 1, OSGlob: "ubuntu*"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AddGroupRule(ctx, admin, certinv.GroupRule{GroupName: "eu", Priority: 2, DomainSuffix: "eu.example.com"}); err != nil {
		t.Fatal(err)
	}
	// A new device is placed as it is inserted.
	d := named(1, "a.eu.example.com", "Windows 11")
	mustApply(t, st, set(d, link{"p", c[0]}))
	if g := groupsOf(t, st)[d.ID]; g != "eu" {
		t.Errorf("new device placed in %q, want eu", g)
	}
	// A new OS alone (same links) moves it, and the version says so.
	v := version(t, st)
	d.OS, d.CollectedAt = "Ubuntu 24.04", t0.Add(time.Hour)
	mustApply(t, st, set(d, link{"p", c[0]}))
	if g := groupsOf(t, st)[d.ID]; g != "linux" {
		t.Errorf("device whose OS changed placed in %q, want linux", g)
	}
	if nv := version(t, st); nv <= v {
		t.Errorf("Version after a new OS moved a device = %d, want above %d", nv, v)
	}
	// A new name with new links.
	d.OS, d.Name, d.CollectedAt = "Windows 11", "a.us.example.com", t0.Add(2*time.Hour)
	mustApply(t, st, set(d, link{"p", c[0]}, link{"q", c[1]}))
	if g := groupsOf(t, st)[d.ID]; g != certinv.GroupUnassigned {
		t.Errorf("device renamed out of every rule placed in %q, want %q", g, certinv.GroupUnassigned)
	}
}

func (a *accessSuite) testTags(t *testing.T) {
	st := a.open(t)
	ctx := context.Background()
	c := a.c
	if _, err := st.AddGroupRule(ctx, admin, certinv.GroupRule{GroupName: "pci", Priority: 1, Tag: "PCI"}); err != nil {
		t.Fatal(err)
	}
	d1, d2 := named(1, "a.example.com", "Linux"), named(2, "b.example.com", "Linux")
	// d2 is tagged before it ever reports.
	if err := st.SetDeviceTags(ctx, admin, d2.ID, []string{"PCI", "datacenter"}); err != nil {
		t.Fatalf("SetDeviceTags(unreported device): %v", err)
	}
	mustApply(t, st, set(d1, link{"p", c[0]}), set(d2, link{"p", c[1]}))
	want := map[string]string{d1.ID: certinv.GroupUnassigned, d2.ID: "pci"}
	if got := groupsOf(t, st); !mapsEqual(got, want) {
		t.Errorf("groups = %v, want %v", got, want)
	}
	v := version(t, st)
	if err := st.SetDeviceTags(ctx, admin, d1.ID, []string{"PCI"}); err != nil {
		t.Fatal(err)
	}
	if err := st.SetDeviceTags(ctx, admin, d2.ID, []string{"pci"}); err != nil { // tags are case-sensitive
		t.Fatal(err)
	}
	want = map[string]string{d1.ID: "pci", d2.ID: certinv.GroupUnassigned}
	if got := groupsOf(t, st); !mapsEqual(got, want) {
		t.Errorf("groups after retagging = %v, want %v", got, want)
	}
	if nv := version(t, st); nv <= v {
		t.Errorf("Version after tags moved devices = %d, want above %d", nv, v)
	}
	acc, err := st.DeviceAccess(ctx, d2.ID)
	if err != nil || !slices.Equal(acc.Tags, []string{"pci"}) || !acc.Known || acc.Group != certinv.GroupUnassigned {
		t.Errorf("DeviceAccess(d2) = %+v, %v; want known, tags [pci], Unassigned", acc, err)
	}
	for _, bad := range [][]string{{""}, {" x"}, {strings.Repeat("x", certinv.MaxTagBytes+1)}, {"a\nb"}} {
		if err := st.SetDeviceTags(ctx, admin, d1.ID, bad); certinv.KindOf(err) != certinv.EInvalid {
			t.Errorf("SetDeviceTags(%q) = %v, want kind %s", bad, err, certinv.EInvalid)
		}
	}
	if err := st.SetDeviceTags(ctx, admin, "not-a-device", []string{"x"}); certinv.KindOf(err) != certinv.EInvalid {
		t.Errorf("SetDeviceTags(bad id) = %v, want kind %s", err, certinv.EInvalid)
	}
}

func (a *accessSuite) testExplicit(t *testing.T) {
	st := a.open(t)
	ctx := context.Background()
	c := a.c
	if _, err := st.AddGroupRule(ctx, admin, certinv.GroupRule{GroupName: "all", Priority: 1, NameGlob: "*"}); err != nil {
		t.Fatal(err)
	}
	d1, d2, d3 := named(1, "a.example.com", "Linux"), named(2, "b.example.com", "Linux"), named(3, "c.example.com", "Linux")
	s1 := set(d1, link{"p", c[0]})
	s1.GroupName = "reported" // a group given at ingest wins over rules
	mustApply(t, st, s1, set(d2, link{"p", c[1]}), set(d3, link{"p", c[2]}))
	if err := st.PinDeviceGroup(ctx, admin, d2.ID, "pinned"); err != nil {
		t.Fatalf("PinDeviceGroup: %v", err)
	}
	if err := st.PinDeviceGroup(ctx, admin, d3.ID, certinv.GroupUnassigned); err != nil {
		t.Fatalf("PinDeviceGroup(Unassigned): %v", err)
	}
	want := map[string]string{d1.ID: "reported", d2.ID: "pinned", d3.ID: certinv.GroupUnassigned}
	if got := groupsOf(t, st); !mapsEqual(got, want) {
		t.Errorf("groups = %v, want %v", got, want)
	}
	// Later reports without a group, and new rules, keep pins.
	d1.CollectedAt, d1.Name = t0.Add(time.Hour), "renamed.example.com"
	mustApply(t, st, set(d1, link{"p", c[0]}))
	if _, err := st.AddGroupRule(ctx, admin, certinv.GroupRule{GroupName: "first", Priority: 0, NameGlob: "*"}); err != nil {
		t.Fatal(err)
	}
	if got := groupsOf(t, st); !mapsEqual(got, want) {
		t.Errorf("groups after a report and a rule = %v, want %v", got, want)
	}
	acc, err := st.DeviceAccess(ctx, d2.ID)
	if err != nil || acc.PinnedGroup != "pinned" || acc.Group != "pinned" {
		t.Errorf("DeviceAccess(d2) = %+v, %v; want group and pin %q", acc, err, "pinned")
	}
	// Unpinning and taking the group away hand the device back to rules.
	if err := st.PinDeviceGroup(ctx, admin, d2.ID, ""); err != nil {
		t.Fatal(err)
	}
	if err := st.SetDeviceGroup(ctx, d1.ID, ""); err != nil {
		t.Fatal(err)
	}
	want = map[string]string{d1.ID: "first", d2.ID: "first", d3.ID: certinv.GroupUnassigned}
	if got := groupsOf(t, st); !mapsEqual(got, want) {
		t.Errorf("groups after unpinning = %v, want %v", got, want)
	}
	if err := st.PinDeviceGroup(ctx, admin, deviceID(99), "x"); certinv.KindOf(err) != certinv.ENotFound {
		t.Errorf("PinDeviceGroup(unknown device) = %v, want kind %s", err, certinv.ENotFound)
	}
}

func (a *accessSuite) testRuleValidation(t *testing.T) {
	st := a.open(t)
	ctx := context.Background()
	for _, r := range []certinv.GroupRule{
		{GroupName: "g", Priority: 1},
		{GroupName: "", Priority: 1, NameGlob: "*"},
		{GroupName: certinv.GroupUnassigned, Priority: 1, NameGlob: "*"},
		{GroupName: "g", Priority: -1, NameGlob: "*"},
		{GroupName: "g", Priority: 1, NameGlob: strings.Repeat("x", certinv.MaxRulePatternBytes+1)},
		{GroupName: "g", Priority: 1, OSGlob: "a\x00b"},
		{GroupName: "g", Priority: 1, Tag: " padded"},
	} {
		if _, err := st.AddGroupRule(ctx, admin, r); certinv.KindOf(err) != certinv.EInvalid {
			t.Errorf("AddGroupRule(%+v) = %v, want kind %s", r, err, certinv.EInvalid)
		}
	}
	if rules, err := st.GroupRules(ctx); err != nil || len(rules) != 0 {
		t.Errorf("GroupRules after refusals = %v, %v; want none", rules, err)
	}
	if gs, _ := st.Groups(ctx); len(gs) != 0 {
		t.Errorf("Groups after refusals = %v; want none made", gs)
	}
}

func (a *accessSuite) testCredentials(t *testing.T) {
	st := a.open(t)
	ctx := context.Background()
	id := deviceID(7)
	h1, h2 := [32]byte{1, 2, 3}, [32]byte{4, 5, 6}
	if _, err := st.DeviceCredential(ctx, id); certinv.KindOf(err) != certinv.ENotFound {
		t.Errorf("DeviceCredential(never enrolled) = %v, want kind %s", err, certinv.ENotFound)
	}
	if err := st.EnrollDevice(ctx, id, h1); err != nil {
		t.Fatalf("EnrollDevice: %v", err)
	}
	cr, err := st.DeviceCredential(ctx, id)
	if err != nil || cr.SecretHash != h1 || cr.Revoked() || cr.EnrolledAt.IsZero() {
		t.Fatalf("DeviceCredential = %+v, %v; want hash %x, enrolled, not revoked", cr, err, h1)
	}
	if err := st.EnrollDevice(ctx, id, h2); certinv.KindOf(err) != certinv.EConflict {
		t.Errorf("EnrollDevice again = %v, want kind %s", err, certinv.EConflict)
	}
	if cr, _ := st.DeviceCredential(ctx, id); cr.SecretHash != h1 {
		t.Errorf("a refused enrollment replaced the secret hash")
	}
	if err := st.RevokeDevice(ctx, admin, id); err != nil {
		t.Fatalf("RevokeDevice: %v", err)
	}
	cr, err = st.DeviceCredential(ctx, id)
	if err != nil || !cr.Revoked() || cr.SecretHash == h1 {
		t.Errorf("DeviceCredential after revoke = %+v, %v; want revoked, secret gone", cr, err)
	}
	if err := st.RevokeDevice(ctx, admin, id); err != nil {
		t.Errorf("RevokeDevice twice = %v, want nil", err)
	}
	if err := st.EnrollDevice(ctx, id, h2); certinv.KindOf(err) != certinv.EForbidden {
		t.Errorf("EnrollDevice after revoke = %v, want kind %s", err, certinv.EForbidden)
	}
	// A device may be revoked before it enrolls.
	other := deviceID(8)
	if err := st.RevokeDevice(ctx, admin, other); err != nil {
		t.Fatalf("RevokeDevice(never enrolled): %v", err)
	}
	if err := st.EnrollDevice(ctx, other, h2); certinv.KindOf(err) != certinv.EForbidden {
		t.Errorf("EnrollDevice of a device revoked before enrolling = %v, want kind %s", err, certinv.EForbidden)
	}
	if err := st.ResetDevice(ctx, admin, id); err != nil {
		t.Fatalf("ResetDevice: %v", err)
	}
	if err := st.EnrollDevice(ctx, id, h2); err != nil {
		t.Errorf("EnrollDevice after reset = %v, want nil", err)
	}
	if cr, _ := st.DeviceCredential(ctx, id); cr == nil || cr.SecretHash != h2 || cr.Revoked() {
		t.Errorf("DeviceCredential after reset and enrollment = %+v, want hash %x", cr, h2)
	}
	if err := st.ResetDevice(ctx, admin, deviceID(9)); certinv.KindOf(err) != certinv.ENotFound {
		t.Errorf("ResetDevice(nothing to reset) = %v, want kind %s", err, certinv.ENotFound)
	}
	acc, err := st.DeviceAccess(ctx, id)
	if err != nil || acc.Known || acc.Credential == nil || acc.Credential.SecretHash != h2 {
		t.Errorf("DeviceAccess(enrolled, never reported) = %+v, %v; want unknown with its credential", acc, err)
	}
}

func (a *accessSuite) testAudit(t *testing.T) {
	st := a.open(t)
	ctx := context.Background()
	mustApply(t, st, set(device(1, t0), link{"p", a.c[0]}))
	secret := [32]byte{0xde, 0xad, 0xbe, 0xef, 9, 9, 9}
	steps := []struct {
		action string
		do     func() error
	}{
		{"rule.add", func() error {
			_, err := st.AddGroupRule(ctx, admin, certinv.GroupRule{GroupName: "g", Priority: 1, NameGlob: "*"})
			return err
		}},
		{"user.grant", func() error { return st.GrantUserGroup(ctx, admin, "alice@example.com", "g") }},
		{"user.revoke", func() error { return st.RevokeUserGroup(ctx, admin, "alice@example.com", "g") }},
		{"device.tags", func() error { return st.SetDeviceTags(ctx, admin, deviceID(1), []string{"t"}) }},
		{"device.pin", func() error { return st.PinDeviceGroup(ctx, admin, deviceID(1), "h") }},
		{"device.enroll", func() error { return st.EnrollDevice(ctx, deviceID(2), secret) }},
		{"device.revoke", func() error { return st.RevokeDevice(ctx, admin, deviceID(2)) }},
		{"device.reset", func() error { return st.ResetDevice(ctx, admin, deviceID(2)) }},
		{"app.create", func() error {
			return st.AppendAudit(ctx, certinv.AuditEntry{Actor: admin, Action: "app.create", Target: "app-1", Details: `{"name":"x"}`})
		}},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.action, err)
		}
	}
	// A refused action records nothing.
	if err := st.RevokeUserGroup(ctx, admin, "nobody", "g"); err == nil {
		t.Fatal("RevokeUserGroup(nobody) succeeded")
	}
	entries, err := st.AuditEntries(ctx, 0, 100)
	if err != nil {
		t.Fatalf("AuditEntries: %v", err)
	}
	if len(entries) != len(steps) {
		t.Fatalf("AuditEntries returned %d entries, want %d: %+v", len(entries), len(steps), entries)
	}
	for i, e := range entries {
		if e.Action != steps[i].action {
			t.Errorf("entry %d action = %q, want %q", i, e.Action, steps[i].action)
		}
		wantActor := admin
		if e.Action == "device.enroll" {
			wantActor = "device:" + deviceID(2)
		}
		if e.Actor != wantActor || e.Time.IsZero() || e.Target == "" {
			t.Errorf("entry %d = %+v, want actor %q, a time and a target", i, e, wantActor)
		}
		if i > 0 && e.ID <= entries[i-1].ID {
			t.Errorf("entry %d id %d not above the previous %d", i, e.ID, entries[i-1].ID)
		}
		if strings.Contains(strings.ToLower(fmt.Sprint(e)), hex.EncodeToString(secret[:4])) {
			t.Errorf("entry %d holds the device's secret hash: %+v", i, e)
		}
	}
	after, err := st.AuditEntries(ctx, entries[2].ID, 2)
	if err != nil || len(after) != 2 || after[0].ID != entries[3].ID {
		t.Errorf("AuditEntries(after %d, 2) = %+v, %v; want entries 3 and 4", entries[2].ID, after, err)
	}
	if _, err := st.AuditEntries(ctx, 0, 0); certinv.KindOf(err) != certinv.EInvalid {
		t.Errorf("AuditEntries(limit 0) = %v, want kind %s", err, certinv.EInvalid)
	}
}
