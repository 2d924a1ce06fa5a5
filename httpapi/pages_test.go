package httpapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certinv/certinv"
	"github.com/certinv/certinv/snapshot"
)

// TestPagesEqualExportFiles checks the contract's central promise: a full
// traversal of the JSON pages yields the lines of the export files, line for
// line, at several page sizes.
func TestPagesEqualExportFiles(t *testing.T) {
	e := newEnv(t)
	e.addDevices(0, 30, 9, groupByThree) // 270 records, 3 groups, several files each
	snap := e.build()
	tok := e.reader()

	files, urls := e.exportLines(tok)
	if int64(len(files)) != snap.Records || len(files) != 270 {
		t.Fatalf("export has %d lines, snapshot %d records, want 270", len(files), snap.Records)
	}
	if len(urls) < 6 {
		t.Errorf("export has %d files, want several per group (RecordsPerFile 40)", len(urls))
	}
	for _, size := range []int{1, 7, 37, 40, 269, 270, 1000} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			got := e.traverse(PathPages+"?pageSize="+strconv.Itoa(size), tok)
			if !slices.Equal(got, files) {
				t.Fatalf("traversal with pageSize=%d: %d records, want the %d lines of the export files in order", size, len(got), len(files))
			}
		})
	}
	for _, rec := range files {
		var m map[string]any
		if err := json.Unmarshal([]byte(rec), &m); err != nil {
			t.Fatalf("record %s: %v", rec, err)
		}
	}
}

func TestPageShape(t *testing.T) {
	e := newEnv(t)
	e.addDevices(0, 10, 5, groupByThree)
	snap := e.build()

	w := e.do("GET", PathPages+"?pageSize=12", e.reader(), nil)
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	p := decodePage(t, w)
	wantCtx := publicURL + "/api/$metadata#Collection(microsoft.windowsDefenderATP.api.AssetCertificateAssessment)"
	if p.Context != wantCtx {
		t.Errorf("@odata.context = %q, want %q", p.Context, wantCtx)
	}
	if len(p.Value) != 12 {
		t.Errorf("page has %d records, want 12", len(p.Value))
	}
	prefix := publicURL + "/api/machines/CertificateAssessmentByMachine?pagesize=12&$skiptoken="
	if !strings.HasPrefix(p.NextLink, prefix) {
		t.Fatalf("nextLink = %q, want prefix %q", p.NextLink, prefix)
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(p.NextLink, prefix))
	if err != nil {
		t.Fatalf("skiptoken is not unpadded URL-safe base64: %v", err)
	}
	var tok struct {
		ExportDefinition struct{ TimePath string }
		ExportFileIndex  int
		LineStoppedAt    int64
		SnapshotId       string
	}
	if err := json.Unmarshal(raw, &tok); err != nil {
		t.Fatalf("skiptoken JSON %s: %v", raw, err)
	}
	if tok.ExportDefinition.TimePath != "2026-12-03/1500/" || tok.SnapshotId != snap.ID {
		t.Errorf("skiptoken = %s, want TimePath 2026-12-03/1500/ and SnapshotId %s", raw, snap.ID)
	}
	// 50 records; the first group's file holds those of group 1 first.
	if tok.ExportFileIndex != 0 || tok.LineStoppedAt != 12 {
		t.Errorf("skiptoken position = file %d line %d, want file 0 line 12 (first file has more than 12 lines)", tok.ExportFileIndex, tok.LineStoppedAt)
	}

	// The last page has no nextLink; the default page size takes everything.
	p = decodePage(t, e.do("GET", PathPages, e.reader(), nil))
	if len(p.Value) != 50 || p.NextLink != "" {
		t.Errorf("default page: %d records, nextLink %q; want 50 and none", len(p.Value), p.NextLink)
	}
	// An empty page past the end: a skiptoken at the very end yields [] and no link.
	p = decodePage(t, e.do("GET", PathPages+"?pageSize=50", e.reader(), nil))
	if p.NextLink != "" {
		t.Errorf("pageSize=50 of 50 records: nextLink %q, want none", p.NextLink)
	}
}

func TestCaseInsensitiveRoutesAndParameters(t *testing.T) {
	e := newEnv(t)
	e.addDevices(0, 4, 5, groupByThree)
	e.build()
	tok := e.reader()
	for _, target := range []string{
		"/api/machines/CertificateAssessmentByMachine?pagesize=3",
		"/api/machines/certificateAssessmentByMachine?PageSize=3",
		"/API/MACHINES/CERTIFICATEASSESSMENTBYMACHINE?PAGESIZE=3",
		"/api/machines/certificateassessmentbymachine?pageSize=3",
	} {
		p := decodePage(t, e.do("GET", target, tok, nil))
		if len(p.Value) != 3 || p.NextLink == "" {
			t.Errorf("GET %s: %d records, nextLink %q; want 3 and a link", target, len(p.Value), p.NextLink)
		}
	}
	for _, target := range []string{"/api/machines/certificateAssessmentExport?SASVALIDHOURS=2", "/API/machines/CertificateAssessmentExport"} {
		if w := e.do("GET", target, tok, nil); w.Code != http.StatusOK {
			t.Errorf("GET %s = %d, want 200: %s", target, w.Code, w.Body)
		}
	}
	// $TOP in capitals too.
	p := decodePage(t, e.do("GET", PathPages+"?$TOP=2", tok, nil))
	if len(p.Value) != 2 || p.NextLink != "" {
		t.Errorf("$TOP=2: %d records, nextLink %q; want 2 and none", len(p.Value), p.NextLink)
	}
}

func TestTop(t *testing.T) {
	e := newEnv(t)
	e.addDevices(0, 10, 5, groupByThree)
	e.build()
	tok := e.reader()
	all := e.traverse(PathPages, tok)
	for _, target := range []string{PathPages + "?$top=7", PathPages + "?$top=7&pageSize=3", PathPages + "?%24top=7"} {
		p := decodePage(t, e.do("GET", target, tok, nil))
		if p.NextLink != "" || len(p.Value) != 7 {
			t.Fatalf("GET %s: %d records, nextLink %q; want 7 and none", target, len(p.Value), p.NextLink)
		}
		for i, v := range p.Value {
			if string(v) != all[i] {
				t.Errorf("GET %s: record %d differs from the traversal's", target, i)
			}
		}
	}
	// $top with a skiptoken: that many from the token's position.
	p := decodePage(t, e.do("GET", PathPages+"?pageSize=5", tok, nil))
	p2 := decodePage(t, e.do("GET", p.NextLink+"&$top=4", tok, nil))
	if len(p2.Value) != 4 || p2.NextLink != "" || string(p2.Value[0]) != all[5] {
		t.Errorf("$top=4 after a skiptoken: %d records, nextLink %q; want records 5..8 and no link", len(p2.Value), p2.NextLink)
	}
	// $top beyond the inventory: everything, no link.
	p = decodePage(t, e.do("GET", PathPages+"?$top=200000", tok, nil))
	if len(p.Value) != len(all) || p.NextLink != "" {
		t.Errorf("$top=200000: %d records, want %d", len(p.Value), len(all))
	}
}

func TestBadParameters(t *testing.T) {
	e := newEnv(t)
	e.addDevices(0, 2, 2, groupByThree)
	e.build()
	tok := e.reader()
	tests := []struct {
		target string
		msg    string
	}{
		{PathPages + "?pageSize=0", "pageSize must be an integer between 1 and 200000"},
		{PathPages + "?pageSize=200001", "pageSize must be an integer between 1 and 200000"},
		{PathPages + "?pagesize=-1", "pageSize must be an integer between 1 and 200000"},
		{PathPages + "?pageSize=ten", "pageSize must be an integer between 1 and 200000"},
		{PathPages + "?pageSize=", "pageSize must be an integer between 1 and 200000"},
		{PathPages + "?pageSize=5&pagesize=6", "given more than once"},
		{PathPages + "?$top=0", "$top must be an integer between 1 and 200000"},
		{PathPages + "?$top=200001", "$top must be an integer between 1 and 200000"},
		{PathPages + "?$top=1.5", "$top must be an integer between 1 and 200000"},
		{PathPages + "?$filter=deviceName%20eq%20'x'", "$filter is not supported"},
		{PathPages + "?$skip=10", "$skip is not supported"},
		{PathPages + "?a=1;b=2", "malformed"},
		{PathExport + "?sasValidHours=0", "sasValidHours must be an integer between 1 and 24"},
		{PathExport + "?sasValidHours=25", "sasValidHours must be an integer between 1 and 24"},
		{PathExport + "?sasvalidhours=x", "sasValidHours must be an integer between 1 and 24"},
		{PathExport + "?$top=3", "$top is not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			wantError(t, e.do("GET", tt.target, tok, nil), http.StatusBadRequest, "InvalidInput", tt.msg)
		})
	}
}

// skiptokenOf returns the decoded JSON of a nextLink's skiptoken.
func skiptokenOf(t *testing.T, link string) map[string]any {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.RawURLEncoding.DecodeString(u.Query().Get("$skiptoken"))
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func withSkiptoken(m map[string]any) string {
	b, _ := json.Marshal(m)
	return PathPages + "?pagesize=5&$skiptoken=" + base64.RawURLEncoding.EncodeToString(b)
}

func TestBadSkiptokens(t *testing.T) {
	e := newEnv(t)
	e.addDevices(0, 10, 5, groupByThree)
	snap := e.build()
	tok := e.reader()
	p := decodePage(t, e.do("GET", PathPages+"?pageSize=5", tok, nil))
	good := skiptokenOf(t, p.NextLink)
	goodParam := p.NextLink[strings.Index(p.NextLink, "$skiptoken=")+len("$skiptoken="):]

	// Padded base64 and standard escaping of the same token are accepted.
	padded := goodParam + strings.Repeat("=", (4-len(goodParam)%4)%4)
	for _, target := range []string{PathPages + "?pagesize=5&$skiptoken=" + padded, PathPages + "?pagesize=5&%24skiptoken=" + url.QueryEscape(padded)} {
		if w := e.do("GET", target, tok, nil); w.Code != http.StatusOK {
			t.Errorf("GET %s = %d, want 200: %s", target, w.Code, w.Body)
		}
	}

	forged := func(k string, v any) string {
		m := map[string]any{}
		for key, val := range good {
			m[key] = val
		}
		m[k] = v
		return withSkiptoken(m)
	}
	tests := []struct {
		name   string
		target string
		token  string
		msg    string
	}{
		{"not base64", PathPages + "?$skiptoken=***", tok, "not URL-safe base64"},
		{"not JSON", PathPages + "?$skiptoken=" + base64.RawURLEncoding.EncodeToString([]byte("hello")), tok, "not a token this server gave out"},
		{"vendor shape without signature", withSkiptoken(map[string]any{"ExportDefinition": map[string]any{"TimePath": "2026-12-03/1500/"}, "ExportFileIndex": 0, "LineStoppedAt": 5}), tok, "signature is not valid"},
		{"forged line", forged("LineStoppedAt", 7), tok, "signature is not valid"},
		{"forged file", forged("ExportFileIndex", 1), tok, "signature is not valid"},
		{"forged snapshot", forged("SnapshotId", certinv.NewGUID()), tok, "signature is not valid"},
		{"unknown field", forged("Extra", 1), tok, "not a token this server gave out"},
		{"too long", PathPages + "?$skiptoken=" + strings.Repeat("A", 5000), tok, "too long"},
		{"other caller", p.NextLink, e.appToken("other-app", certinv.RoleVulnerabilityReadAll), "another caller"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := wantError(t, e.do("GET", tt.target, tt.token, nil), http.StatusBadRequest, "BadRequest", tt.msg)
			if !strings.Contains(b.Error.Message, "start again from the first page") {
				t.Errorf("message %q does not tell the client to start again", b.Error.Message)
			}
		})
	}

	// Retired: the registry no longer knows the snapshot.
	e.clock.Add(time.Minute)
	e.build()
	if err := e.db.RetireSnapshot(context.Background(), snap.ID); err != nil {
		t.Fatal(err)
	}
	wantError(t, e.do("GET", p.NextLink, tok, nil), http.StatusBadRequest, "BadRequest", "retired")
}

// TestTraversalKeepsItsSnapshot publishes a newer snapshot in the middle of
// a traversal: the traversal ends on the snapshot it started on.
func TestTraversalKeepsItsSnapshot(t *testing.T) {
	e := newEnv(t)
	e.addDevices(0, 10, 5, groupByThree)
	first := e.build()
	tok := e.reader()
	before, _ := e.exportLines(tok)

	p := decodePage(t, e.do("GET", PathPages+"?pageSize=8", tok, nil))
	got := make([]string, 0, len(before))
	for _, v := range p.Value {
		got = append(got, string(v))
	}

	e.addDevices(10, 20, 5, groupByThree) // the inventory grows
	e.clock.Add(time.Hour)
	second := e.build()
	if second.ID == first.ID || second.Records != 100 {
		t.Fatalf("second snapshot %s has %d records, want a new one with 100", second.ID, second.Records)
	}
	got = append(got, e.traverse(p.NextLink, tok)...)
	if !slices.Equal(got, before) {
		t.Errorf("traversal across a publish: %d records, want the %d of its own snapshot", len(got), len(before))
	}
	// A new traversal sees the new snapshot, as do the files.
	after := e.traverse(PathPages+"?pageSize=30", tok)
	files, _ := e.exportLines(tok)
	if len(after) != 100 || !slices.Equal(after, files) {
		t.Errorf("new traversal: %d records, want the 100 of the new snapshot's files", len(after))
	}
}

func TestNoSnapshotYet(t *testing.T) {
	e := newEnv(t)
	tok := e.reader()
	for _, target := range []string{PathPages, PathExport, "/healthz"} {
		t.Run(target, func(t *testing.T) {
			w := e.do("GET", target, tok, nil)
			wantError(t, w, http.StatusServiceUnavailable, "ServiceUnavailable", "being built")
			if w.Header().Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
		})
	}
	e.addDevices(0, 1, 1, groupByThree)
	e.build()
	if w := e.do("GET", "/healthz", "", nil); w.Code != http.StatusOK {
		t.Errorf("healthz after the first snapshot = %d, want 200", w.Code)
	}
}

// TestDelegatedScope checks that a user sees the records and files of the
// groups given to them only, and that the default gives users nothing.
func TestDelegatedScope(t *testing.T) {
	ctx := context.Background()
	var groupIDs map[string]int64
	e := newEnv(t, func(c *Config) {
		c.Groups = func(_ context.Context, p *certinv.Principal) (bool, []int64, error) {
			if !p.Delegated() {
				return true, nil, nil
			}
			if p.ObjectID == "alice" {
				return false, []int64{groupIDs["Workstations"]}, nil
			}
			return false, nil, nil
		}
	})
	e.addDevices(0, 12, 4, groupByThree)
	e.build()
	groups, err := e.db.Groups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	groupIDs = map[string]int64{}
	for _, g := range groups {
		groupIDs[g.Name] = g.ID
	}

	alice := e.userToken("alice", certinv.ScopeVulnerabilityRead)
	recs := e.traverse(PathPages+"?pageSize=5", alice)
	if len(recs) != 16 { // 4 devices of Workstations x 4 certificates
		t.Errorf("alice sees %d records, want the 16 of Workstations", len(recs))
	}
	for _, r := range recs {
		var rec struct{ RbacGroupName string }
		json.Unmarshal([]byte(r), &rec)
		if rec.RbacGroupName != "Workstations" {
			t.Errorf("alice sees a record of group %q", rec.RbacGroupName)
		}
	}
	files, urls := e.exportLines(alice)
	if !slices.Equal(files, recs) {
		t.Errorf("alice's files hold %d records, her pages %d; want the same", len(files), len(recs))
	}
	for _, u := range urls {
		if !strings.Contains(u, "_RbacGroupId="+strconv.FormatInt(groupIDs["Workstations"], 10)+"/") {
			t.Errorf("alice gets URL %s of another group", u)
		}
	}
	// Alice's skiptoken is hers alone, also against another user of the same app.
	p := decodePage(t, e.do("GET", PathPages+"?pageSize=5", alice, nil))
	bob := e.userToken("bob", certinv.ScopeVulnerabilityRead)
	wantError(t, e.do("GET", p.NextLink, bob, nil), http.StatusBadRequest, "BadRequest", "another caller")

	// Bob has no groups: empty answers, not errors.
	p = decodePage(t, e.do("GET", PathPages, bob, nil))
	if len(p.Value) != 0 || p.NextLink != "" {
		t.Errorf("bob: %d records, link %q; want none", len(p.Value), p.NextLink)
	}
	if _, urls := e.exportLines(bob); len(urls) != 0 {
		t.Errorf("bob gets %d export files, want none", len(urls))
	}
}

func TestDefaultGroups(t *testing.T) {
	e := newEnv(t)
	e.addDevices(0, 3, 2, groupByThree)
	e.build()
	p := decodePage(t, e.do("GET", PathPages, e.userToken("carol", certinv.ScopeVulnerabilityRead), nil))
	if len(p.Value) != 0 {
		t.Errorf("a delegated user under DefaultGroups sees %d records, want 0", len(p.Value))
	}
	p = decodePage(t, e.do("GET", PathPages, e.reader(), nil))
	if len(p.Value) != 6 {
		t.Errorf("an application under DefaultGroups sees %d records, want 6", len(p.Value))
	}
}

// TestFilesGoneBeforeRegistry covers a snapshot whose files were deleted
// while the registry still names it (a retire between lookup and read): a
// continued traversal is told to start again, not sent a broken body, a
// download gets 404, and a first page is an internal error whose body does
// not show where the files were.
func TestFilesGoneBeforeRegistry(t *testing.T) {
	e := newEnv(t)
	e.addDevices(0, 6, 4, groupByThree)
	snap := e.build()
	tok := e.reader()
	_, urls := e.exportLines(tok) // reads, and caches, the manifest
	p := decodePage(t, e.do("GET", PathPages+"?pageSize=5", tok, nil))
	if err := e.bucket.DeleteContainer(context.Background(), snapshot.Container(snap.ID)); err != nil {
		t.Fatal(err)
	}
	wantError(t, e.do("GET", p.NextLink, tok, nil), http.StatusBadRequest, "BadRequest", "retired")
	wantError(t, e.do("GET", urls[0], "", nil), http.StatusNotFound, "NotFound", "no longer exists")

	e.srv.manifests = manifestCache{max: manifestCacheSize} // as after a restart
	wantError(t, e.do("GET", p.NextLink, tok, nil), http.StatusBadRequest, "BadRequest", "retired")
	w := e.do("GET", PathPages, tok, nil)
	wantError(t, w, http.StatusInternalServerError, "InternalServerError", "internal error")
	if strings.Contains(w.Body.String(), e.bucket.Root()) {
		t.Errorf("error body %s shows the bucket's folder", w.Body)
	}
	if !strings.Contains(e.logs.String(), "internal error") {
		t.Error("the internal error is not logged")
	}
}
