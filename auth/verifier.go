package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/certinv/certinv"
)

// Audiences the Verifier accepts by default: the vendor's API and certinv's own.
const (
	AudienceDefender = "https://api.securitycenter.microsoft.com"
	AudienceCertinv  = "api://certinv"
)

// ClockSkew is the leeway on exp and nbf.
const ClockSkew = 5 * time.Minute

// AcceptedAlgorithms are the signing algorithms a token may use: asymmetric
// ones only, never "none" or HMAC (whose key would be the public key).
var AcceptedAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "ES256", "ES384"}

// Trust is an identity provider whose tokens a Verifier accepts: the iss
// values it signs with, the aud values its tokens must name, and its keys.
// NewTrust makes one for a remote provider from its TrustConfig.
type Trust struct {
	Issuers   []string
	Audiences []string
	Keys      KeySet
}

// CredentialChecker says whether the client secret a token was granted for
// is still current; *Apps is one. CheckCredential returns nil when it is,
// an *certinv.Error of kind EUnauthorized when the application was deleted
// or the secret rotated, and any other error when it cannot tell.
type CredentialChecker interface {
	CheckCredential(ctx context.Context, appID, credentialID string) error
}

// Verifier checks bearer tokens and turns them into principals. Its fields
// must not change once it is in use.
type Verifier struct {
	// Keys finds the key a token of Issuers is checked with: the embedded
	// issuer's keys.
	Keys KeySet
	// Issuers are the trusted iss values of Keys; a token whose issuer is
	// neither one of these nor one of Trusted's is refused before any key
	// is looked up.
	Issuers []string
	// Audiences are the accepted aud values of Issuers' tokens;
	// AudienceDefender and AudienceCertinv when empty.
	Audiences []string
	// Trusted are the other identity providers (the organization's own),
	// each with its own issuers, audiences and keys. An iss of Issuers
	// takes precedence over the same iss in Trusted.
	Trusted []Trust
	// Credentials checks the tokens of Issuers that name the client secret
	// they were granted for (claim certinv_sid). When nil, such tokens are
	// refused: a token that a rotation or deletion should revoke is never
	// taken unchecked.
	Credentials CredentialChecker
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Cache, when set, remembers verified tokens, so that the calls of one
	// client with one token (a traversal of many pages) check its signature
	// once. A remembered token is checked again for expiry and, when it
	// names a client secret, against Credentials on every call; its
	// signature is checked again after VerifiedCacheTTL.
	Cache *TokenCache
}

// DefaultVerifiedCacheSize and VerifiedCacheTTL bound a TokenCache. The TTL
// bounds how long a token stays accepted after a remote identity provider
// withdrew the key that signed it.
const (
	DefaultVerifiedCacheSize = 10000
	VerifiedCacheTTL         = 5 * time.Minute
)

// TokenCache remembers verified tokens for a Verifier, by the SHA-256 of
// the token. It is safe for concurrent use.
type TokenCache struct {
	size int
	mu   sync.Mutex
	m    map[[32]byte]verified
}

// NewTokenCache returns a cache of at most size tokens
// (DefaultVerifiedCacheSize when size is not positive). When full, it
// starts again empty: tokens are then verified anew, at the cost of one
// signature check each.
func NewTokenCache(size int) *TokenCache {
	if size <= 0 {
		size = DefaultVerifiedCacheSize
	}
	return &TokenCache{size: size, m: make(map[[32]byte]verified)}
}

// verified is a remembered token: its principal, and what must be checked
// again on every use.
type verified struct {
	p          certinv.Principal
	expires    time.Time // exp
	checkUntil time.Time // verified again after this
	embedded   bool
	credential string
}

// Verify checks token (the bearer token without its "Bearer " prefix) and
// returns its principal. A token without roles or scp is valid and yields a
// principal without permissions: whether that may call an endpoint is the
// endpoint's decision. Every refusal is an *certinv.Error of kind
// EUnauthorized whose message says what was wrong; a failure to find keys or
// check credentials for another reason is returned as it is (internal, or
// EUnavailable when a remote issuer's keys cannot be fetched).
func (v *Verifier) Verify(ctx context.Context, token string) (*certinv.Principal, error) {
	if (v.Keys == nil || len(v.Issuers) == 0) && len(v.Trusted) == 0 {
		return nil, errors.New("auth: verifier has no keys or no trusted issuers")
	}
	if token == "" {
		return nil, unauthorized("the bearer token is empty")
	}
	now := v.Now
	if now == nil {
		now = time.Now
	}
	var key [32]byte
	if v.Cache != nil {
		key = sha256.Sum256([]byte(token))
		if p, ok, err := v.remembered(ctx, key, now()); ok {
			return p, err
		}
	}
	var (
		keyErr   error // set by keyfunc: not a token problem
		auds     []string
		embedded bool
		claims   tokenClaims
	)
	_, err := jwt.ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) {
		iss := claims.Issuer
		var keys KeySet
		keys, auds, embedded = v.trust(iss)
		if keys == nil {
			return nil, unauthorized("the bearer token's issuer is not trusted")
		}
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, unauthorized("the bearer token names no signing key (kid)")
		}
		key, err := keys.Key(ctx, iss, kid)
		if errors.Is(err, ErrUnknownKey) {
			return nil, unauthorized("the bearer token's signing key (kid) is not one of the issuer's keys")
		}
		if err != nil {
			keyErr = fmt.Errorf("auth: find key %q of issuer %q: %w", kid, iss, err)
			return nil, keyErr
		}
		return key, nil
	},
		jwt.WithValidMethods(AcceptedAlgorithms),
		jwt.WithLeeway(ClockSkew),
		jwt.WithTimeFunc(now),
		jwt.WithExpirationRequired(),
		jwt.WithNotBeforeRequired(),
		jwt.WithStrictDecoding(),
	)
	if keyErr != nil {
		return nil, keyErr
	}
	if err != nil {
		return nil, tokenError(err)
	}
	if len(claims.Audience) == 0 {
		return nil, unauthorized("the bearer token lacks a required claim: the audience (aud)")
	}
	if !slices.ContainsFunc(claims.Audience, func(a string) bool { return slices.Contains(auds, a) }) {
		return nil, unauthorized("the bearer token's audience is not accepted")
	}
	p := &certinv.Principal{
		Issuer:   claims.Issuer,
		TenantID: claims.TenantID,
		AppID:    claims.AppID,
		ObjectID: claims.ObjectID,
		UPN:      claims.UPN,
		Roles:    claims.Roles,
		Scopes:   strings.Fields(claims.Scope),
	}
	if p.AppID == "" {
		p.AppID = claims.AuthorizedParty
	}
	if p.UPN == "" {
		p.UPN = claims.PreferredUsername
	}
	if embedded && claims.CredentialID != "" {
		if v.Credentials == nil {
			return nil, unauthorized("the bearer token was granted to a registered application, which this server cannot check")
		}
		if err := v.Credentials.CheckCredential(ctx, p.AppID, claims.CredentialID); err != nil {
			return nil, err
		}
	}
	if v.Cache != nil && claims.ExpiresAt != nil {
		v.Cache.put(key, verified{p: *p, expires: claims.ExpiresAt.Time, checkUntil: now().Add(VerifiedCacheTTL),
			embedded: embedded, credential: claims.CredentialID})
	}
	return p, nil
}

// remembered answers a token verified before: ok is false when it must be
// verified anew (not remembered, or remembered too long).
func (v *Verifier) remembered(ctx context.Context, key [32]byte, now time.Time) (*certinv.Principal, bool, error) {
	c := v.Cache
	c.mu.Lock()
	e, ok := c.m[key]
	if ok && !now.Before(e.checkUntil) {
		delete(c.m, key)
		ok = false
	}
	c.mu.Unlock()
	if !ok {
		return nil, false, nil
	}
	if now.After(e.expires.Add(ClockSkew)) {
		return nil, true, unauthorized("the bearer token has expired")
	}
	if e.embedded && e.credential != "" {
		if v.Credentials == nil {
			return nil, true, unauthorized("the bearer token was granted to a registered application, which this server cannot check")
		}
		if err := v.Credentials.CheckCredential(ctx, e.p.AppID, e.credential); err != nil {
			return nil, true, err
		}
	}
	p := e.p
	p.Roles = slices.Clone(p.Roles)
	p.Scopes = slices.Clone(p.Scopes)
	return &p, true, nil
}

func (c *TokenCache) put(key [32]byte, e verified) {
	e.p.Roles = slices.Clone(e.p.Roles)
	e.p.Scopes = slices.Clone(e.p.Scopes)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.size {
		c.m = make(map[[32]byte]verified)
	}
	c.m[key] = e
}

// trust returns the keys and audiences of the tokens of issuer iss, and
// whether iss is one of Issuers; nil keys when iss is not trusted.
func (v *Verifier) trust(iss string) (KeySet, []string, bool) {
	if iss == "" {
		return nil, nil, false
	}
	if v.Keys != nil && slices.Contains(v.Issuers, iss) {
		auds := v.Audiences
		if len(auds) == 0 {
			auds = []string{AudienceDefender, AudienceCertinv}
		}
		return v.Keys, auds, true
	}
	for _, t := range v.Trusted {
		if t.Keys != nil && slices.Contains(t.Issuers, iss) {
			return t.Keys, t.Audiences, false
		}
	}
	return nil, nil, false
}

func unauthorized(msg string) error { return certinv.Errorf(certinv.EUnauthorized, "%s", msg) }

// tokenError turns a parse or validation error of the jwt library into a
// client-safe EUnauthorized error. The library's own text is not passed on:
// it may quote claims.
func tokenError(err error) error {
	var e *certinv.Error
	if errors.As(err, &e) {
		return e
	}
	var msg string
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		msg = "the bearer token is malformed"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		msg = "the bearer token lacks a required claim (exp, nbf or the audience aud)"
	case errors.Is(err, jwt.ErrTokenExpired):
		msg = "the bearer token has expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		msg = "the bearer token is not valid yet (nbf is in the future)"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		msg = "the bearer token's audience is not accepted"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid) && strings.Contains(err.Error(), "signing method"):
		msg = "the bearer token's signing algorithm is not accepted (use one of " + strings.Join(AcceptedAlgorithms, ", ") + ")"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		msg = "the bearer token's signature is invalid"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		msg = "the bearer token cannot be verified with the issuer's key"
	default:
		msg = "the bearer token is invalid"
	}
	return unauthorized(msg)
}
