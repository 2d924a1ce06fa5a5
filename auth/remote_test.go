package auth

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/certinv/certinv"
)

const (
	entraTenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	entraV1     = "https://sts.windows.net/" + entraTenant + "/"
	entraV2     = "https://login.microsoftonline.com/" + entraTenant + "/v2.0"
	apiURI      = "api://certinv-prod"
	apiClientID = "6f9a1b2c-3d4e-4f50-8a9b-0c1d2e3f4a5b"
)

// idp is an identity provider on an httptest server: a discovery document
// and a JWKS whose keys, cache headers and availability a test changes.
type idp struct {
	srv *httptest.Server

	mu           sync.Mutex
	keys         []any // *rsa.PublicKey or *ecdsa.PublicKey, kid "k<i>"
	kids         []string
	cacheControl string
	down         bool
	padding      int // bytes of white space added to the JWKS
	issuer       string

	jwksFetches      atomic.Int32
	discoveryFetches atomic.Int32
}

func newIdP(t *testing.T) *idp {
	t.Helper()
	p := &idp{issuer: entraV2}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /"+entraTenant+"/v2.0/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		p.discoveryFetches.Add(1)
		p.mu.Lock()
		down, iss := p.down, p.issuer
		p.mu.Unlock()
		if down {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		json.NewEncoder(w).Encode(map[string]string{
			"issuer":         iss,
			"jwks_uri":       p.srv.URL + "/" + entraTenant + "/discovery/v2.0/keys",
			"token_endpoint": p.srv.URL + "/" + entraTenant + "/oauth2/v2.0/token",
		})
	})
	mux.HandleFunc("GET /"+entraTenant+"/discovery/v2.0/keys", func(w http.ResponseWriter, r *http.Request) {
		p.jwksFetches.Add(1)
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.down {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		if p.cacheControl != "" {
			w.Header().Set("Cache-Control", p.cacheControl)
		}
		var set struct {
			Keys []map[string]string `json:"keys"`
		}
		for i, k := range p.keys {
			set.Keys = append(set.Keys, jwkOf(k, p.kids[i]))
		}
		b, _ := json.Marshal(set)
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
		w.Write(bytes.Repeat([]byte(" "), p.padding))
	})
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

func (p *idp) discoveryURL() string {
	return p.srv.URL + "/" + entraTenant + "/v2.0/.well-known/openid-configuration"
}

func (p *idp) setKeys(kids []string, keys ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.kids, p.keys = kids, keys
}

func (p *idp) set(fn func(p *idp)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fn(p)
}

func jwkOf(k any, kid string) map[string]string {
	switch k := k.(type) {
	case *rsa.PublicKey:
		return map[string]string{"kty": "RSA", "use": "sig", "kid": kid, "n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())}
	case *ecdsa.PublicKey:
		size := (k.Curve.Params().BitSize + 7) / 8
		x, y := make([]byte, size), make([]byte, size)
		k.X.FillBytes(x)
		k.Y.FillBytes(y)
		return map[string]string{"kty": "EC", "use": "sig", "kid": kid, "crv": k.Curve.Params().Name, "x": b64(x), "y": b64(y)}
	}
	panic(fmt.Sprintf("jwkOf(%T)", k))
}

var (
	key2Once sync.Once
	key2     *rsa.PrivateKey
)

// rsaKey2 is a second RSA key, for rotations.
func rsaKey2(t testing.TB) *rsa.PrivateKey {
	key2Once.Do(func() {
		var err error
		if key2, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	return key2
}

// testClock is a settable clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// entraV2Claims are the claims of an Entra ID v2 application token for the
// certinv API (aud is the API's client id).
func entraV2Claims(now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"aud": apiClientID, "iss": entraV2, "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"aio": "k2BgYGi...", "azp": "0c6a3e52-8a1b-4c1e-9d5e-1a2b3c4d5e6f", "azpacr": "1", "idtyp": "app",
		"oid": "2a9d6c1e-0000-4000-8000-000000000001", "rh": "0.AXEA...", "roles": []string{certinv.RoleVulnerabilityReadAll},
		"sub": "2a9d6c1e-0000-4000-8000-000000000001", "tid": entraTenant, "uti": "AbCdEf", "ver": "2.0",
	}
}

// entraV1Claims are those of an Entra ID v1 delegated token (aud is the
// API's App ID URI).
func entraV1Claims(now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"aud": apiURI, "iss": entraV1, "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"acr": "1", "amr": []string{"pwd", "mfa"}, "appid": "1950a258-227b-4e31-a9cf-717495945fc2", "appidacr": "0",
		"family_name": "Lovelace", "given_name": "Ada", "ipaddr": "203.0.113.7", "name": "Ada Lovelace",
		"oid": "5e2f7a3b-0000-4000-8000-000000000002", "scp": "Vulnerability.Read user_impersonation",
		"sub": "q7YzJ...", "tid": entraTenant, "unique_name": "ada@contoso.com", "upn": "ada@contoso.com", "uti": "XyZ", "ver": "1.0",
	}
}

// remoteVerifier trusts p for Entra's v1 and v2 issuers and the API's two
// audiences, with the clock c.
func remoteVerifier(t *testing.T, p *idp, c *testClock, opts RemoteOptions) (*Verifier, *RemoteKeys) {
	t.Helper()
	opts.Now = c.Now
	trust, keys, err := NewTrust(context.Background(), TrustConfig{
		Discovery: p.discoveryURL(),
		Issuers:   []string{entraV2, entraV1},
		Audiences: []string{apiURI, apiClientID},
	}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return &Verifier{Trusted: []Trust{trust}, Now: c.Now}, keys
}

func TestRemoteEntraTokens(t *testing.T) {
	ctx := context.Background()
	p := newIdP(t)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p.setKeys([]string{"rsa-1", "ec-1"}, &rsaKey(t).PublicKey, &ec.PublicKey)
	c := &testClock{t: t0}
	v, _ := remoteVerifier(t, p, c, RemoteOptions{})

	tests := []struct {
		name   string
		method jwt.SigningMethod
		key    any
		kid    string
		claims jwt.MapClaims
		want   certinv.Principal
	}{
		{"v2 application", jwt.SigningMethodRS256, rsaKey(t), "rsa-1", entraV2Claims(t0), certinv.Principal{
			Issuer: entraV2, TenantID: entraTenant, AppID: "0c6a3e52-8a1b-4c1e-9d5e-1a2b3c4d5e6f", ObjectID: "2a9d6c1e-0000-4000-8000-000000000001",
			Roles: []string{certinv.RoleVulnerabilityReadAll}}},
		{"v1 delegated", jwt.SigningMethodRS256, rsaKey(t), "rsa-1", entraV1Claims(t0), certinv.Principal{
			Issuer: entraV1, TenantID: entraTenant, AppID: "1950a258-227b-4e31-a9cf-717495945fc2", ObjectID: "5e2f7a3b-0000-4000-8000-000000000002",
			UPN: "ada@contoso.com", Scopes: []string{certinv.ScopeVulnerabilityRead, "user_impersonation"}}},
		{"v2 signed with EC", jwt.SigningMethodES256, ec, "ec-1", entraV2Claims(t0), certinv.Principal{
			Issuer: entraV2, TenantID: entraTenant, AppID: "0c6a3e52-8a1b-4c1e-9d5e-1a2b3c4d5e6f", ObjectID: "2a9d6c1e-0000-4000-8000-000000000001",
			Roles: []string{certinv.RoleVulnerabilityReadAll}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := v.Verify(ctx, sign(t, tt.method, tt.key, tt.kid, tt.claims))
			if err != nil {
				t.Fatalf("Verify = %v", err)
			}
			if fmt.Sprint(*got) != fmt.Sprint(tt.want) {
				t.Errorf("Verify = %+v, want %+v", *got, tt.want)
			}
			if !got.CanReadVulnerabilities() {
				t.Errorf("CanReadVulnerabilities() = false for %+v", got)
			}
		})
	}
	if n := p.jwksFetches.Load(); n != 1 {
		t.Errorf("key set fetched %d times for 3 tokens, want 1 (cached)", n)
	}
}

func TestRemoteRejects(t *testing.T) {
	ctx := context.Background()
	p := newIdP(t)
	p.setKeys([]string{"rsa-1"}, &rsaKey(t).PublicKey)
	c := &testClock{t: t0}
	v, _ := remoteVerifier(t, p, c, RemoteOptions{})
	// The embedded issuer is trusted too, with its own audiences.
	iss := newIssuer(t)
	v.Keys, v.Issuers = iss, iss.Issuers()

	pubDER, err := x509.MarshalPKIXPublicKey(&rsaKey(t).PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	with := func(k string, val any) jwt.MapClaims {
		cl := entraV2Claims(t0)
		cl[k] = val
		return cl
	}
	tests := []struct {
		name  string
		token string
		want  string
	}{
		{"alg none", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "rsa-1", entraV2Claims(t0)), "algorithm is not accepted"},
		{"HS256 keyed with the public key PEM", sign(t, jwt.SigningMethodHS256, pubPEM, "rsa-1", entraV2Claims(t0)), "algorithm is not accepted"},
		{"HS256 keyed with the public key DER", sign(t, jwt.SigningMethodHS256, pubDER, "rsa-1", entraV2Claims(t0)), "algorithm is not accepted"},
		{"unconfigured issuer", sign(t, jwt.SigningMethodRS256, rsaKey(t), "rsa-1", with("iss", "https://login.microsoftonline.com/"+certinv.NewGUID()+"/v2.0")), "issuer is not trusted"},
		{"audience of the embedded issuer", sign(t, jwt.SigningMethodRS256, rsaKey(t), "rsa-1", with("aud", AudienceDefender)), "audience is not accepted"},
		{"embedded issuer with the remote's audience", func() string {
			tok, err := iss.Issue(Claims{Audience: apiURI, AppID: "a", Roles: []string{certinv.RoleVulnerabilityReadAll}})
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}(), "audience is not accepted"},
		{"signed by a key not in the set", sign(t, jwt.SigningMethodRS256, rsaKey2(t), "rsa-1", entraV2Claims(t0)), "signature is invalid"},
		{"expired", sign(t, jwt.SigningMethodRS256, rsaKey(t), "rsa-1", with("exp", t0.Add(-ClockSkew-time.Second).Unix())), "expired"},
		{"not yet valid", sign(t, jwt.SigningMethodRS256, rsaKey(t), "rsa-1", with("nbf", t0.Add(ClockSkew+time.Minute).Unix())), "not valid yet"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := v.Verify(ctx, tt.token)
			if err == nil || certinv.KindOf(err) != certinv.EUnauthorized || !strings.Contains(certinv.MessageOf(err), tt.want) {
				t.Errorf("Verify = %+v, %v; want unauthorized: %s", got, err, tt.want)
			}
		})
	}
}

func TestRemoteUnconfiguredIssuerFetchesNothing(t *testing.T) {
	p := newIdP(t)
	p.setKeys([]string{"rsa-1"}, &rsaKey(t).PublicKey)
	c := &testClock{t: t0}
	v, _ := remoteVerifier(t, p, c, RemoteOptions{})
	claims := entraV2Claims(t0)
	claims["iss"] = "https://evil.example/v2.0"
	if _, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodRS256, rsaKey(t), "rsa-1", claims)); err == nil {
		t.Fatal("Verify(unconfigured issuer) = nil")
	}
	if n := p.jwksFetches.Load() + p.discoveryFetches.Load(); n != 0 {
		t.Errorf("a token of an unconfigured issuer made %d fetches, want 0", n)
	}
}

// TestRemoteRotationAndRefreshLimit rotates the provider's keys: a token of
// the new key fetches the set again, but at most once per RefreshInterval,
// however many unknown kids arrive.
func TestRemoteRotationAndRefreshLimit(t *testing.T) {
	ctx := context.Background()
	p := newIdP(t)
	p.setKeys([]string{"old"}, &rsaKey(t).PublicKey)
	c := &testClock{t: t0}
	const interval = 30 * time.Second
	v, _ := remoteVerifier(t, p, c, RemoteOptions{RefreshInterval: interval})

	oldTok := sign(t, jwt.SigningMethodRS256, rsaKey(t), "old", entraV2Claims(t0))
	newTok := sign(t, jwt.SigningMethodRS256, rsaKey2(t), "new", entraV2Claims(t0))
	if _, err := v.Verify(ctx, oldTok); err != nil {
		t.Fatalf("Verify(old key) = %v", err)
	}
	p.setKeys([]string{"old", "new"}, &rsaKey(t).PublicKey, &rsaKey2(t).PublicKey)

	// Within the interval the new kid is unknown, and no fetch is made.
	c.Set(t0.Add(interval - time.Second))
	if _, err := v.Verify(ctx, newTok); certinv.KindOf(err) != certinv.EUnauthorized || !strings.Contains(certinv.MessageOf(err), "signing key") {
		t.Errorf("Verify(new kid within the refresh interval) = %v, want unauthorized: unknown signing key", err)
	}
	if n := p.jwksFetches.Load(); n != 1 {
		t.Fatalf("fetches = %d, want 1", n)
	}
	// After it, the unknown kid fetches the set once and verifies.
	c.Set(t0.Add(interval))
	if _, err := v.Verify(ctx, newTok); err != nil {
		t.Errorf("Verify(new kid after the refresh interval) = %v", err)
	}
	if n := p.jwksFetches.Load(); n != 2 {
		t.Errorf("fetches = %d, want 2", n)
	}
	// A flood of made-up kids, from many goroutines, fetches nothing more.
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok := sign(t, jwt.SigningMethodRS256, rsaKey(t), fmt.Sprintf("made-up-%d", i), entraV2Claims(t0))
			if _, err := v.Verify(ctx, tok); certinv.KindOf(err) != certinv.EUnauthorized {
				t.Errorf("Verify(made-up kid) = %v, want unauthorized", err)
			}
		}()
	}
	wg.Wait()
	if n := p.jwksFetches.Load(); n != 2 {
		t.Errorf("fetches after 50 made-up kids = %d, want 2", n)
	}
	// Both keys work from the cache.
	for _, tok := range []string{oldTok, newTok} {
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Errorf("Verify(cached key) = %v", err)
		}
	}
	// The old key leaves the set: after the interval, a made-up kid
	// refreshes, and the old key's tokens are refused.
	p.setKeys([]string{"new"}, &rsaKey2(t).PublicKey)
	c.Set(t0.Add(2 * interval))
	v.Verify(ctx, sign(t, jwt.SigningMethodRS256, rsaKey(t), "made-up", entraV2Claims(t0)))
	if _, err := v.Verify(ctx, oldTok); certinv.KindOf(err) != certinv.EUnauthorized {
		t.Errorf("Verify(key removed from the set) = %v, want unauthorized", err)
	}
}

func TestRemoteCacheHeaders(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name         string
		cacheControl string
		fresh        time.Duration // still cached after this long
		stale        time.Duration // fetched again after this long
	}{
		{"max-age", "public, max-age=600", 599 * time.Second, 600 * time.Second},
		{"no header: default TTL", "", DefaultKeysTTL - time.Second, DefaultKeysTTL},
		{"max-age below the minimum", "max-age=5", DefaultMinKeysTTL - time.Second, DefaultMinKeysTTL},
		{"no-cache: the minimum", "no-cache", DefaultMinKeysTTL - time.Second, DefaultMinKeysTTL},
		{"max-age above the maximum", "max-age=9999999", DefaultMaxKeysTTL - time.Second, DefaultMaxKeysTTL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newIdP(t)
			p.setKeys([]string{"k"}, &rsaKey(t).PublicKey)
			p.set(func(p *idp) { p.cacheControl = tt.cacheControl })
			c := &testClock{t: t0}
			v, _ := remoteVerifier(t, p, c, RemoteOptions{})
			tok := sign(t, jwt.SigningMethodRS256, rsaKey(t), "k", entraV2Claims(t0))
			verifyAt := func(d time.Duration) {
				c.Set(t0.Add(d))
				cl := entraV2Claims(t0.Add(d))
				tok = sign(t, jwt.SigningMethodRS256, rsaKey(t), "k", cl)
				if _, err := v.Verify(ctx, tok); err != nil {
					t.Fatalf("Verify at +%v = %v", d, err)
				}
			}
			verifyAt(0)
			verifyAt(tt.fresh)
			if n := p.jwksFetches.Load(); n != 1 {
				t.Errorf("fetches at +%v = %d, want 1 (cached)", tt.fresh, n)
			}
			verifyAt(tt.stale)
			if n := p.jwksFetches.Load(); n != 2 {
				t.Errorf("fetches at +%v = %d, want 2 (stale)", tt.stale, n)
			}
		})
	}
}

func TestCacheTTL(t *testing.T) {
	now := time.Date(2026, 12, 3, 15, 0, 0, 0, time.UTC)
	const def, lo, hi = time.Hour, 5 * time.Minute, 24 * time.Hour
	tests := []struct {
		name string
		h    http.Header
		want time.Duration
	}{
		{"none", http.Header{}, def},
		{"max-age", http.Header{"Cache-Control": {"max-age=3600, must-revalidate"}}, time.Hour},
		{"max-age quoted", http.Header{"Cache-Control": {`max-age="7200"`}}, 2 * time.Hour},
		{"no-store", http.Header{"Cache-Control": {"no-store"}}, lo},
		{"huge max-age", http.Header{"Cache-Control": {"max-age=99999999999999999"}}, hi},
		{"bad max-age", http.Header{"Cache-Control": {"max-age=soon"}}, def},
		{"expires", http.Header{"Expires": {now.Add(2 * time.Hour).Format(http.TimeFormat)}, "Date": {now.Format(http.TimeFormat)}}, 2 * time.Hour},
		{"expires in the past", http.Header{"Expires": {now.Add(-time.Hour).Format(http.TimeFormat)}}, lo},
		{"invalid expires", http.Header{"Expires": {"0"}}, lo},
		{"max-age wins over expires", http.Header{"Cache-Control": {"max-age=600"}, "Expires": {now.Add(5 * time.Hour).Format(http.TimeFormat)}}, 10 * time.Minute},
	}
	for _, tt := range tests {
		if got := cacheTTL(tt.h, now, def, lo, hi); got != tt.want {
			t.Errorf("cacheTTL(%s: %v) = %v, want %v", tt.name, tt.h, got, tt.want)
		}
	}
}

func TestRemoteUnreachable(t *testing.T) {
	ctx := context.Background()
	p := newIdP(t)
	p.setKeys([]string{"k"}, &rsaKey(t).PublicKey)
	p.set(func(p *idp) { p.down = true })
	c := &testClock{t: t0}
	var logs bytes.Buffer
	v, keys := remoteVerifier(t, p, c, RemoteOptions{Log: slog.New(slog.NewTextHandler(&logs, nil))})
	tok := sign(t, jwt.SigningMethodRS256, rsaKey(t), "k", entraV2Claims(t0))

	_, err := v.Verify(ctx, tok)
	if certinv.KindOf(err) != certinv.EUnavailable || !strings.Contains(certinv.MessageOf(err), "cannot be fetched") {
		t.Errorf("Verify with the provider down = %v (kind %s), want unavailable: cannot be fetched", err, certinv.KindOf(err))
	}
	if !strings.Contains(err.Error(), "503") || !strings.Contains(logs.String(), "fetching an identity provider's keys failed") {
		t.Errorf("error %q and log %q should say what failed", err, logs.String())
	}
	if strings.Contains(certinv.MessageOf(err), p.srv.URL) {
		t.Errorf("client message %q names the provider's URL", certinv.MessageOf(err))
	}
	// A down provider is not asked again on every token.
	before := p.discoveryFetches.Load()
	for range 20 {
		v.Verify(ctx, tok)
	}
	if n := p.discoveryFetches.Load() - before; n != 0 {
		t.Errorf("20 tokens within the refresh interval made %d fetches, want 0", n)
	}

	// Back up: keys are fetched after the interval. Down again once they
	// are stale: the held keys keep working.
	p.set(func(p *idp) { p.down = false })
	c.Set(t0.Add(DefaultRefreshInterval))
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatalf("Verify after the provider came back = %v", err)
	}
	p.set(func(p *idp) { p.down = true })
	c.Set(t0.Add(DefaultKeysTTL + time.Minute))
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Errorf("Verify with stale keys and the provider down = %v, want the held keys used", err)
	}
	if err := keys.Refresh(ctx); err == nil {
		t.Errorf("Refresh with the provider down = nil, want the error")
	}

	// A provider that does not answer at all, and a discovery-only
	// configuration: NewTrust says so at start.
	dead := httptest.NewServer(http.NotFoundHandler())
	url := dead.URL + "/x/v2.0/.well-known/openid-configuration"
	dead.Close()
	_, _, err = NewTrust(ctx, TrustConfig{Discovery: url, Audiences: []string{apiURI}}, RemoteOptions{Timeout: 2 * time.Second})
	if err == nil || !strings.Contains(err.Error(), url) || !strings.Contains(err.Error(), "issuer=") {
		t.Errorf("NewTrust(unreachable discovery, no issuer) = %v, want an error naming the URL and the issuer= way out", err)
	}
}

func TestRemoteOversizeRefused(t *testing.T) {
	ctx := context.Background()
	p := newIdP(t)
	p.setKeys([]string{"k"}, &rsaKey(t).PublicKey)
	p.set(func(p *idp) { p.padding = 4096 })
	c := &testClock{t: t0}
	v, keys := remoteVerifier(t, p, c, RemoteOptions{MaxBytes: 2048})
	err := keys.Refresh(ctx)
	if err == nil || !strings.Contains(err.Error(), "larger than the 2048 bytes") {
		t.Errorf("Refresh(oversize key set) = %v, want refused as larger than 2048 bytes", err)
	}
	if _, err := v.Verify(ctx, sign(t, jwt.SigningMethodRS256, rsaKey(t), "k", entraV2Claims(t0))); certinv.KindOf(err) != certinv.EUnavailable {
		t.Errorf("Verify with only an oversize key set = %v, want unavailable", err)
	}
}

func TestDiscoveryIssuer(t *testing.T) {
	ctx := context.Background()
	p := newIdP(t)
	p.setKeys([]string{"k"}, &rsaKey(t).PublicKey)
	trust, _, err := NewTrust(ctx, TrustConfig{Discovery: p.discoveryURL(), Audiences: []string{apiClientID}}, RemoteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(trust.Issuers) != 1 || trust.Issuers[0] != entraV2 {
		t.Errorf("NewTrust without issuers: Issuers = %v, want [%s] from discovery", trust.Issuers, entraV2)
	}
	p.set(func(p *idp) { p.issuer = "https://login.microsoftonline.com/{tenantid}/v2.0" })
	if _, _, err := NewTrust(ctx, TrustConfig{Discovery: p.discoveryURL(), Audiences: []string{apiClientID}}, RemoteOptions{}); err == nil || !strings.Contains(err.Error(), "template") {
		t.Errorf("NewTrust(common endpoint) = %v, want refused: template issuer", err)
	}
}

func TestParseKeySet(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p521, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	good := jwkOf(&rsaKey(t).PublicKey, "good")
	offCurve := jwkOf(&p384.PublicKey, "off")
	offCurve["y"] = offCurve["x"]
	tests := []struct {
		name string
		keys []map[string]string
		want []string // kids kept; nil: an error
	}{
		{"RSA 2048 and EC P-384", []map[string]string{good, jwkOf(&p384.PublicKey, "ec")}, []string{"good", "ec"}},
		{"RSA 1024 left out", []map[string]string{good, jwkOf(&small.PublicKey, "small")}, []string{"good"}},
		{"P-521 left out", []map[string]string{good, jwkOf(&p521.PublicKey, "p521")}, []string{"good"}},
		{"EC point off the curve left out", []map[string]string{good, offCurve}, []string{"good"}},
		{"symmetric key left out", []map[string]string{good, {"kty": "oct", "kid": "hs", "k": "c2VjcmV0"}}, []string{"good"}},
		{"encryption key left out", []map[string]string{good, with2(jwkOf(&rsaKey2(t).PublicKey, "enc"), "use", "enc")}, []string{"good"}},
		{"HS256 alg on an RSA key left out", []map[string]string{good, with2(jwkOf(&rsaKey2(t).PublicKey, "hs"), "alg", "HS256")}, []string{"good"}},
		{"no kid left out", []map[string]string{good, with2(jwkOf(&rsaKey2(t).PublicKey, ""), "kid", "")}, []string{"good"}},
		{"even exponent left out", []map[string]string{good, with2(jwkOf(&rsaKey2(t).PublicKey, "even"), "e", "AQAA")}, []string{"good"}},
		{"duplicate kid: neither", []map[string]string{good, jwkOf(&rsaKey2(t).PublicKey, "good"), jwkOf(&p384.PublicKey, "ec")}, []string{"ec"}},
		{"only weak keys", []map[string]string{jwkOf(&small.PublicKey, "small")}, nil},
		{"empty", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var set jwkSet
			for _, k := range tt.keys {
				b, _ := json.Marshal(k)
				set.Keys = append(set.Keys, b)
			}
			got, err := parseKeySet(&set)
			if tt.want == nil {
				if err == nil {
					t.Errorf("parseKeySet = %v, want an error", got)
				}
				return
			}
			if err != nil || len(got) != len(tt.want) {
				t.Fatalf("parseKeySet = %v, %v; want kids %v", got, err, tt.want)
			}
			for _, kid := range tt.want {
				if got[kid] == nil {
					t.Errorf("parseKeySet lacks kid %q: %v", kid, got)
				}
			}
		})
	}
}

func with2(m map[string]string, k, v string) map[string]string {
	m[k] = v
	return m
}

func TestParseTrust(t *testing.T) {
	disc := "https://login.microsoftonline.com/" + entraTenant + "/v2.0/.well-known/openid-configuration"
	tests := []struct {
		spec string
		want *TrustConfig // nil: an error
	}{
		{"discovery=" + disc + ",audience=api://xyz", &TrustConfig{Discovery: disc, Audiences: []string{"api://xyz"}}},
		{" discovery = " + disc + " , audience=api://xyz,aud=" + apiClientID + ",issuer=" + entraV1 + ",iss=" + entraV2,
			&TrustConfig{Discovery: disc, Audiences: []string{"api://xyz", apiClientID}, Issuers: []string{entraV1, entraV2}}},
		{"jwks=https://idp.example/keys,issuer=https://idp.example,audience=a", &TrustConfig{JWKS: "https://idp.example/keys", Issuers: []string{"https://idp.example"}, Audiences: []string{"a"}}},
		{"jwks=http://127.0.0.1:8080/keys,issuer=i,audience=a", &TrustConfig{JWKS: "http://127.0.0.1:8080/keys", Issuers: []string{"i"}, Audiences: []string{"a"}}},
		{"jwks=https://idp.example/keys,audience=a", nil},                                 // no issuer
		{"discovery=" + disc, nil},                                                        // no audience
		{"audience=a", nil},                                                               // no source
		{"discovery=" + disc + ",jwks=https://idp.example/keys,audience=a", nil},          // both
		{"discovery=http://idp.example/.well-known/openid-configuration,audience=a", nil}, // http, not loopback
		{"discovery=" + disc + ",audience=a,colour=blue", nil},                            // unknown key
		{"discovery=" + disc + ",audience", nil},                                          // no value
		{"discovery=" + disc + ",discovery=" + disc + ",audience=a", nil},                 // twice
		{"discovery=" + disc + ",audience=a,issuer=https://login.microsoftonline.com/{tenantid}/v2.0", nil},
		{"", nil},
	}
	for _, tt := range tests {
		got, err := ParseTrust(tt.spec)
		if tt.want == nil {
			if err == nil {
				t.Errorf("ParseTrust(%q) = %+v, want an error", tt.spec, got)
			}
			continue
		}
		if err != nil || fmt.Sprint(got) != fmt.Sprint(*tt.want) {
			t.Errorf("ParseTrust(%q) = %+v, %v; want %+v", tt.spec, got, err, *tt.want)
		}
	}
}

func TestReadTrustFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "trust.json")
	os.WriteFile(good, []byte(`{"trustedIssuers":[
		{"discovery":"https://login.microsoftonline.com/`+entraTenant+`/v2.0/.well-known/openid-configuration","issuers":["`+entraV2+`","`+entraV1+`"],"audiences":["api://xyz","`+apiClientID+`"]},
		{"jwks":"https://idp.example/keys","issuers":["https://idp.example"],"audiences":["certinv"]}]}`), 0o600)
	got, err := ReadTrustFile(good)
	if err != nil || len(got) != 2 || got[0].Issuers[1] != entraV1 || got[1].JWKS != "https://idp.example/keys" {
		t.Errorf("ReadTrustFile = %+v, %v", got, err)
	}
	for name, body := range map[string]string{
		"unknown field": `{"trustedIssuers":[{"discovery":"https://a/b","audiences":["x"],"tenant":"t"}]}`,
		"invalid entry": `{"trustedIssuers":[{"jwks":"https://a/b","audiences":["x"]}]}`,
		"not JSON":      `discovery=https://a/b`,
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".json")
		os.WriteFile(p, []byte(body), 0o600)
		if got, err := ReadTrustFile(p); err == nil {
			t.Errorf("ReadTrustFile(%s) = %+v, want an error", name, got)
		}
	}
}

func FuzzParseTrust(f *testing.F) {
	f.Add("discovery=https://login.microsoftonline.com/t/v2.0/.well-known/openid-configuration,audience=api://xyz")
	f.Add("jwks=http://[::1]:1/k,issuer=i,audience=a,audience=b")
	f.Add("=,=,")
	f.Fuzz(func(t *testing.T, spec string) {
		c, err := ParseTrust(spec)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Errorf("ParseTrust(%q) = %+v, which Validate refuses: %v", spec, c, err)
		}
	})
}

func FuzzParseKeySet(f *testing.F) {
	b, _ := json.Marshal(map[string]any{"keys": []any{jwkOf(&rsaKey(f).PublicKey, "k")}})
	f.Add(b)
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","kid":"e","x":"AA","y":"AA"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var set jwkSet
		if json.Unmarshal(data, &set) != nil {
			return
		}
		keys, err := parseKeySet(&set)
		if err != nil {
			return
		}
		for kid, k := range keys {
			switch k := k.(type) {
			case *rsa.PublicKey:
				if k.N.BitLen() < MinKeyBits {
					t.Errorf("kept RSA key %q of %d bits", kid, k.N.BitLen())
				}
			case *ecdsa.PublicKey:
				if n := k.Curve.Params().Name; n != "P-256" && n != "P-384" {
					t.Errorf("kept EC key %q on %s", kid, n)
				}
			default:
				t.Errorf("kept key %q of type %T", kid, k)
			}
		}
	})
}
