package httpapi

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certinv/certinv"
	"github.com/certinv/certinv/auth"
)

func TestDownloads(t *testing.T) {
	e := newEnv(t)
	e.addDevices(0, 6, 4, groupByThree)
	e.build()
	tok := e.reader()
	_, urls := e.exportLines(tok)
	if len(urls) == 0 {
		t.Fatal("no export files")
	}
	good := urls[0]
	u, _ := url.Parse(good)
	if !strings.HasPrefix(good, publicURL+"/files/") || !strings.Contains(u.Path, "/CertificateAssessmentExport/json/OrgId=") {
		t.Errorf("download URL %s does not have the reference layout under %s/files/", good, publicURL)
	}

	w := e.do("GET", good, "", nil)
	if w.Code != http.StatusOK {
		t.Fatalf("GET %s = %d: %s", good, w.Code, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/gzip" {
		t.Errorf("Content-Type = %q, want application/gzip", ct)
	}
	if ce := w.Header().Get("Content-Encoding"); ce != "" {
		t.Errorf("Content-Encoding = %q, want none (clients gunzip the body)", ce)
	}
	if cl := w.Header().Get("Content-Length"); cl == "" || cl != strconv.Itoa(w.Body.Len()) {
		t.Errorf("Content-Length = %q, body %d bytes", cl, w.Body.Len())
	}
	whole := w.Body.Bytes()
	if _, err := gzip.NewReader(bytes.NewReader(whole)); err != nil {
		t.Errorf("download is not gzip: %v", err)
	}

	// Range: a part of the file.
	req := newRequest("GET", good)
	req.Header.Set("Range", "bytes=10-19")
	rw := serve(e, req)
	if rw.Code != http.StatusPartialContent || !bytes.Equal(rw.Body.Bytes(), whole[10:20]) {
		t.Errorf("Range bytes=10-19: %d, %d bytes; want 206 with bytes 10..19", rw.Code, rw.Body.Len())
	}

	q := u.Query()
	change := func(k, v string) string {
		q2 := url.Values{}
		for kk, vv := range q {
			q2[kk] = vv
		}
		if v == "" {
			q2.Del(k)
		} else {
			q2.Set(k, v)
		}
		return publicURL + u.Path + "?" + q2.Encode()
	}
	other := urls[len(urls)-1]
	ou, _ := url.Parse(other)
	tests := []struct {
		name   string
		target string
		msg    string
	}{
		{"tampered sig", change("sig", "AAAA"+q.Get("sig")[4:]), "signature does not match"},
		{"no sig", change("sig", ""), "lacks the parameter"},
		{"longer expiry", change("se", "2026-12-04T23:00:00Z"), "signature does not match"},
		{"write permission", change("sp", "rw"), "signature does not match"},
		{"extra parameter", good + "&x=1", "unknown parameter"},
		{"other path", publicURL + ou.Path + "?" + u.RawQuery, "signature does not match"},
	}
	if other == good {
		tests = tests[:len(tests)-1]
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantError(t, e.do("GET", tt.target, "", nil), http.StatusForbidden, "Forbidden", tt.msg)
		})
	}

	// Expired: default 3 hours.
	e.clock.Add(3*time.Hour + time.Second)
	wantError(t, e.do("GET", good, "", nil), http.StatusForbidden, "Forbidden", "expired")

	// sasValidHours=24 gives a day.
	w = e.do("GET", PathExport+"?sasValidHours=24", e.reader(), nil)
	var resp struct{ ExportFiles []string }
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil || w.Code != 200 || len(resp.ExportFiles) == 0 {
		t.Fatalf("export with sasValidHours=24 = %d %s", w.Code, w.Body)
	}
	e.clock.Add(23 * time.Hour)
	if w := e.do("GET", resp.ExportFiles[0], "", nil); w.Code != http.StatusOK {
		t.Errorf("a 24-hour URL after 23 hours = %d, want 200", w.Code)
	}
	e.clock.Add(time.Hour)
	wantError(t, e.do("GET", resp.ExportFiles[0], "", nil), http.StatusForbidden, "Forbidden", "expired")
}

func TestExportResponse(t *testing.T) {
	e := newEnv(t)
	e.addDevices(0, 6, 4, groupByThree)
	e.clock.Add(17*time.Minute + 42*time.Second)
	snap := e.build()
	w := e.do("GET", PathExport, e.reader(), nil)
	if w.Code != http.StatusOK {
		t.Fatalf("export = %d: %s", w.Code, w.Body)
	}
	var resp map[string]any
	dec := json.NewDecoder(w.Body)
	if err := dec.Decode(&resp); err != nil {
		t.Fatal(err)
	}
	wantCtx := publicURL + "/api/$metadata#microsoft.windowsDefenderATP.api.ExportFilesResponse"
	if resp["@odata.context"] != wantCtx {
		t.Errorf("@odata.context = %v, want %s", resp["@odata.context"], wantCtx)
	}
	if resp["generatedTime"] != "2026-12-03T15:17:42Z" || snap.GeneratedAt.Format(time.RFC3339) != "2026-12-03T15:17:42Z" {
		t.Errorf("generatedTime = %v, want the snapshot's 2026-12-03T15:17:42Z", resp["generatedTime"])
	}
	files := resp["exportFiles"].([]any)
	for _, f := range files {
		u, _ := url.Parse(f.(string))
		q := u.Query()
		st, _ := time.Parse(time.RFC3339, q.Get("st"))
		se, _ := time.Parse(time.RFC3339, q.Get("se"))
		if se.Sub(st) != 3*time.Hour || q.Get("sr") != "b" || q.Get("sp") != "r" || q.Get("sv") == "" || q.Get("sig") == "" {
			t.Errorf("URL %s: want a 3-hour SAS query (sv, st, se, sr=b, sp=r, sig)", f)
		}
	}
}

func TestAuthentication(t *testing.T) {
	e := newEnv(t)
	e.addDevices(0, 2, 2, groupByThree)
	e.build()
	expired := e.reader()
	e.clock.Add(2 * time.Hour)
	noRole, _ := e.issuer.Issue(auth.Claims{Audience: auth.AudienceDefender, AppID: "a", ObjectID: "o"})
	otherRole := e.appToken("x", "Machine.Read.All")
	otherAud, _ := e.issuer.Issue(auth.Claims{Audience: "api://elsewhere", AppID: "a", ObjectID: "o", Roles: []string{certinv.RoleVulnerabilityReadAll}})
	wrongScope := e.userToken("dave", "Vulnerability.Read.All.Nope")

	for _, path := range []string{PathPages, PathExport} {
		tests := []struct {
			name   string
			header string
			status int
			code   string
			msg    string
		}{
			{"no header", "", 401, "Unauthorized", "no Authorization header"},
			{"basic", "Basic dXNlcjpwYXNz", 401, "Unauthorized", "Bearer <access token>"},
			{"garbage", "Bearer not.a.jwt", 401, "Unauthorized", "malformed"},
			{"expired", "Bearer " + expired, 401, "Unauthorized", "expired"},
			{"other audience", "Bearer " + otherAud, 401, "Unauthorized", "audience"},
			{"no role", "Bearer " + noRole, 403, "Forbidden", "Vulnerability.Read.All"},
			{"other role", "Bearer " + otherRole, 403, "Forbidden", "Vulnerability.Read.All"},
			{"wrong scope", "Bearer " + wrongScope, 403, "Forbidden", "Vulnerability.Read"},
		}
		for _, tt := range tests {
			t.Run(path+"/"+tt.name, func(t *testing.T) {
				r := newRequest("GET", path)
				if tt.header != "" {
					r.Header.Set("Authorization", tt.header)
				}
				w := serve(e, r)
				wantError(t, w, tt.status, tt.code, tt.msg)
				if got := w.Header().Get("WWW-Authenticate"); (tt.status == 401) != strings.HasPrefix(got, "Bearer") {
					t.Errorf("WWW-Authenticate = %q with status %d", got, tt.status)
				}
			})
		}
	}
	// The scheme is case-insensitive; a delegated Vulnerability.Read works.
	r := newRequest("GET", PathPages)
	r.Header.Set("Authorization", "bearer "+e.reader())
	if w := serve(e, r); w.Code != 200 {
		t.Errorf("lower-case bearer scheme = %d, want 200", w.Code)
	}
}

func TestRoutingErrors(t *testing.T) {
	e := newEnv(t)
	wantError(t, e.do("GET", "/api/machines/SoftwareVulnerabilitiesByMachine", "", nil), 404, "NotFound", "no resource")
	wantError(t, e.do("GET", "/", "", nil), 404, "NotFound", "no resource")
	w := e.do("POST", PathPages, "", nil)
	wantError(t, w, 405, "MethodNotAllowed", "use GET")
	if w.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("Allow = %q, want GET, HEAD", w.Header().Get("Allow"))
	}
	wantError(t, e.do("DELETE", "/files/a/b", "", nil), 405, "MethodNotAllowed", "GET, HEAD")
	// Request ids differ per request.
	a, b := e.do("GET", "/nope", "", nil), e.do("GET", "/nope", "", nil)
	if a.Header().Get("X-Request-Id") == b.Header().Get("X-Request-Id") {
		t.Error("two requests share a request id")
	}
}

func TestJWKSAndMetadata(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{"/.well-known/jwks.json", "/discovery/v2.0/keys"} {
		w := e.do("GET", p, "", nil)
		if w.Code != 200 || !bytes.Equal(w.Body.Bytes(), e.issuer.JWKS()) {
			t.Errorf("GET %s = %d %s, want the issuer's JWKS", p, w.Code, w.Body)
		}
	}
	w := e.do("GET", "/api/$metadata", "", nil)
	if w.Code != 200 || !strings.Contains(w.Body.String(), `Name="AssetCertificateAssessment"`) || !strings.Contains(w.Body.String(), `Name="ExportFilesResponse"`) {
		t.Errorf("GET /api/$metadata = %d, want the CSDL document", w.Code)
	}
	e2 := newEnv(t, func(c *Config) { c.JWKS = nil; c.LocalFiles = nil })
	wantError(t, e2.do("GET", "/.well-known/jwks.json", "", nil), 404, "NotFound", "does not issue tokens")
	wantError(t, e2.do("GET", "/files/a/b?sig=x", "", nil), 404, "NotFound", "does not serve files")
}

// TestAccessLogKeepsSecrets checks that tokens, skiptokens and SAS
// signatures never reach the log, while the access line does.
func TestAccessLogKeepsSecrets(t *testing.T) {
	e := newEnv(t)
	e.addDevices(0, 6, 4, groupByThree)
	e.build()
	tok := e.reader()
	p := decodePage(t, e.do("GET", PathPages+"?pageSize=3", tok, nil))
	e.do("GET", p.NextLink, tok, nil)
	_, urls := e.exportLines(tok)
	e.do("GET", urls[0]+"x", "", nil) // a refused download is logged too
	e.do("GET", PathPages, "bad-token-value", nil)

	logs := e.logs.String()
	u, _ := url.Parse(urls[0])
	skip := p.NextLink[strings.Index(p.NextLink, "$skiptoken=")+11:]
	for name, secret := range map[string]string{"token": tok, "token signature": tok[strings.LastIndex(tok, ".")+1:], "skiptoken": skip, "sas sig": u.Query().Get("sig"), "bad token": "bad-token-value"} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log holds the %s", name)
		}
	}
	if !strings.Contains(logs, "http request") || !strings.Contains(logs, "status=200") || !strings.Contains(logs, "request_id=") {
		t.Errorf("no access log line with status and request id in:\n%s", logs)
	}
}

func TestNewRefusesIncompleteConfig(t *testing.T) {
	e := newEnv(t)
	for name, mod := range map[string]func(*Config){
		"short skiptoken key": func(c *Config) { c.SkiptokenKey = []byte("short") },
		"no registry":         func(c *Config) { c.Registry = nil },
		"relative public url": func(c *Config) { c.PublicURL = "/api" },
		"ingest without hash": func(c *Config) { c.Ingest = ingestFunc(nil); c.EnrollmentSecretHash = [32]byte{} },
	} {
		c := e.cfg
		mod(&c)
		if _, err := New(c); err == nil {
			t.Errorf("New(%s) = nil error, want refusal", name)
		}
	}
}

func newRequest(method, target string) *http.Request {
	return httptest.NewRequest(method, strings.TrimPrefix(target, publicURL), nil)
}

func serve(e *env, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	e.srv.ServeHTTP(w, r)
	return w
}

// ingestFunc adapts a function to Ingester.
type ingestFunc func(context.Context, *certinv.Report) (*certinv.IngestResult, error)

func (f ingestFunc) Ingest(ctx context.Context, r *certinv.Report) (*certinv.IngestResult, error) {
	return f(ctx, r)
}
