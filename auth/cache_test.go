package auth

import (
	"context"
	"crypto"
	"crypto/sha256"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certinv/certinv"
)

func TestTokenCache(t *testing.T) {
	ctx := context.Background()
	e := newAppsEnv(t)
	var lookups atomic.Int32
	iss := e.v.Keys.(*Issuer)
	e.v.Keys = keySetFunc(func(ctx context.Context, issuer, kid string) (crypto.PublicKey, error) {
		lookups.Add(1)
		return iss.Key(ctx, issuer, kid)
	})
	e.v.Cache = NewTokenCache(0)
	app, secret := e.create(t, certinv.RoleVulnerabilityReadAll)
	tok := e.grant(t, app.ID, secret)

	for i := range 3 {
		p, err := e.v.Verify(ctx, tok)
		if err != nil || p.AppID != app.ID || p.Roles[0] != certinv.RoleVulnerabilityReadAll {
			t.Fatalf("Verify #%d = %+v, %v", i, p, err)
		}
		p.Roles[0] = "Tampered.By.Caller" // must not reach the cache
	}
	if n := lookups.Load(); n != 1 {
		t.Errorf("3 Verify calls of one token looked up the key %d times, want 1 (cached)", n)
	}
	// A forged token never enters the cache, and never matches a cached one.
	forged := tok[:strings.LastIndex(tok, ".")+1] + "AAAA"
	if _, err := e.v.Verify(ctx, forged); certinv.KindOf(err) != certinv.EUnauthorized {
		t.Errorf("Verify(forged) = %v, want unauthorized", err)
	}

	// The signature is checked again after VerifiedCacheTTL.
	*e.now = t0.Add(VerifiedCacheTTL)
	if _, err := e.v.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if n := lookups.Load(); n != 3 {
		t.Errorf("key lookups after the cache TTL = %d, want 3 (forged + re-verified)", n)
	}

	// Expiry is checked on every hit.
	*e.now = t0.Add(DefaultTokenLifetime + ClockSkew + time.Second)
	e.v.Cache.put(sha256Of(tok), verified{p: certinv.Principal{AppID: app.ID}, expires: t0.Add(DefaultTokenLifetime), checkUntil: e.now.Add(time.Hour)})
	if _, err := e.v.Verify(ctx, tok); certinv.KindOf(err) != certinv.EUnauthorized || !strings.Contains(certinv.MessageOf(err), "expired") {
		t.Errorf("Verify(cached, expired) = %v, want unauthorized: expired", err)
	}
}

// TestTokenCacheRevocation: a deleted app's cached token is refused at once.
func TestTokenCacheRevocation(t *testing.T) {
	ctx := context.Background()
	e := newAppsEnv(t)
	e.v.Cache = NewTokenCache(0)
	app, secret := e.create(t, certinv.RoleVulnerabilityReadAll)
	tok := e.grant(t, app.ID, secret)
	if _, err := e.v.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if err := e.apps.Delete(ctx, app.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.v.Verify(ctx, tok); certinv.KindOf(err) != certinv.EUnauthorized {
		t.Errorf("Verify(cached token of a deleted app) = %v, want unauthorized", err)
	}
}

func TestTokenCacheBounded(t *testing.T) {
	c := NewTokenCache(3)
	for i := range 10 {
		c.put([32]byte{byte(i)}, verified{})
		if len(c.m) > 3 {
			t.Fatalf("cache of 3 holds %d", len(c.m))
		}
	}
}

func sha256Of(s string) [32]byte { return sha256.Sum256([]byte(s)) }

// BenchmarkVerifyCached is BenchmarkVerifyAppToken with a TokenCache: the
// cost of every call of a client after its first with one token.
func BenchmarkVerifyCached(b *testing.B) {
	ctx := context.Background()
	store := &memApps{}
	iss, err := NewIssuer(IssuerConfig{Key: rsaKey(b), Issuer: testIssuer, TenantID: testTenant, Now: func() time.Time { return t0 }})
	if err != nil {
		b.Fatal(err)
	}
	apps := &Apps{Store: store, Issuer: iss, Now: func() time.Time { return t0 }}
	app, secret, err := apps.Create(ctx, "bench", []string{certinv.RoleVulnerabilityReadAll})
	if err != nil {
		b.Fatal(err)
	}
	tok, _, err := apps.Grant(ctx, app.ID, secret, AudienceDefender)
	if err != nil {
		b.Fatal(err)
	}
	v := &Verifier{Keys: iss, Issuers: iss.Issuers(), Credentials: apps, Cache: NewTokenCache(0), Now: func() time.Time { return t0 }}
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}
