package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/certinv/certinv"
)

// withAccess serves the admin API and delegated access from the env's store.
func withAccess(e **env) envOption {
	return func(c *Config) {
		db := c.Registry.(interface{ AdminStore }) // the env's *sqlite.DB
		c.Admin = db
		c.Groups = UserGroupsFunc(db)
	}
}

func (e *env) adminToken() string { return e.appToken("admin-app", certinv.RoleAdmin) }

func (e *env) adminDo(method, path, body string) *httpResult {
	e.t.Helper()
	w := e.do(method, path, e.adminToken(), strings.NewReader(body))
	return &httpResult{code: w.Code, body: w.Body.String()}
}

type httpResult struct {
	code int
	body string
}

func recordGroups(t *testing.T, recs []string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, r := range recs {
		var rec struct{ RbacGroupName string }
		if err := json.Unmarshal([]byte(r), &rec); err != nil {
			t.Fatal(err)
		}
		out[rec.RbacGroupName]++
	}
	return out
}

func TestAdminNeedsAdminRole(t *testing.T) {
	var e *env
	e = newEnv(t, withAccess(&e))
	wantError(t, e.do("GET", "/api/admin/rules", "", nil), http.StatusUnauthorized, "Unauthorized", "Authorization")
	wantError(t, e.do("GET", "/api/admin/rules", "forged.token.here", nil), http.StatusUnauthorized, "Unauthorized", "")
	// A read-only application, and a user with the read scope, are not admins.
	for _, tok := range []string{e.reader(), e.userToken("alice", certinv.ScopeVulnerabilityRead)} {
		w := e.do("POST", "/api/admin/rules", tok, strings.NewReader(`{"group":"x","priority":1,"deviceNameGlob":"*"}`))
		wantError(t, w, http.StatusForbidden, "Forbidden", certinv.RoleAdmin)
	}
	if rules, _ := e.db.GroupRules(context.Background()); len(rules) != 0 {
		t.Errorf("a refused admin call made %d rules", len(rules))
	}
	if es, _ := e.db.AuditEntries(context.Background(), 0, 10); len(es) != 0 {
		t.Errorf("refused admin calls were audited as actions: %+v", es)
	}
	// An admin on an unknown route gets 404 in the contract's shape.
	wantError(t, e.do("GET", "/api/admin/nothing", e.adminToken(), nil), http.StatusNotFound, "NotFound", "no GET /api/admin/nothing")
	wantError(t, e.do("PUT", "/api/admin/rules", e.adminToken(), nil), http.StatusNotFound, "NotFound", "no PUT")
}

// TestDelegatedAccessByGrant grants groups through the admin API and reads
// as the users: pages, file list and files show only the granted groups;
// skiptokens and URLs do not carry over.
func TestDelegatedAccessByGrant(t *testing.T) {
	var e *env
	e = newEnv(t, withAccess(&e))
	e.addDevices(0, 30, 3, groupByThree)
	e.build()
	ctx := context.Background()
	groups, _ := e.db.Groups(ctx)
	ids := map[string]int64{}
	for _, g := range groups {
		ids[g.Name] = g.ID
	}

	if r := e.adminDo("PUT", "/api/admin/users/Alice@Example.com/groups/Workstations", ""); r.code != http.StatusOK {
		t.Fatalf("grant = %d %s", r.code, r.body)
	}
	if r := e.adminDo("PUT", "/api/admin/users/bob-oid/groups/"+url.PathEscape("Unassigned"), ""); r.code != http.StatusOK {
		t.Fatalf("grant Unassigned = %d %s", r.code, r.body)
	}
	wantError(t, e.do("PUT", "/api/admin/users/bob-oid/groups/Nope", e.adminToken(), nil), http.StatusNotFound, "NotFound", `no group "Nope"`)

	alice := e.userToken("alice", certinv.ScopeVulnerabilityRead) // upn alice@example.com
	bob := e.userToken("bob-oid", certinv.ScopeVulnerabilityRead)
	carol := e.userToken("carol", certinv.ScopeVulnerabilityRead)

	aliceRecs := e.traverse(PathPages+"?pageSize=7", alice)
	if g := recordGroups(t, aliceRecs); len(g) != 1 || g["Workstations"] != 30 {
		t.Errorf("alice's records by group = %v, want only Workstations' 30", g)
	}
	files, urls := e.exportLines(alice)
	if !slices.Equal(files, aliceRecs) {
		t.Errorf("alice's files hold %d records, her pages %d", len(files), len(aliceRecs))
	}
	for _, u := range urls {
		if !strings.Contains(u, "_RbacGroupId="+strconv.FormatInt(ids["Workstations"], 10)+"/") {
			t.Errorf("alice got a URL of another group: %s", u)
		}
	}
	bobRecs := e.traverse(PathPages, bob)
	if g := recordGroups(t, bobRecs); len(g) != 1 || g[certinv.GroupUnassigned] != 30 {
		t.Errorf("bob's records by group = %v, want only Unassigned's 30", g)
	}
	// Carol has no grant: an empty page and no files, not an error.
	p := decodePage(t, e.do("GET", PathPages, carol, nil))
	if len(p.Value) != 0 || p.NextLink != "" {
		t.Errorf("carol sees %d records", len(p.Value))
	}
	if _, us := e.exportLines(carol); len(us) != 0 {
		t.Errorf("carol gets %d files", len(us))
	}

	// Alice's skiptoken is useless to bob, and to alice once her groups change.
	p = decodePage(t, e.do("GET", PathPages+"?pageSize=5", alice, nil))
	for _, tok := range []string{bob, carol, e.reader()} {
		w := e.do("GET", p.NextLink, tok, nil)
		wantError(t, w, http.StatusBadRequest, "BadRequest", "another caller")
		if strings.Contains(w.Body.String(), "thumbprint") {
			t.Errorf("refused skiptoken leaks records: %s", w.Body)
		}
	}
	// A tampered download URL (alice's, pointed at another group's file) is refused.
	_, all := e.exportLines(e.reader())
	var other string
	for _, u := range all {
		if strings.Contains(u, "_RbacGroupId="+strconv.FormatInt(ids["Servers"], 10)+"/") {
			other = u
		}
	}
	au, _ := url.Parse(urls[0])
	ou, _ := url.Parse(other)
	au.Path = ou.Path
	w := e.do("GET", au.String(), "", nil)
	wantError(t, w, http.StatusForbidden, "Forbidden", "signature")
	if w.Header().Get("Content-Type") == "application/gzip" {
		t.Error("tampered URL served a file")
	}

	r := e.adminDo("DELETE", "/api/admin/users/alice@example.com/groups/Workstations", "")
	if r.code != http.StatusNoContent {
		t.Fatalf("revoke = %d %s", r.code, r.body)
	}
	wantError(t, e.do("GET", p.NextLink, alice, nil), http.StatusBadRequest, "BadRequest", "groups changed")
	if p := decodePage(t, e.do("GET", PathPages, alice, nil)); len(p.Value) != 0 {
		t.Errorf("alice after revoke sees %d records", len(p.Value))
	}

	r = e.adminDo("GET", "/api/admin/grants", "")
	if r.code != http.StatusOK || !strings.Contains(r.body, `"user":"bob-oid"`) || strings.Contains(r.body, "alice") {
		t.Errorf("grants = %d %s; want bob's only", r.code, r.body)
	}
}

func TestAdminRulesApplyFromNextSnapshot(t *testing.T) {
	var e *env
	e = newEnv(t, withAccess(&e))
	e.addDevices(0, 9, 2, func(int) string { return "" })
	first := e.build()
	ctx := context.Background()
	v0, _ := e.db.Version(ctx)

	r := e.adminDo("POST", "/api/admin/rules", `{"group":"Even","priority":10,"deviceNameGlob":"host[02468].*"}`)
	// "[" is literal in certinv globs: this rule matches nothing.
	if r.code != http.StatusCreated {
		t.Fatalf("add rule = %d %s", r.code, r.body)
	}
	r = e.adminDo("POST", "/api/admin/rules", `{"group":"Low","priority":5,"deviceNameGlob":"host?.corp.example","osGlob":"ubuntu*"}`)
	if r.code != http.StatusCreated {
		t.Fatalf("add rule = %d %s", r.code, r.body)
	}
	var rule ruleJSON
	json.Unmarshal([]byte(r.body), &rule)
	if rule.ID == 0 || rule.Group != "Low" || rule.GroupID == 0 {
		t.Errorf("created rule = %+v", rule)
	}
	wantError(t, e.do("POST", "/api/admin/rules", e.adminToken(), strings.NewReader(`{"group":"x","priority":1}`)), http.StatusBadRequest, "InvalidInput", "at least one condition")
	wantError(t, e.do("POST", "/api/admin/rules", e.adminToken(), strings.NewReader(`{"group":"x","priority":1,"nameGlob":"*"}`)), http.StatusBadRequest, "InvalidInput", "nameGlob")

	if v, _ := e.db.Version(ctx); v <= v0 {
		t.Errorf("version after rules = %d, want above %d", v, v0)
	}
	// The published snapshot is unchanged until the next build.
	before := recordGroups(t, e.traverse(PathPages, e.reader()))
	if len(before) != 1 || before[certinv.GroupNone] != 18 {
		t.Errorf("records before the next snapshot by group = %v, want all 18 in None", before)
	}
	e.clock.Add(60e9)
	if s := e.build(); s.ID == first.ID {
		t.Fatal("no new snapshot")
	}
	after := recordGroups(t, e.traverse(PathPages, e.reader()))
	if after["Low"] != 18 {
		t.Errorf("records after the next snapshot by group = %v, want all 18 in Low (host0..host8)", after)
	}

	if r := e.adminDo("DELETE", "/api/admin/rules/"+strconv.FormatInt(rule.ID, 10), ""); r.code != http.StatusNoContent {
		t.Errorf("delete rule = %d %s", r.code, r.body)
	}
	wantError(t, e.do("DELETE", "/api/admin/rules/"+strconv.FormatInt(rule.ID, 10), e.adminToken(), nil), http.StatusNotFound, "NotFound", "no rule")
	r = e.adminDo("GET", "/api/admin/rules", "")
	if r.code != http.StatusOK || strings.Contains(r.body, `"Low"`) || !strings.Contains(r.body, `"Even"`) {
		t.Errorf("rules = %d %s; want Even only", r.code, r.body)
	}

	// Tags and pins through the API.
	dev := deviceID(3)
	r = e.adminDo("PUT", "/api/admin/devices/"+dev+"/tags", `{"tags":["pci"]}`)
	if r.code != http.StatusOK || !strings.Contains(r.body, `"tags":["pci"]`) {
		t.Errorf("tag device = %d %s", r.code, r.body)
	}
	r = e.adminDo("PUT", "/api/admin/devices/"+dev+"/group", `{"group":"Pinned"}`)
	if r.code != http.StatusOK || !strings.Contains(r.body, `"rbacGroupName":"Pinned"`) || !strings.Contains(r.body, `"pinnedGroup":"Pinned"`) {
		t.Errorf("pin device = %d %s", r.code, r.body)
	}
	wantError(t, e.do("PUT", "/api/admin/devices/"+dev+"/group", e.adminToken(), strings.NewReader(`{}`)), http.StatusBadRequest, "InvalidInput", "group")

	// Every change is in the audit log, with the admin app as actor.
	r = e.adminDo("GET", "/api/admin/audit?limit=100", "")
	var audit listJSON[auditJSON]
	if err := json.Unmarshal([]byte(r.body), &audit); err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, a := range audit.Value {
		actions = append(actions, a.Action)
		if !strings.HasPrefix(a.Actor, "app:admin-app tenant:"+testTenant) {
			t.Errorf("audit actor = %q, want the admin app and tenant", a.Actor)
		}
	}
	want := []string{"rule.add", "rule.add", "rule.delete", "device.tags", "device.pin"}
	if !slices.Equal(actions, want) {
		t.Errorf("audit actions = %v, want %v", actions, want)
	}
}
