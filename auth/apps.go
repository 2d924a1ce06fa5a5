package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/certinv/certinv"
)

// Limits on what a registered application and a client authentication may
// hold. The token endpoint refuses longer input before any lookup.
const (
	MaxAppNameLength  = 256 // characters
	MaxAppRoles       = 32
	MaxClientIDLength = 128 // a GUID is 36
	MaxSecretLength   = 256 // a secret of Apps is 51
)

// DefaultCredentialCacheTTL is how long CheckCredential trusts what it read
// of an application: a deletion or rotation made by another process (the
// `certinv app` command, another replica) stops that application's tokens
// within this time. Changes made through the same *Apps apply at once.
const DefaultCredentialCacheTTL = 30 * time.Second

// credentialCacheSize bounds the applications whose state CheckCredential
// keeps; when full, the cache starts again empty.
const credentialCacheSize = 10000

// secretPrefix starts every client secret, so that secret scanners and
// people can tell what it is.
const secretPrefix = "cis1_"

// roleName is what a role may look like: the vendor's permission names
// (Vulnerability.Read.All) and certinv's own.
var roleName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,119}$`)

// Apps registers applications with the embedded issuer and grants them
// tokens with the client-credentials flow. The zero value is not usable:
// set Store (and Issuer to grant tokens). It is safe for concurrent use;
// its fields must not change once it is in use.
//
// A client secret is 256 bits from crypto/rand; only its SHA-256 (bound to
// the client id) is stored. A slow, salted password hash protects secrets
// that people choose, which can be guessed; a 256-bit random secret cannot
// be, so one hash is as strong and keeps authentication cheap.
type Apps struct {
	// Store keeps the applications. Required.
	Store certinv.AppStore
	// Issuer signs the tokens Grant gives out; Grant fails without it.
	Issuer *Issuer
	// Audiences are the aud values Grant gives tokens for;
	// AudienceDefender and AudienceCertinv when empty. They should be the
	// audiences the Verifier of the embedded issuer accepts.
	Audiences []string
	// CacheTTL is how long CheckCredential trusts what it read;
	// DefaultCredentialCacheTTL when zero.
	CacheTTL time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time

	mu    sync.Mutex
	cache map[string]credentialState // by app id
}

// credentialState is what CheckCredential knows of one application.
type credentialState struct {
	found    bool
	secretID string
	read     time.Time
}

// Errors of Grant, wrapped in an *certinv.Error's chain so that callers can
// tell the OAuth 2.0 error to answer.
var (
	// ErrInvalidClient: the client id is unknown or the secret is wrong
	// (invalid_client; kind EUnauthorized).
	ErrInvalidClient = errors.New("invalid client")
	// ErrInvalidAudience: the requested audience is not one that tokens
	// are given for (invalid_scope, or invalid_resource in the v1 form;
	// kind EInvalid).
	ErrInvalidAudience = errors.New("invalid audience")
)

// grantError is an *certinv.Error that also matches a sentinel with errors.Is.
type grantError struct {
	err      *certinv.Error
	sentinel error
}

func (e *grantError) Error() string   { return e.err.Error() }
func (e *grantError) Unwrap() []error { return []error{e.err, e.sentinel} }

func invalidClient() error {
	return &grantError{certinv.Errorf(certinv.EUnauthorized, "client authentication failed: the client_id is unknown or the client_secret is wrong"), ErrInvalidClient}
}

func (a *Apps) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func (a *Apps) ttl() time.Duration {
	if a.CacheTTL > 0 {
		return a.CacheTTL
	}
	return DefaultCredentialCacheTTL
}

// Create registers an application named name with roles, and returns it
// with its secret: the only time the secret is shown. An invalid name or
// role is an EInvalid error.
func (a *Apps) Create(ctx context.Context, name string, roles []string) (*certinv.App, string, error) {
	name = strings.TrimSpace(name)
	if err := checkAppName(name); err != nil {
		return nil, "", err
	}
	roles, err := checkRoles(roles)
	if err != nil {
		return nil, "", err
	}
	now := a.now().UTC()
	app := &certinv.App{ID: certinv.NewGUID(), Name: name, Roles: roles, CreatedAt: now}
	secret := a.newSecret(app, now)
	if err := a.Store.CreateApp(ctx, app); err != nil {
		return nil, "", err
	}
	return app, secret, nil
}

// Rotate gives application id a new secret and returns it: the old secret
// stops authenticating at once, and the tokens granted for it stop working
// (within CacheTTL in other processes). ENotFound for an unknown id.
func (a *Apps) Rotate(ctx context.Context, id string) (*certinv.App, string, error) {
	app, err := a.Store.App(ctx, normalizeClientID(id))
	if err != nil {
		return nil, "", err
	}
	secret := a.newSecret(app, a.now().UTC())
	if err := a.Store.SetAppSecret(ctx, app.ID, app.SecretID, app.SecretHash, app.SecretCreatedAt); err != nil {
		return nil, "", err
	}
	a.remember(app.ID, true, app.SecretID)
	return app, secret, nil
}

// Delete removes application id: it can get no token, and the tokens it
// has stop working (within CacheTTL in other processes). ENotFound for an
// unknown id.
func (a *Apps) Delete(ctx context.Context, id string) error {
	id = normalizeClientID(id)
	if err := a.Store.DeleteApp(ctx, id); err != nil {
		return err
	}
	a.remember(id, false, "")
	return nil
}

// List returns the registered applications, oldest first.
func (a *Apps) List(ctx context.Context) ([]*certinv.App, error) {
	return a.Store.Apps(ctx)
}

// Authenticate returns the application whose client id and secret these
// are. Every refusal is the same EUnauthorized error (wrapping
// ErrInvalidClient), whether the client is unknown or the secret wrong; the
// secret is compared in constant time.
func (a *Apps) Authenticate(ctx context.Context, clientID, secret string) (*certinv.App, error) {
	if clientID == "" || secret == "" || len(clientID) > MaxClientIDLength || len(secret) > MaxSecretLength {
		return nil, invalidClient()
	}
	id := normalizeClientID(clientID)
	app, err := a.Store.App(ctx, id)
	if certinv.KindOf(err) == certinv.ENotFound {
		// Hash anyway, so that an unknown client costs what a known one does.
		h := secretHash(id, secret)
		subtle.ConstantTimeCompare(h[:], h[:])
		return nil, invalidClient()
	}
	if err != nil {
		return nil, fmt.Errorf("authenticate client %s: %w", id, err)
	}
	h := secretHash(app.ID, secret)
	if subtle.ConstantTimeCompare(h[:], app.SecretHash) != 1 {
		return nil, invalidClient()
	}
	a.remember(app.ID, true, app.SecretID)
	return app, nil
}

// Grant authenticates a client with its secret and returns an access token
// for audience with the application's roles, and when it expires. A
// refusal wraps ErrInvalidClient (kind EUnauthorized) or ErrInvalidAudience
// (kind EInvalid); anything else is internal.
func (a *Apps) Grant(ctx context.Context, clientID, secret, audience string) (string, time.Time, error) {
	if a.Issuer == nil {
		return "", time.Time{}, errors.New("auth: Apps has no Issuer to sign tokens with")
	}
	aud, ok := a.audience(audience)
	if !ok {
		return "", time.Time{}, &grantError{certinv.Errorf(certinv.EInvalid,
			"tokens are given for the audiences %s only", strings.Join(a.audiences(), ", ")), ErrInvalidAudience}
	}
	app, err := a.Authenticate(ctx, clientID, secret)
	if err != nil {
		return "", time.Time{}, err
	}
	tok, exp, err := a.Issuer.IssueToken(Claims{
		Audience:     aud,
		AppID:        app.ID,
		ObjectID:     app.ID,
		Roles:        app.Roles,
		CredentialID: app.SecretID,
	})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("grant token to %s: %w", app.ID, err)
	}
	return tok, exp, nil
}

func (a *Apps) audiences() []string {
	if len(a.Audiences) > 0 {
		return a.Audiences
	}
	return []string{AudienceDefender, AudienceCertinv}
}

// audience returns the configured audience that requested names, ignoring
// one trailing slash (the vendor's resource URIs are written both ways).
func (a *Apps) audience(requested string) (string, bool) {
	r := strings.TrimSuffix(requested, "/")
	if r == "" {
		return "", false
	}
	for _, aud := range a.audiences() {
		if strings.TrimSuffix(aud, "/") == r {
			return aud, true
		}
	}
	return "", false
}

// CheckCredential implements CredentialChecker: nil when application appID
// exists and secretID is its current secret. What it read is trusted for
// CacheTTL. A token naming another secret than the cached one makes it read
// the application again, so that the tokens of a secret rotated in another
// process work at once (the cost, one read by primary key, falls on holders
// of a rotated secret's tokens, whose calls the rate limits bound).
func (a *Apps) CheckCredential(ctx context.Context, appID, secretID string) error {
	now := a.now()
	a.mu.Lock()
	st, ok := a.cache[appID]
	a.mu.Unlock()
	fresh := ok && now.Sub(st.read) < a.ttl() && !now.Before(st.read)
	if !fresh || (st.found && st.secretID != secretID) {
		app, err := a.Store.App(ctx, appID)
		switch {
		case certinv.KindOf(err) == certinv.ENotFound:
			st = credentialState{read: now}
		case err != nil:
			return fmt.Errorf("check credential of app %s: %w", appID, err)
		default:
			st = credentialState{found: true, secretID: app.SecretID, read: now}
		}
		a.store(appID, st)
	}
	switch {
	case !st.found:
		return unauthorized("the bearer token's application is no longer registered")
	case st.secretID != secretID:
		return unauthorized("the bearer token was granted for a client secret that has since been rotated; request a new token")
	}
	return nil
}

func (a *Apps) remember(appID string, found bool, secretID string) {
	a.store(appID, credentialState{found: found, secretID: secretID, read: a.now()})
}

func (a *Apps) store(appID string, st credentialState) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cache == nil || len(a.cache) >= credentialCacheSize {
		a.cache = make(map[string]credentialState)
	}
	a.cache[appID] = st
}

// newSecret gives app a new secret (id, hash and time) and returns it.
func (a *Apps) newSecret(app *certinv.App, now time.Time) string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	secret := secretPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	h := secretHash(app.ID, secret)
	app.SecretID = certinv.NewGUID()
	app.SecretHash = h[:]
	app.SecretCreatedAt = now
	return secret
}

// secretHash is the stored digest of an application's secret. The client id
// in it makes a digest useless for any other application.
func secretHash(appID, secret string) [32]byte {
	h := sha256.New()
	h.Write([]byte("certinv client secret v1\x00"))
	h.Write([]byte(appID))
	h.Write([]byte{0})
	h.Write([]byte(secret))
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// normalizeClientID lowercases a GUID, as client ids are compared without
// regard to case (the vendor's are); anything else stays as it is.
func normalizeClientID(id string) string {
	if len(id) == 36 && strings.Count(id, "-") == 4 {
		return strings.ToLower(id)
	}
	return id
}

func checkAppName(name string) error {
	switch {
	case name == "":
		return certinv.Errorf(certinv.EInvalid, "an application needs a name")
	case !utf8.ValidString(name):
		return certinv.Errorf(certinv.EInvalid, "the application name is not valid UTF-8")
	case utf8.RuneCountInString(name) > MaxAppNameLength:
		return certinv.Errorf(certinv.EInvalid, "the application name is longer than %d characters", MaxAppNameLength)
	case strings.ContainsFunc(name, unicode.IsControl):
		return certinv.Errorf(certinv.EInvalid, "the application name holds control characters")
	}
	return nil
}

// checkRoles validates roles and returns them without duplicates, in their
// first order.
func checkRoles(roles []string) ([]string, error) {
	var out []string
	for _, r := range roles {
		if !roleName.MatchString(r) {
			return nil, certinv.Errorf(certinv.EInvalid, "role %q: want letters, digits, '.', '_' or '-', at most 120, such as %s", r, certinv.RoleVulnerabilityReadAll)
		}
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	switch {
	case len(out) == 0:
		return nil, certinv.Errorf(certinv.EInvalid, "an application needs at least one role, such as %s", certinv.RoleVulnerabilityReadAll)
	case len(out) > MaxAppRoles:
		return nil, certinv.Errorf(certinv.EInvalid, "an application has at most %d roles", MaxAppRoles)
	}
	return out, nil
}
