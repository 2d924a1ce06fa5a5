package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/certinv/certinv"
)

const (
	testIssuer = "https://certinv.test/11111111-2222-4333-8444-555555555555/v2.0"
	testTenant = "11111111-2222-4333-8444-555555555555"
)

var (
	keyOnce sync.Once
	testKey *rsa.PrivateKey
)

// rsaKey returns one 2048-bit key for the whole test binary: generating one
// per test would dominate the run time.
func rsaKey(t testing.TB) *rsa.PrivateKey {
	keyOnce.Do(func() {
		var err error
		testKey, err = rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
	})
	return testKey
}

var t0 = time.Date(2026, 12, 3, 15, 0, 0, 0, time.UTC)

func newIssuer(t testing.TB) *Issuer {
	t.Helper()
	iss, err := NewIssuer(IssuerConfig{Key: rsaKey(t), Issuer: testIssuer, TenantID: testTenant, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	return iss
}

func newVerifier(iss *Issuer, now time.Time) *Verifier {
	return &Verifier{Keys: iss, Issuers: []string{testIssuer}, Now: func() time.Time { return now }}
}

var appClaims = Claims{Audience: AudienceCertinv, AppID: "app-1", ObjectID: "sp-1", Roles: []string{certinv.RoleVulnerabilityReadAll}}

func TestIssueVerifyApplication(t *testing.T) {
	iss := newIssuer(t)
	tok, err := iss.Issue(appClaims)
	if err != nil {
		t.Fatal(err)
	}
	p, err := newVerifier(iss, t0.Add(time.Minute)).Verify(context.Background(), tok)
	if err != nil {
		t.Fatalf("Verify = %v", err)
	}
	want := certinv.Principal{Issuer: testIssuer, TenantID: testTenant, AppID: "app-1", ObjectID: "sp-1", Roles: []string{certinv.RoleVulnerabilityReadAll}}
	if p.Issuer != want.Issuer || p.TenantID != want.TenantID || p.AppID != want.AppID || p.ObjectID != want.ObjectID || !slices.Equal(p.Roles, want.Roles) || p.Delegated() {
		t.Errorf("Verify = %+v, want %+v", p, want)
	}
	if !p.CanReadVulnerabilities() {
		t.Errorf("CanReadVulnerabilities = false, want true")
	}

	// The payload has the Entra ID v2 shape.
	payload := decodePart(t, tok, 1)
	for _, k := range []string{"iss", "aud", "tid", "azp", "appid", "roles", "oid", "sub", "iat", "nbf", "exp", "ver", "uti", "jti"} {
		if _, ok := payload[k]; !ok {
			t.Errorf("token payload lacks %q: %v", k, payload)
		}
	}
	if payload["ver"] != "2.0" || payload["exp"].(float64)-payload["iat"].(float64) != DefaultTokenLifetime.Seconds() {
		t.Errorf("payload ver/exp = %v/%v", payload["ver"], payload["exp"])
	}
	header := decodePart(t, tok, 0)
	if header["alg"] != "RS256" || header["kid"] != iss.KeyID() {
		t.Errorf("header = %v, want alg RS256 kid %s", header, iss.KeyID())
	}
}

func TestIssueVerifyDelegated(t *testing.T) {
	iss := newIssuer(t)
	tok, err := iss.Issue(Claims{Audience: AudienceDefender, AppID: "app-2", ObjectID: "user-1", UPN: "ada@example.com", Scopes: []string{"openid", certinv.ScopeVulnerabilityRead}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := newVerifier(iss, t0).Verify(context.Background(), tok)
	if err != nil {
		t.Fatalf("Verify = %v", err)
	}
	if !p.Delegated() || !p.CanReadVulnerabilities() || p.ObjectID != "user-1" || p.UPN != "ada@example.com" || p.AppID != "app-2" {
		t.Errorf("Verify = %+v, want delegated user-1 with Vulnerability.Read", p)
	}
	if got := decodePart(t, tok, 1)["scp"]; got != "openid Vulnerability.Read" {
		t.Errorf("scp = %v, want space-joined scopes", got)
	}
}

func TestIssueRefuses(t *testing.T) {
	iss := newIssuer(t)
	for name, c := range map[string]Claims{
		"no audience":            {AppID: "a"},
		"no app":                 {Audience: AudienceCertinv},
		"delegated without user": {Audience: AudienceCertinv, AppID: "a", Scopes: []string{"x"}},
		"scope with space":       {Audience: AudienceCertinv, AppID: "a", ObjectID: "u", Scopes: []string{"a b"}},
	} {
		if _, err := iss.Issue(c); err == nil {
			t.Errorf("Issue(%s) = nil error, want refusal", name)
		}
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewIssuer(IssuerConfig{Key: small, Issuer: testIssuer, TenantID: testTenant}); err == nil {
		t.Error("NewIssuer(1024-bit key) = nil error, want refusal")
	}
}

func TestNoPermissionIsValidPrincipal(t *testing.T) {
	iss := newIssuer(t)
	tok, err := iss.Issue(Claims{Audience: AudienceCertinv, AppID: "app-3"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := newVerifier(iss, t0).Verify(context.Background(), tok)
	if err != nil {
		t.Fatalf("Verify(token without roles) = %v, want a principal", err)
	}
	if p.CanReadVulnerabilities() {
		t.Errorf("CanReadVulnerabilities() = true for %+v, want false", p)
	}
}

// sign signs claims with method and key, with the given header kid.
func sign(t *testing.T, method jwt.SigningMethod, key any, kid string, claims jwt.Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func validClaims() jwt.MapClaims {
	return jwt.MapClaims{
		"iss": testIssuer, "aud": AudienceCertinv, "tid": testTenant, "appid": "app-1",
		"roles": []string{certinv.RoleVulnerabilityReadAll},
		"iat":   t0.Unix(), "nbf": t0.Unix(), "exp": t0.Add(time.Hour).Unix(),
	}
}

func with(c jwt.MapClaims, k string, v any) jwt.MapClaims {
	c = maps(c)
	if v == nil {
		delete(c, k)
	} else {
		c[k] = v
	}
	return c
}

func maps(c jwt.MapClaims) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, v := range c {
		out[k] = v
	}
	return out
}

func TestVerifyRejects(t *testing.T) {
	iss := newIssuer(t)
	key := rsaKey(t)
	kid := iss.KeyID()
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	good := sign(t, jwt.SigningMethodRS256, key, kid, validClaims())

	tampered := func() string {
		parts := strings.Split(good, ".")
		c := with(validClaims(), "roles", []string{certinv.RoleVulnerabilityReadAll, "Machine.Isolate"})
		b, _ := json.Marshal(c)
		parts[1] = base64.RawURLEncoding.EncodeToString(b)
		return strings.Join(parts, ".")
	}()
	noneTok := sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, kid, validClaims())

	tests := []struct {
		name  string
		token string
		now   time.Time
		want  string // in the message
	}{
		{"expired", good, t0.Add(time.Hour + ClockSkew + time.Second), "expired"},
		{"expired within skew is still valid", "", time.Time{}, ""},
		{"not yet valid", good, t0.Add(-ClockSkew - time.Second), "not valid yet"},
		{"no exp", sign(t, jwt.SigningMethodRS256, key, kid, with(validClaims(), "exp", nil)), t0, "required claim"},
		{"no nbf", sign(t, jwt.SigningMethodRS256, key, kid, with(validClaims(), "nbf", nil)), t0, "required claim"},
		{"wrong issuer", sign(t, jwt.SigningMethodRS256, key, kid, with(validClaims(), "iss", "https://evil.example/v2.0")), t0, "issuer is not trusted"},
		{"wrong audience", sign(t, jwt.SigningMethodRS256, key, kid, with(validClaims(), "aud", "api://other")), t0, "audience"},
		{"no audience", sign(t, jwt.SigningMethodRS256, key, kid, with(validClaims(), "aud", nil)), t0, "audience"},
		{"alg none", noneTok, t0, "algorithm is not accepted"},
		{"HS256 with public key bytes", sign(t, jwt.SigningMethodHS256, pubPEM, kid, validClaims()), t0, "algorithm is not accepted"},
		{"HS256 with DER", sign(t, jwt.SigningMethodHS256, pubDER, kid, validClaims()), t0, "algorithm is not accepted"},
		{"unknown kid", sign(t, jwt.SigningMethodRS256, key, "not-a-kid", validClaims()), t0, "signing key"},
		{"no kid", sign(t, jwt.SigningMethodRS256, key, "", validClaims()), t0, "names no signing key"},
		{"tampered payload", tampered, t0, "signature is invalid"},
		{"signed by another key", sign(t, jwt.SigningMethodES256, other, kid, validClaims()), t0, "signature is invalid"},
		{"malformed", "abc.def", t0, "malformed"},
		{"empty", "", t0, "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.want == "" {
				// exp + skew - 1s: still accepted.
				if _, err := newVerifier(iss, t0.Add(time.Hour+ClockSkew-time.Second)).Verify(context.Background(), good); err != nil {
					t.Errorf("Verify(within skew) = %v, want nil", err)
				}
				return
			}
			p, err := newVerifier(iss, tt.now).Verify(context.Background(), tt.token)
			if err == nil {
				t.Fatalf("Verify(%s) = %+v, want error", tt.name, p)
			}
			if k := certinv.KindOf(err); k != certinv.EUnauthorized {
				t.Errorf("Verify(%s) kind = %v (%v), want %v", tt.name, k, err, certinv.EUnauthorized)
			}
			if msg := certinv.MessageOf(err); !strings.Contains(msg, tt.want) {
				t.Errorf("Verify(%s) message = %q, want it to contain %q", tt.name, msg, tt.want)
			}
			if strings.Contains(err.Error(), tt.token[strings.LastIndex(tt.token, ".")+1:]) && tt.token != "" && !strings.HasSuffix(tt.token, ".") {
				t.Errorf("Verify(%s) error %q quotes the token's signature", tt.name, err)
			}
		})
	}
}

// failingKeys is a KeySet whose source is down.
type failingKeys struct{}

func (failingKeys) Key(context.Context, string, string) (crypto.PublicKey, error) {
	return nil, errors.New("jwks endpoint unreachable")
}

func TestVerifyKeySourceDownIsInternal(t *testing.T) {
	iss := newIssuer(t)
	tok, err := iss.Issue(appClaims)
	if err != nil {
		t.Fatal(err)
	}
	v := &Verifier{Keys: keySetFunc(func(context.Context, string, string) (crypto.PublicKey, error) {
		return nil, errors.New("jwks endpoint unreachable")
	}), Issuers: []string{testIssuer}, Now: func() time.Time { return t0 }}
	_, err = v.Verify(context.Background(), tok)
	if err == nil || certinv.KindOf(err) != certinv.EInternal {
		t.Errorf("Verify with failing key source = %v, want an internal error", err)
	}
}

type keySetFunc func(ctx context.Context, issuer, kid string) (crypto.PublicKey, error)

func (f keySetFunc) Key(ctx context.Context, issuer, kid string) (crypto.PublicKey, error) {
	return f(ctx, issuer, kid)
}

func TestVerifyOtherAlgorithms(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var keys StaticKeySet
	keys.Add(testIssuer, "ec", &ec.PublicKey)
	keys.Add(testIssuer, "rsa", &rsaKey(t).PublicKey)
	v := &Verifier{Keys: &keys, Issuers: []string{testIssuer}, Now: func() time.Time { return t0 }}
	for _, tc := range []struct {
		m   jwt.SigningMethod
		key any
		kid string
	}{
		{jwt.SigningMethodES384, ec, "ec"},
		{jwt.SigningMethodPS256, rsaKey(t), "rsa"},
		{jwt.SigningMethodRS512, rsaKey(t), "rsa"},
	} {
		if _, err := v.Verify(context.Background(), sign(t, tc.m, tc.key, tc.kid, validClaims())); err != nil {
			t.Errorf("Verify(%s) = %v, want nil", tc.m.Alg(), err)
		}
	}
}

func TestJWKS(t *testing.T) {
	prev, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := NewIssuer(IssuerConfig{Key: rsaKey(t), Issuer: testIssuer, TenantID: testTenant, PreviousKeys: []*rsa.PublicKey{&prev.PublicKey}})
	if err != nil {
		t.Fatal(err)
	}
	var set struct {
		Keys []struct{ Kty, Use, Alg, Kid, N, E string }
	}
	if err := json.Unmarshal(iss.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 2 {
		t.Fatalf("JWKS has %d keys, want 2", len(set.Keys))
	}
	for i, want := range []*rsa.PublicKey{&rsaKey(t).PublicKey, &prev.PublicKey} {
		k := set.Keys[i]
		n, _ := base64.RawURLEncoding.DecodeString(k.N)
		e, _ := base64.RawURLEncoding.DecodeString(k.E)
		got := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		if !got.Equal(want) || k.Kty != "RSA" || k.Alg != "RS256" || k.Use != "sig" {
			t.Errorf("JWKS key %d = %+v, want the RSA key %d", i, k, i)
		}
		if k.Kid != Thumbprint(want) {
			t.Errorf("JWKS key %d kid = %s, want %s", i, k.Kid, Thumbprint(want))
		}
	}
	// A token signed by the previous key still verifies.
	tok := sign(t, jwt.SigningMethodRS256, prev, Thumbprint(&prev.PublicKey), validClaims())
	if _, err := newVerifier(iss, t0).Verify(context.Background(), tok); err != nil {
		t.Errorf("Verify(token of previous key) = %v, want nil", err)
	}
}

// TestThumbprintRFC7638 checks the example of RFC 7638, section 3.1.
func TestThumbprintRFC7638(t *testing.T) {
	n, err := base64.RawURLEncoding.DecodeString("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw")
	if err != nil {
		t.Fatal(err)
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: 65537}
	const want = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
	if got := Thumbprint(pub); got != want {
		t.Errorf("Thumbprint(RFC 7638 example) = %s, want %s", got, want)
	}
}

func TestLoadOrCreateKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "signing.pem")
	k1, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("key file mode = %v, want 0600", perm)
	}
	data, _ := os.ReadFile(path)
	if b, _ := pem.Decode(data); b == nil || b.Type != "PRIVATE KEY" {
		t.Errorf("key file is not a PKCS#8 PEM block: %.40q", data)
	}
	k2, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !k1.Equal(k2) {
		t.Error("LoadOrCreateKey twice gave two keys, want the stored one")
	}
	if k1.N.BitLen() < MinKeyBits {
		t.Errorf("generated key of %d bits, want at least %d", k1.N.BitLen(), MinKeyBits)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("folder holds %d entries after create, want the key alone", len(entries))
	}

	// Garbage and weak keys are refused, not replaced.
	bad := filepath.Join(t.TempDir(), "bad.pem")
	os.WriteFile(bad, []byte("not a key"), 0o600)
	if _, err := LoadOrCreateKey(bad); err == nil {
		t.Error("LoadOrCreateKey(garbage) = nil error, want refusal")
	}
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	der, _ := x509.MarshalPKCS8PrivateKey(small)
	weak := filepath.Join(t.TempDir(), "weak.pem")
	os.WriteFile(weak, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	if _, err := LoadOrCreateKey(weak); err == nil {
		t.Error("LoadOrCreateKey(1024-bit key) = nil error, want refusal")
	}
}

func decodePart(t *testing.T, tok string, i int) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[i])
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func BenchmarkVerify(b *testing.B) {
	iss := newIssuer(b)
	tok, err := iss.Issue(appClaims)
	if err != nil {
		b.Fatal(err)
	}
	v := newVerifier(iss, t0)
	ctx := context.Background()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzVerify(f *testing.F) {
	iss := newIssuer(f)
	tok, _ := iss.Issue(appClaims)
	f.Add(tok)
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	v := newVerifier(iss, t0)
	f.Fuzz(func(t *testing.T, s string) {
		p, err := v.Verify(context.Background(), s)
		if err == nil && s != tok {
			t.Fatalf("Verify(%q) = %+v, want error for anything but the issued token", s, p)
		}
		if err != nil && certinv.KindOf(err) != certinv.EUnauthorized {
			t.Fatalf("Verify(%q) kind = %v, want unauthorized", s, certinv.KindOf(err))
		}
	})
}
