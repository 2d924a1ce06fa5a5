package auth

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certinv/certinv"
	"github.com/certinv/certinv/storetest"
)

// memApps is an in-memory certinv.AppStore for the tests of Apps. It passes
// the store contract suite (TestMemAppsContract), so it behaves as the real
// stores do.
type memApps struct {
	mu   sync.Mutex
	apps map[string]certinv.App
	// reads counts App calls.
	reads int
}

func (m *memApps) CreateApp(_ context.Context, app *certinv.App) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.apps == nil {
		m.apps = map[string]certinv.App{}
	}
	if _, ok := m.apps[app.ID]; ok {
		return certinv.Errorf(certinv.EConflict, "app %s exists", app.ID)
	}
	c := *app
	c.Roles = slices.Clone(app.Roles)
	c.SecretHash = slices.Clone(app.SecretHash)
	c.CreatedAt, c.SecretCreatedAt = c.CreatedAt.UTC(), c.SecretCreatedAt.UTC()
	m.apps[app.ID] = c
	return nil
}

func (m *memApps) App(_ context.Context, id string) (*certinv.App, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reads++
	a, ok := m.apps[id]
	if !ok {
		return nil, certinv.Errorf(certinv.ENotFound, "no app %s", id)
	}
	a.Roles = slices.Clone(a.Roles)
	a.SecretHash = slices.Clone(a.SecretHash)
	return &a, nil
}

func (m *memApps) Apps(context.Context) ([]*certinv.App, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*certinv.App
	for _, a := range m.apps {
		a.Roles = slices.Clone(a.Roles)
		out = append(out, &a)
	}
	slices.SortFunc(out, func(a, b *certinv.App) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

func (m *memApps) SetAppSecret(_ context.Context, id, secretID string, hash []byte, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.apps[id]
	if !ok {
		return certinv.Errorf(certinv.ENotFound, "no app %s", id)
	}
	a.SecretID, a.SecretHash, a.SecretCreatedAt = secretID, slices.Clone(hash), at.UTC()
	m.apps[id] = a
	return nil
}

func (m *memApps) DeleteApp(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.apps[id]; !ok {
		return certinv.Errorf(certinv.ENotFound, "no app %s", id)
	}
	delete(m.apps, id)
	return nil
}

func TestMemAppsContract(t *testing.T) {
	storetest.RunApps(t, func(*testing.T) certinv.AppStore { return &memApps{} })
}

// appsEnv is an Apps with its store, issuer, verifier and clock.
type appsEnv struct {
	store *memApps
	apps  *Apps
	v     *Verifier
	now   *time.Time
}

func newAppsEnv(t *testing.T) *appsEnv {
	t.Helper()
	now := t0
	clock := func() time.Time { return now }
	iss, err := NewIssuer(IssuerConfig{Key: rsaKey(t), Issuer: testIssuer, TenantID: testTenant, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	e := &appsEnv{store: &memApps{}, now: &now}
	e.apps = &Apps{Store: e.store, Issuer: iss, Now: clock}
	e.v = &Verifier{Keys: iss, Issuers: iss.Issuers(), Credentials: e.apps, Now: clock}
	return e
}

func (e *appsEnv) create(t *testing.T, roles ...string) (*certinv.App, string) {
	t.Helper()
	app, secret, err := e.apps.Create(context.Background(), "reporting script", roles)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return app, secret
}

func (e *appsEnv) grant(t *testing.T, id, secret string) string {
	t.Helper()
	tok, _, err := e.apps.Grant(context.Background(), id, secret, AudienceDefender)
	if err != nil {
		t.Fatalf("Grant(%s): %v", id, err)
	}
	return tok
}

func TestAppsCreateGrantVerify(t *testing.T) {
	ctx := context.Background()
	e := newAppsEnv(t)
	app, secret := e.create(t, certinv.RoleVulnerabilityReadAll, "Machine.Read.All", certinv.RoleVulnerabilityReadAll)
	if !strings.HasPrefix(secret, secretPrefix) || len(secret) != len(secretPrefix)+43 {
		t.Errorf("secret %q: want %s and 43 base64url characters (256 bits)", secret, secretPrefix)
	}
	if want := []string{certinv.RoleVulnerabilityReadAll, "Machine.Read.All"}; !slices.Equal(app.Roles, want) {
		t.Errorf("Create roles = %v, want %v (duplicates dropped)", app.Roles, want)
	}
	stored, err := e.store.App(ctx, app.ID)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(stored.SecretHash, []byte(secret)) || len(stored.SecretHash) != 32 {
		t.Errorf("stored secret hash = %x, want a 32-byte digest", stored.SecretHash)
	}
	h := secretHash(app.ID, secret)
	if !bytes.Equal(stored.SecretHash, h[:]) {
		t.Errorf("stored hash is not secretHash(id, secret)")
	}

	tok, exp, err := e.apps.Grant(ctx, strings.ToUpper(app.ID), secret, AudienceDefender+"/")
	if err != nil {
		t.Fatalf("Grant(upper-case client id, audience with slash) = %v", err)
	}
	if !exp.Equal(t0.Add(DefaultTokenLifetime)) {
		t.Errorf("Grant expiry = %v, want %v", exp, t0.Add(DefaultTokenLifetime))
	}
	p, err := e.v.Verify(ctx, tok)
	if err != nil {
		t.Fatalf("Verify(granted token) = %v", err)
	}
	if p.AppID != app.ID || p.TenantID != testTenant || !slices.Equal(p.Roles, app.Roles) || !p.CanReadVulnerabilities() || p.Delegated() {
		t.Errorf("Verify(granted token) = %+v, want app %s with roles %v", p, app.ID, app.Roles)
	}
	payload := decodePart(t, tok, 1)
	if payload["aud"] != AudienceDefender || payload["azp"] != app.ID || payload["appid"] != app.ID || payload["certinv_sid"] != stored.SecretID {
		t.Errorf("payload = %v, want aud %s, azp/appid %s, certinv_sid %s", payload, AudienceDefender, app.ID, stored.SecretID)
	}
}

func TestAppsGrantRefusals(t *testing.T) {
	ctx := context.Background()
	e := newAppsEnv(t)
	app, secret := e.create(t, certinv.RoleVulnerabilityReadAll)
	other, _ := e.create(t, certinv.RoleVulnerabilityReadAll)
	tests := []struct {
		name            string
		id, secret, aud string
		want            error
		kind            certinv.ErrorKind
	}{
		{"wrong secret", app.ID, secret + "x", AudienceDefender, ErrInvalidClient, certinv.EUnauthorized},
		{"secret of another app", other.ID, secret, AudienceDefender, ErrInvalidClient, certinv.EUnauthorized},
		{"unknown client", certinv.NewGUID(), secret, AudienceDefender, ErrInvalidClient, certinv.EUnauthorized},
		{"empty secret", app.ID, "", AudienceDefender, ErrInvalidClient, certinv.EUnauthorized},
		{"empty client", "", secret, AudienceDefender, ErrInvalidClient, certinv.EUnauthorized},
		{"long client id", strings.Repeat("a", MaxClientIDLength+1), secret, AudienceDefender, ErrInvalidClient, certinv.EUnauthorized},
		{"long secret", app.ID, strings.Repeat("a", MaxSecretLength+1), AudienceDefender, ErrInvalidClient, certinv.EUnauthorized},
		{"unknown audience", app.ID, secret, "api://other", ErrInvalidAudience, certinv.EInvalid},
		{"empty audience", app.ID, secret, "", ErrInvalidAudience, certinv.EInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, _, err := e.apps.Grant(ctx, tt.id, tt.secret, tt.aud)
			if tok != "" || !errors.Is(err, tt.want) || certinv.KindOf(err) != tt.kind {
				t.Errorf("Grant = %q, %v (kind %s); want no token and %v of kind %s", tok, err, certinv.KindOf(err), tt.want, tt.kind)
			}
		})
	}
	// Unknown client and wrong secret cannot be told apart.
	_, _, errUnknown := e.apps.Grant(ctx, certinv.NewGUID(), secret, AudienceDefender)
	_, _, errWrong := e.apps.Grant(ctx, app.ID, secret+"x", AudienceDefender)
	if certinv.MessageOf(errUnknown) != certinv.MessageOf(errWrong) {
		t.Errorf("messages differ: unknown client %q, wrong secret %q", certinv.MessageOf(errUnknown), certinv.MessageOf(errWrong))
	}
}

func TestAppsRotate(t *testing.T) {
	ctx := context.Background()
	e := newAppsEnv(t)
	app, oldSecret := e.create(t, certinv.RoleVulnerabilityReadAll)
	oldTok := e.grant(t, app.ID, oldSecret)

	rotated, newSecret, err := e.apps.Rotate(ctx, app.ID)
	if err != nil {
		t.Fatal(err)
	}
	if newSecret == oldSecret || rotated.SecretID == app.SecretID || rotated.ID != app.ID {
		t.Fatalf("Rotate = %+v, %q; want a new secret and secret id for the same app", rotated, newSecret)
	}
	if _, _, err := e.apps.Grant(ctx, app.ID, oldSecret, AudienceDefender); !errors.Is(err, ErrInvalidClient) {
		t.Errorf("Grant(old secret) = %v, want ErrInvalidClient", err)
	}
	if _, err := e.v.Verify(ctx, oldTok); certinv.KindOf(err) != certinv.EUnauthorized || !strings.Contains(certinv.MessageOf(err), "rotated") {
		t.Errorf("Verify(token of the old secret) = %v, want unauthorized: rotated", err)
	}
	if _, err := e.v.Verify(ctx, e.grant(t, app.ID, newSecret)); err != nil {
		t.Errorf("Verify(token of the new secret) = %v", err)
	}
	if _, _, err := e.apps.Rotate(ctx, certinv.NewGUID()); certinv.KindOf(err) != certinv.ENotFound {
		t.Errorf("Rotate(unknown) = %v, want not found", err)
	}
}

func TestAppsDelete(t *testing.T) {
	ctx := context.Background()
	e := newAppsEnv(t)
	app, secret := e.create(t, certinv.RoleVulnerabilityReadAll)
	tok := e.grant(t, app.ID, secret)
	if err := e.apps.Delete(ctx, app.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.v.Verify(ctx, tok); certinv.KindOf(err) != certinv.EUnauthorized || !strings.Contains(certinv.MessageOf(err), "no longer registered") {
		t.Errorf("Verify(token of deleted app) = %v, want unauthorized: no longer registered", err)
	}
	if _, _, err := e.apps.Grant(ctx, app.ID, secret, AudienceDefender); !errors.Is(err, ErrInvalidClient) {
		t.Errorf("Grant(deleted app) = %v, want ErrInvalidClient", err)
	}
	if err := e.apps.Delete(ctx, app.ID); certinv.KindOf(err) != certinv.ENotFound {
		t.Errorf("Delete(deleted) = %v, want not found", err)
	}
}

// TestAppsChangedElsewhere deletes and rotates through another Apps on the
// same store, as `certinv app` does from another process: the server's
// tokens stop working once its cache entry is CacheTTL old.
func TestAppsChangedElsewhere(t *testing.T) {
	ctx := context.Background()
	e := newAppsEnv(t)
	cli := &Apps{Store: e.store, Now: e.apps.Now}
	app, secret := e.create(t, certinv.RoleVulnerabilityReadAll)
	tok := e.grant(t, app.ID, secret) // the server caches the app now
	if _, err := e.v.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}

	_, newSecret, err := cli.Rotate(ctx, app.ID)
	if err != nil {
		t.Fatal(err)
	}
	*e.now = t0.Add(DefaultCredentialCacheTTL - time.Second)
	if _, err := e.v.Verify(ctx, tok); err != nil {
		t.Errorf("Verify(old token) within the cache TTL = %v, want still accepted", err)
	}
	// A token of the new secret works at once: a mismatch re-reads.
	newTok := e.grant(t, app.ID, newSecret)
	if _, err := e.v.Verify(ctx, newTok); err != nil {
		t.Errorf("Verify(token of the new secret) = %v", err)
	}
	if _, err := e.v.Verify(ctx, tok); err == nil {
		t.Errorf("Verify(old token) after the new secret was seen = nil, want refused")
	}

	if err := cli.Delete(ctx, app.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.v.Verify(ctx, newTok); err != nil {
		t.Errorf("Verify within the cache TTL of a deletion elsewhere = %v, want still accepted (cached)", err)
	}
	*e.now = e.now.Add(DefaultCredentialCacheTTL)
	if _, err := e.v.Verify(ctx, newTok); certinv.KindOf(err) != certinv.EUnauthorized {
		t.Errorf("Verify after the cache TTL of a deletion elsewhere = %v, want unauthorized", err)
	}
	// The deletion is cached too: no store read for each refused call.
	reads := e.store.reads
	for range 10 {
		e.v.Verify(ctx, newTok)
	}
	if e.store.reads != reads {
		t.Errorf("10 refused calls read the store %d times, want 0 (cached)", e.store.reads-reads)
	}
}

func TestVerifierWithoutCredentialsRefusesAppTokens(t *testing.T) {
	e := newAppsEnv(t)
	app, secret := e.create(t, certinv.RoleVulnerabilityReadAll)
	tok := e.grant(t, app.ID, secret)
	v := *e.v
	v.Credentials = nil
	if _, err := v.Verify(context.Background(), tok); certinv.KindOf(err) != certinv.EUnauthorized {
		t.Errorf("Verify(app token) without Credentials = %v, want unauthorized", err)
	}
	// A token made without a client secret (certinv token) is not checked.
	cli, err := e.v.Keys.(*Issuer).Issue(appClaims)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), cli); err != nil {
		t.Errorf("Verify(token without certinv_sid) = %v, want nil", err)
	}
}

func TestAppsCreateRefuses(t *testing.T) {
	e := newAppsEnv(t)
	many := make([]string, MaxAppRoles+1)
	for i := range many {
		many[i] = "Role." + strings.Repeat("x", i+1)
	}
	tests := []struct {
		name  string
		app   string
		roles []string
	}{
		{"no name", "  ", []string{certinv.RoleVulnerabilityReadAll}},
		{"control character", "a\nb", []string{certinv.RoleVulnerabilityReadAll}},
		{"long name", strings.Repeat("n", MaxAppNameLength+1), []string{certinv.RoleVulnerabilityReadAll}},
		{"invalid UTF-8", "a\xffb", []string{certinv.RoleVulnerabilityReadAll}},
		{"no role", "app", nil},
		{"role with space", "app", []string{"Vulnerability Read"}},
		{"empty role", "app", []string{""}},
		{"too many roles", "app", many},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app, secret, err := e.apps.Create(context.Background(), tt.app, tt.roles)
			if certinv.KindOf(err) != certinv.EInvalid || app != nil || secret != "" {
				t.Errorf("Create(%q, %q) = %v, %q, %v; want an invalid-input error", tt.app, tt.roles, app, secret, err)
			}
		})
	}
	if apps, _ := e.store.Apps(context.Background()); len(apps) != 0 {
		t.Errorf("refused Creates stored %d apps", len(apps))
	}
}

func BenchmarkVerifyAppToken(b *testing.B) {
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
	v := &Verifier{Keys: iss, Issuers: iss.Issuers(), Credentials: apps, Now: func() time.Time { return t0 }}
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}
