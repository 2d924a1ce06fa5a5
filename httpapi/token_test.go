package httpapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certinv/certinv"
	"github.com/certinv/certinv/auth"
	"github.com/certinv/certinv/sqlite"
)

// tokenEnv is a server with the embedded issuer's token endpoints, its
// applications registered in the env's SQLite store.
type tokenEnv struct {
	*env
	apps *auth.Apps
}

func newTokenEnv(t testing.TB) *tokenEnv {
	t.Helper()
	te := &tokenEnv{}
	te.env = newEnv(t, func(c *Config) {
		v := *c.Verifier.(*auth.Verifier)
		iss := v.Keys.(*auth.Issuer)
		te.apps = &auth.Apps{Store: c.Registry.(*sqlite.DB), Issuer: iss, Now: c.Now}
		v.Credentials = te.apps
		v.Cache = auth.NewTokenCache(0)
		c.Verifier = &v
		c.Tokens = &TokenConfig{Grants: te.apps, Issuer: iss.IssuerURL(), TenantID: testTenant}
	})
	return te
}

func (te *tokenEnv) createApp(t testing.TB, roles ...string) (*certinv.App, string) {
	t.Helper()
	app, secret, err := te.apps.Create(context.Background(), "export job", roles)
	if err != nil {
		t.Fatal(err)
	}
	return app, secret
}

// post sends a form to path, with HTTP Basic credentials when basic is set.
func (te *tokenEnv) post(path string, form url.Values, basic ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("POST", path, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if len(basic) == 2 {
		r.SetBasicAuth(url.QueryEscape(basic[0]), url.QueryEscape(basic[1]))
	}
	w := httptest.NewRecorder()
	te.srv.ServeHTTP(w, r)
	return w
}

func v2Form(id, secret string) url.Values {
	return url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret},
		"scope": {auth.AudienceDefender + "/.default"}}
}

// tokenOf checks a successful v2 answer and returns its access token.
func tokenOf(t testing.TB, w *httptest.ResponseRecorder) string {
	t.Helper()
	if w.Code != http.StatusOK {
		t.Fatalf("token endpoint = %d %s, want 200", w.Code, w.Body)
	}
	var b struct {
		TokenType    string `json:"token_type"`
		ExpiresIn    int    `json:"expires_in"`
		ExtExpiresIn int    `json:"ext_expires_in"`
		AccessToken  string `json:"access_token"`
	}
	dec := json.NewDecoder(w.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		t.Fatalf("token answer: %v", err)
	}
	if b.TokenType != "Bearer" || b.ExpiresIn != 3599 || b.ExtExpiresIn != 3599 || b.AccessToken == "" {
		t.Errorf("token answer = %+v, want Bearer, 3599 seconds, a token", b)
	}
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", cc)
	}
	return b.AccessToken
}

// TestTokenEndToEnd is the whole flow: register an app, get a token from
// the v2 endpoint, read the JSON pages with it.
func TestTokenEndToEnd(t *testing.T) {
	te := newTokenEnv(t)
	te.addDevices(0, 6, 5, groupByThree)
	te.build()
	app, secret := te.createApp(t, certinv.RoleVulnerabilityReadAll)

	for _, path := range []string{PathTokenV2, "/" + testTenant + PathTokenV2, strings.ToUpper("/" + testTenant + PathTokenV2)} {
		tok := tokenOf(t, te.post(path, v2Form(app.ID, secret)))
		p := decodePage(t, te.do("GET", PathPages, tok, nil))
		if len(p.Value) != 30 {
			t.Errorf("page read with a token of %s holds %d records, want 30", path, len(p.Value))
		}
	}
	// HTTP Basic (client_secret_basic) works as well.
	form := v2Form("", "")
	form.Del("client_id")
	form.Del("client_secret")
	tok := tokenOf(t, te.post(PathTokenV2, form, app.ID, secret))
	if w := te.do("GET", PathPages+"?$top=1", tok, nil); w.Code != http.StatusOK {
		t.Errorf("page with a token got through HTTP Basic = %d %s", w.Code, w.Body)
	}
}

func TestTokenV1(t *testing.T) {
	te := newTokenEnv(t)
	te.addDevices(0, 1, 2, groupByThree)
	te.build()
	app, secret := te.createApp(t, certinv.RoleVulnerabilityReadAll)
	w := te.post("/"+testTenant+PathTokenV1, url.Values{"grant_type": {"client_credentials"}, "client_id": {app.ID},
		"client_secret": {secret}, "resource": {auth.AudienceDefender}})
	if w.Code != http.StatusOK {
		t.Fatalf("v1 token endpoint = %d %s", w.Code, w.Body)
	}
	var b map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil {
		t.Fatal(err)
	}
	now := te.clock.Now()
	want := map[string]any{
		"token_type": "Bearer", "expires_in": "3599", "ext_expires_in": "3599",
		"expires_on": strconv.FormatInt(now.Add(time.Hour).Unix(), 10), "not_before": strconv.FormatInt(now.Unix(), 10),
		"resource": auth.AudienceDefender,
	}
	for k, v := range want {
		if b[k] != v {
			t.Errorf("v1 answer %s = %#v, want %#v", k, b[k], v)
		}
	}
	tok, _ := b["access_token"].(string)
	if len(b) != len(want)+1 || tok == "" {
		t.Errorf("v1 answer = %v, want the fields %v and access_token", b, want)
	}
	if w := te.do("GET", PathPages, tok, nil); w.Code != http.StatusOK {
		t.Errorf("page with a v1 token = %d %s", w.Code, w.Body)
	}
}

// oauthBody is a decoded OAuth error answer.
type oauthBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
	TraceID     string `json:"trace_id"`
	Timestamp   string `json:"timestamp"`
}

// wantOAuthError checks an OAuth error answer, and that it holds no token.
func wantOAuthError(t testing.TB, w *httptest.ResponseRecorder, status int, code, descPart string) {
	t.Helper()
	if w.Code != status {
		t.Errorf("status = %d, want %d (body %s)", w.Code, status, w.Body)
	}
	if strings.Contains(w.Body.String(), "access_token") || strings.Contains(w.Body.String(), "eyJ") {
		t.Errorf("error answer %s holds a token", w.Body)
	}
	var b oauthBody
	dec := json.NewDecoder(bytes.NewReader(w.Body.Bytes()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		t.Fatalf("error body %s: %v", w.Body, err)
	}
	if b.Error != code || !strings.Contains(b.Description, descPart) {
		t.Errorf("error = %q %q, want %q containing %q", b.Error, b.Description, code, descPart)
	}
	if b.TraceID == "" || b.TraceID != w.Header().Get("X-Request-Id") {
		t.Errorf("trace_id = %q, want the request id %q", b.TraceID, w.Header().Get("X-Request-Id"))
	}
	if w.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", w.Header().Get("Cache-Control"))
	}
	t.Logf("%d %s", w.Code, w.Body)
}

func TestTokenRejections(t *testing.T) {
	te := newTokenEnv(t)
	app, secret := te.createApp(t, certinv.RoleVulnerabilityReadAll)
	deleted, deletedSecret := te.createApp(t, certinv.RoleVulnerabilityReadAll)
	if err := te.apps.Delete(context.Background(), deleted.ID); err != nil {
		t.Fatal(err)
	}
	rotated, oldSecret := te.createApp(t, certinv.RoleVulnerabilityReadAll)
	if _, _, err := te.apps.Rotate(context.Background(), rotated.ID); err != nil {
		t.Fatal(err)
	}
	form := func(edit func(url.Values)) url.Values {
		f := v2Form(app.ID, secret)
		edit(f)
		return f
	}
	set := func(k, v string) func(url.Values) { return func(f url.Values) { f.Set(k, v) } }
	del := func(k string) func(url.Values) { return func(f url.Values) { f.Del(k) } }
	v1 := url.Values{"grant_type": {"client_credentials"}, "client_id": {app.ID}, "client_secret": {secret}}

	tests := []struct {
		name   string
		path   string
		form   url.Values
		basic  []string
		status int
		code   string
		desc   string
	}{
		{"wrong secret", PathTokenV2, form(set("client_secret", secret[:len(secret)-1]+"x")), nil, 401, "invalid_client", "client_secret is wrong"},
		{"unknown client", PathTokenV2, form(set("client_id", certinv.NewGUID())), nil, 401, "invalid_client", "client_id is unknown"},
		{"deleted app", PathTokenV2, v2Form(deleted.ID, deletedSecret), nil, 401, "invalid_client", "client_id is unknown"},
		{"rotated secret", PathTokenV2, v2Form(rotated.ID, oldSecret), nil, 401, "invalid_client", "client_secret is wrong"},
		{"wrong grant type", PathTokenV2, form(set("grant_type", "password")), nil, 400, "unsupported_grant_type", "use client_credentials"},
		{"no grant type", PathTokenV2, form(del("grant_type")), nil, 400, "invalid_request", "grant_type is missing"},
		{"scope of another API", PathTokenV2, form(set("scope", "https://graph.microsoft.com/.default")), nil, 400, "invalid_scope", "audiences"},
		{"scope without .default", PathTokenV2, form(set("scope", auth.AudienceDefender+"/Vulnerability.Read.All")), nil, 400, "invalid_scope", "/.default"},
		{"two scopes", PathTokenV2, form(set("scope", auth.AudienceDefender+"/.default openid")), nil, 400, "invalid_scope", "one scope"},
		{"no scope", PathTokenV2, form(del("scope")), nil, 400, "invalid_request", "scope is missing"},
		{"resource on v2", PathTokenV2, form(set("resource", auth.AudienceDefender)), nil, 400, "invalid_request", "resource is not a parameter"},
		{"no client id", PathTokenV2, form(del("client_id")), nil, 400, "invalid_request", "client_id is missing"},
		{"no secret", PathTokenV2, form(del("client_secret")), nil, 401, "invalid_client", "client_secret is missing"},
		{"long client id", PathTokenV2, form(set("client_id", strings.Repeat("a", MaxClientIDLength+1))), nil, 400, "invalid_request", "client_id is longer"},
		{"long secret", PathTokenV2, form(set("client_secret", strings.Repeat("a", MaxClientSecretLength+1))), nil, 400, "invalid_request", "client_secret is longer"},
		{"parameter twice", PathTokenV2, func() url.Values { f := v2Form(app.ID, secret); f.Add("client_id", app.ID); return f }(), nil, 400, "invalid_request", "more than once"},
		{"Basic and client_secret", PathTokenV2, v2Form(app.ID, secret), []string{app.ID, secret}, 400, "invalid_request", "use one"},
		{"Basic with wrong secret", PathTokenV2, form(func(f url.Values) { f.Del("client_id"); f.Del("client_secret") }), []string{app.ID, "nope"}, 401, "invalid_client", "client_secret is wrong"},
		{"Basic user differs from client_id", PathTokenV2, form(del("client_secret")), []string{certinv.NewGUID(), secret}, 400, "invalid_request", "differs"},
		{"v1 wrong resource", PathTokenV1, func() url.Values {
			f := url.Values{}
			copyForm(f, v1)
			f.Set("resource", "https://management.azure.com/")
			return f
		}(), nil, 400, "invalid_resource", "audiences"},
		{"v1 no resource", PathTokenV1, v1, nil, 400, "invalid_request", "resource is missing"},
		{"v1 wrong secret", PathTokenV1, func() url.Values {
			f := url.Values{}
			copyForm(f, v1)
			f.Set("resource", auth.AudienceDefender)
			f.Set("client_secret", "x")
			return f
		}(), nil, 401, "invalid_client", "client_secret is wrong"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := te.post(tt.path, tt.form, tt.basic...)
			wantOAuthError(t, w, tt.status, tt.code, tt.desc)
			if tt.status == 401 && tt.basic != nil && !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Basic") {
				t.Errorf("401 to a Basic client: WWW-Authenticate = %q, want Basic", w.Header().Get("WWW-Authenticate"))
			}
		})
	}

	// Requests that are not a form at all.
	for name, r := range map[string]*http.Request{
		"JSON body": func() *http.Request {
			r := httptest.NewRequest("POST", PathTokenV2, strings.NewReader(`{"grant_type":"client_credentials"}`))
			r.Header.Set("Content-Type", "application/json")
			return r
		}(),
		"oversize body": func() *http.Request {
			f := v2Form(app.ID, secret)
			f.Set("padding", strings.Repeat("x", MaxTokenRequestBytes))
			r := httptest.NewRequest("POST", PathTokenV2, strings.NewReader(f.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return r
		}(),
		"bearer header": func() *http.Request {
			r := httptest.NewRequest("POST", PathTokenV2, strings.NewReader(v2Form(app.ID, secret).Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.Header.Set("Authorization", "Bearer abc")
			return r
		}(),
	} {
		t.Run(name, func(t *testing.T) {
			w := httptest.NewRecorder()
			te.srv.ServeHTTP(w, r)
			if w.Code != 400 && w.Code != 401 {
				t.Errorf("%s: status %d, want 400 or 401", name, w.Code)
			}
			var b oauthBody
			if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil || b.Error == "" || strings.Contains(w.Body.String(), "access_token") {
				t.Errorf("%s: body %s, want an OAuth error and no token", name, w.Body)
			}
		})
	}
	if w := te.do("GET", PathTokenV2, "", nil); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET %s = %d, want 405", PathTokenV2, w.Code)
	}
}

func copyForm(dst, src url.Values) {
	for k, v := range src {
		dst[k] = append([]string(nil), v...)
	}
}

// TestTokenRevocation shows that a deleted app's tokens, and the tokens of
// a rotated secret, stop opening the export API.
func TestTokenRevocation(t *testing.T) {
	ctx := context.Background()
	te := newTokenEnv(t)
	te.addDevices(0, 2, 2, groupByThree)
	te.build()

	app, secret := te.createApp(t, certinv.RoleVulnerabilityReadAll)
	oldTok := tokenOf(t, te.post(PathTokenV2, v2Form(app.ID, secret)))
	_, newSecret, err := te.apps.Rotate(ctx, app.ID)
	if err != nil {
		t.Fatal(err)
	}
	w := te.do("GET", PathPages, oldTok, nil)
	wantError(t, w, http.StatusUnauthorized, "Unauthorized", "rotated")
	if strings.Contains(w.Body.String(), "deviceId") {
		t.Errorf("refused page leaked records: %s", w.Body)
	}
	newTok := tokenOf(t, te.post(PathTokenV2, v2Form(app.ID, newSecret)))
	if w := te.do("GET", PathPages, newTok, nil); w.Code != http.StatusOK {
		t.Errorf("page with the new secret's token = %d %s", w.Code, w.Body)
	}

	if err := te.apps.Delete(ctx, app.ID); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{PathPages, PathExport} {
		w := te.do("GET", path, newTok, nil)
		wantError(t, w, http.StatusUnauthorized, "Unauthorized", "no longer registered")
		if strings.Contains(w.Body.String(), "deviceId") || strings.Contains(w.Body.String(), "exportFiles") {
			t.Errorf("refused %s leaked data: %s", path, w.Body)
		}
	}
}

// TestTokenFailureLimit counts failed authentications of one client id: the
// 11th attempt within the window gets 429 with Retry-After, even with the
// right secret; other client ids are not affected; the window refills.
func TestTokenFailureLimit(t *testing.T) {
	te := newTokenEnv(t)
	app, secret := te.createApp(t, certinv.RoleVulnerabilityReadAll)
	other, otherSecret := te.createApp(t, certinv.RoleVulnerabilityReadAll)
	for i := range 10 {
		if w := te.post(PathTokenV2, v2Form(app.ID, "wrong")); w.Code != http.StatusUnauthorized {
			t.Fatalf("failure %d: status %d, want 401", i+1, w.Code)
		}
	}
	w := te.post(PathTokenV2, v2Form(app.ID, secret))
	wantOAuthError(t, w, http.StatusTooManyRequests, "temporarily_unavailable", "retry after 6 seconds")
	if ra := w.Header().Get("Retry-After"); ra != "6" {
		t.Errorf("Retry-After = %q, want 6 (one failure refills in 60s/10)", ra)
	}
	tokenOf(t, te.post(PathTokenV2, v2Form(other.ID, otherSecret)))

	te.clock.Add(5 * time.Second)
	if w := te.post(PathTokenV2, v2Form(app.ID, secret)); w.Code != http.StatusTooManyRequests {
		t.Errorf("after 5s: status %d, want 429", w.Code)
	}
	te.clock.Add(time.Second)
	tokenOf(t, te.post(PathTokenV2, v2Form(app.ID, secret)))
}

func TestFailureLimiterBounded(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := &failureLimiter{max: 2, window: time.Minute}
	for i := range failureTrackLimit + 50 {
		l.fail(strconv.Itoa(i), now)
	}
	if len(l.buckets) > failureTrackLimit+1 {
		t.Errorf("buckets = %d, want at most %d and the shared one", len(l.buckets), failureTrackLimit)
	}
	// The overflow ids share one bucket: 50 failures exhaust it.
	if l.wait("a new id", now) == 0 {
		t.Errorf("wait(new id beyond the limit) = 0, want the shared bucket's wait")
	}
	// Once the window has passed, buckets refill and are pruned.
	later := now.Add(time.Minute)
	l.fail("fresh", later)
	if _, ok := l.buckets["fresh"]; !ok || len(l.buckets) != 1 {
		t.Errorf("after a window: %d buckets, want only the fresh one", len(l.buckets))
	}
}

func TestDiscovery(t *testing.T) {
	te := newTokenEnv(t)
	for path, tokenPath := range map[string]string{
		"/" + testTenant + "/v2.0/.well-known/openid-configuration": PathTokenV2,
		"/" + testTenant + "/.well-known/openid-configuration":      PathTokenV1,
	} {
		w := te.do("GET", path, "", nil)
		if w.Code != http.StatusOK {
			t.Fatalf("GET %s = %d %s", path, w.Code, w.Body)
		}
		var d map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &d); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{
			"issuer":                 testIssuer,
			"token_endpoint":         publicURL + "/" + testTenant + tokenPath,
			"jwks_uri":               publicURL + "/discovery/v2.0/keys",
			"authorization_endpoint": publicURL + "/" + testTenant + "/oauth2/v2.0/authorize",
		}
		for k, v := range want {
			if d[k] != v {
				t.Errorf("%s: %s = %v, want %s", path, k, d[k], v)
			}
		}
	}
	// The jwks_uri serves the keys that verify the issued tokens.
	if w := te.do("GET", "/discovery/v2.0/keys", "", nil); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), te.issuer.KeyID()) {
		t.Errorf("jwks_uri = %d %s, want the issuer's key", w.Code, w.Body)
	}
	wantOAuthError(t, te.do("GET", "/"+testTenant+"/oauth2/v2.0/authorize", "", nil), 400, "unsupported_response_type", "client credentials")
	if w := te.do("GET", "/"+certinv.NewGUID()+"/v2.0/.well-known/openid-configuration", "", nil); w.Code != http.StatusNotFound {
		t.Errorf("discovery of another tenant = %d, want 404", w.Code)
	}
}

func FuzzTokenRequest(f *testing.F) {
	f.Add("grant_type=client_credentials&client_id=a&client_secret=b&scope=https%3A%2F%2Fapi.securitycenter.microsoft.com%2F.default", "")
	f.Add("grant_type=client_credentials&client_id=a&client_secret=b&resource=x", "Basic "+base64.StdEncoding.EncodeToString([]byte("a:b")))
	f.Add("%zz", "Basic !!!")
	f.Fuzz(func(t *testing.T, body, authz string) {
		for _, v1 := range []bool{false, true} {
			r := httptest.NewRequest("POST", PathTokenV2, strings.NewReader(body))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if authz != "" {
				r.Header.Set("Authorization", authz)
			}
			req, oerr := parseTokenRequest(httptest.NewRecorder(), r, v1)
			if oerr != nil {
				if oerr.code == "" || oerr.status < 400 {
					t.Errorf("parseTokenRequest(%q) error %+v has no code or status", body, oerr)
				}
				continue
			}
			if req.clientID == "" || req.secret == "" || req.audience == "" || len(req.clientID) > MaxClientIDLength || len(req.secret) > MaxClientSecretLength {
				t.Errorf("parseTokenRequest(%q, %q) = %+v, want id, secret and audience within limits", body, authz, req)
			}
		}
	})
}

// BenchmarkTokenShare measures what a validated token costs against the
// page it opens: "page" serves one JSON page of 1,000 records end to end
// (token check with the app's credential check, skiptoken, manifest, gunzip,
// copy) from a built snapshot, as a client paging with one token is served;
// "verify" is the full check of that token (signature, claims, credential)
// with cached keys, as its first call pays it; "verify-cached" is the check
// of every later call (the Verifier's TokenCache). CERTINV_BENCH_PAGE changes
// the page's size (default 1000).
//
//	go test -run '^$' -bench BenchmarkTokenShare -benchmem ./httpapi
func BenchmarkTokenShare(b *testing.B) {
	records := 1000
	if s := os.Getenv("CERTINV_BENCH_PAGE"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxPageSize {
			b.Fatalf("CERTINV_BENCH_PAGE=%q: want 1 to %d", s, MaxPageSize)
		}
		records = n
	}
	te := newTokenEnv(b)
	te.builder.RecordsPerFile, te.builder.LinesPerMember = 0, 0 // the defaults
	const perDevice = 50
	devices := (records + perDevice - 1) / perDevice
	for from := 0; from < devices; from += 500 {
		te.addDevices(from, min(from+500, devices), perDevice, groupByThree)
	}
	te.build()
	app, secret := te.createApp(b, certinv.RoleVulnerabilityReadAll)
	tok := tokenOf(b, te.post(PathTokenV2, v2Form(app.ID, secret)))
	target := PathPages + "?$top=" + strconv.Itoa(records)
	ctx := context.Background()

	b.Run("page", func(b *testing.B) {
		w := &discardWriter{h: http.Header{}}
		te.srv.ServeHTTP(w, pageRequest(target, tok))
		if w.status != http.StatusOK {
			b.Fatalf("page = %d", w.status)
		}
		b.SetBytes(w.n)
		b.ReportMetric(float64(records), "records/page")
		for b.Loop() {
			w := &discardWriter{h: http.Header{}}
			te.srv.ServeHTTP(w, pageRequest(target, tok))
			if w.status != http.StatusOK {
				b.Fatalf("page = %d", w.status)
			}
		}
	})
	full := *te.cfg.Verifier.(*auth.Verifier)
	full.Cache = nil
	for name, v := range map[string]TokenVerifier{"verify": &full, "verify-cached": te.cfg.Verifier} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := v.Verify(ctx, tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
