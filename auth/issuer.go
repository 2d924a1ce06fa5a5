package auth

import (
	"context"
	"crypto"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/certinv/certinv"
)

// DefaultTokenLifetime is how long an issued token is valid when neither the
// IssuerConfig nor the Claims say otherwise (the vendor's access tokens live
// 60 to 90 minutes).
const DefaultTokenLifetime = time.Hour

// IssuerConfig configures an Issuer.
type IssuerConfig struct {
	// Key signs the tokens (RS256); at least MinKeyBits bits.
	Key *rsa.PrivateKey
	// Issuer is the iss claim, for instance
	// "https://certinv.example.com/<tenant id>/v2.0" (the vendor's form is
	// "https://login.microsoftonline.com/<tenant id>/v2.0").
	Issuer string
	// TenantID is the tid claim: the organization's GUID.
	TenantID string
	// PreviousKeys are retired signing keys whose tokens are still accepted
	// and which JWKS still publishes, so that a key rotation does not cut off
	// tokens already given out.
	PreviousKeys []*rsa.PublicKey
	// Lifetime of a token when Claims.Lifetime is zero; DefaultTokenLifetime
	// when zero.
	Lifetime time.Duration
	// Aliases are other iss values of this issuer whose tokens its keys
	// verify: the issuer's former or offline name (certinv serve signs with
	// its URL and still accepts tokens that `certinv token` signs with its
	// URN). Issue always signs with Issuer.
	Aliases []string
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Issuer is the embedded token issuer: it signs access tokens shaped like
// Entra ID v2 tokens and publishes its keys. It implements KeySet for its own
// tokens. It is safe for concurrent use.
type Issuer struct {
	key      *rsa.PrivateKey
	kid      string
	iss      string
	aliases  []string
	tid      string
	lifetime time.Duration
	now      func() time.Time
	public   map[string]*rsa.PublicKey // by key id, current and previous
	order    []string                  // key ids, current first
}

// NewIssuer returns an Issuer for cfg.
func NewIssuer(cfg IssuerConfig) (*Issuer, error) {
	if cfg.Key == nil {
		return nil, errors.New("auth: issuer needs a signing key")
	}
	if n := cfg.Key.N.BitLen(); n < MinKeyBits {
		return nil, fmt.Errorf("auth: signing key of %d bits, want at least %d", n, MinKeyBits)
	}
	if cfg.Issuer == "" || cfg.TenantID == "" {
		return nil, errors.New("auth: issuer needs an issuer string and a tenant id")
	}
	i := &Issuer{
		key:      cfg.Key,
		kid:      Thumbprint(&cfg.Key.PublicKey),
		iss:      cfg.Issuer,
		aliases:  slices.Clone(cfg.Aliases),
		tid:      cfg.TenantID,
		lifetime: cfg.Lifetime,
		now:      cfg.Now,
		public:   make(map[string]*rsa.PublicKey),
	}
	if i.lifetime <= 0 {
		i.lifetime = DefaultTokenLifetime
	}
	if i.now == nil {
		i.now = time.Now
	}
	i.public[i.kid] = &cfg.Key.PublicKey
	i.order = append(i.order, i.kid)
	for _, pub := range cfg.PreviousKeys {
		kid := Thumbprint(pub)
		if _, dup := i.public[kid]; dup {
			continue
		}
		i.public[kid] = pub
		i.order = append(i.order, kid)
	}
	return i, nil
}

// KeyID returns the key id (kid) of the current signing key.
func (i *Issuer) KeyID() string { return i.kid }

// IssuerURL returns the iss claim of the issued tokens.
func (i *Issuer) IssuerURL() string { return i.iss }

// Issuers returns the iss values whose tokens i's keys verify: the one it
// signs with, then its aliases. A Verifier of i's tokens trusts these.
func (i *Issuer) Issuers() []string { return append([]string{i.iss}, i.aliases...) }

// TenantID returns the tid claim of the issued tokens.
func (i *Issuer) TenantID() string { return i.tid }

// Key implements KeySet: the public keys of i, for tokens of i's issuer.
func (i *Issuer) Key(_ context.Context, issuer, kid string) (crypto.PublicKey, error) {
	if issuer != i.iss && !slices.Contains(i.aliases, issuer) {
		return nil, ErrUnknownKey
	}
	if k, ok := i.public[kid]; ok {
		return k, nil
	}
	return nil, ErrUnknownKey
}

// Claims describe the token to issue. A token with Scopes is delegated (acts
// for the user ObjectID); one without is an application token.
type Claims struct {
	Audience string   // aud, e.g. "https://api.securitycenter.microsoft.com" or "api://certinv"
	AppID    string   // appid and azp: the client application
	ObjectID string   // oid: the user of a delegated token, the app's service principal otherwise
	Subject  string   // sub; ObjectID when empty
	UPN      string   // upn of a delegated token
	Roles    []string // application permissions (claim roles)
	Scopes   []string // delegated permissions (claim scp, joined by spaces)
	// CredentialID names the client secret the token was granted for
	// (claim certinv_sid): a Verifier with Credentials refuses the token once
	// that secret is rotated or its application deleted. Empty for tokens
	// made without a client credential (`certinv token`).
	CredentialID string
	// Lifetime overrides the issuer's token lifetime when positive.
	Lifetime time.Duration
}

// tokenClaims is the payload of an Entra ID v2 access token, as far as the
// export API uses it.
type tokenClaims struct {
	jwt.RegisteredClaims
	TenantID          string   `json:"tid,omitempty"`
	AppID             string   `json:"appid,omitempty"`
	AuthorizedParty   string   `json:"azp,omitempty"`
	ObjectID          string   `json:"oid,omitempty"`
	UPN               string   `json:"upn,omitempty"`
	PreferredUsername string   `json:"preferred_username,omitempty"`
	Roles             []string `json:"roles,omitempty"`
	Scope             string   `json:"scp,omitempty"`
	IDType            string   `json:"idtyp,omitempty"`
	Version           string   `json:"ver,omitempty"`
	UTI               string   `json:"uti,omitempty"`
	// CredentialID is certinv's own claim: the id of the registered
	// application's secret that the token was granted for.
	CredentialID string `json:"certinv_sid,omitempty"`
}

// issuedClaims are the claims as signed: aud is one string, as in the
// vendor's tokens (the library writes an array).
type issuedClaims struct {
	tokenClaims
	Audience string `json:"aud"`
}

// Issue signs a token for c with RS256.
func (i *Issuer) Issue(c Claims) (string, error) {
	tok, _, err := i.IssueToken(c)
	return tok, err
}

// IssueToken signs a token for c with RS256 and returns it with its expiry
// (the exp claim).
func (i *Issuer) IssueToken(c Claims) (string, time.Time, error) {
	if c.Audience == "" || c.AppID == "" {
		return "", time.Time{}, errors.New("auth: a token needs an audience and an application id")
	}
	if len(c.Scopes) > 0 && c.ObjectID == "" {
		return "", time.Time{}, errors.New("auth: a delegated token needs the user's object id")
	}
	for _, s := range c.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n") {
			return "", time.Time{}, fmt.Errorf("auth: scope %q is empty or holds white space", s)
		}
	}
	lifetime := c.Lifetime
	if lifetime <= 0 {
		lifetime = i.lifetime
	}
	now := i.now().UTC().Truncate(time.Second)
	sub := c.Subject
	if sub == "" {
		sub = c.ObjectID
	}
	if sub == "" {
		sub = c.AppID
	}
	id := certinv.NewGUID()
	tc := tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    i.iss,
			Subject:   sub,
			Audience:  jwt.ClaimStrings{c.Audience},
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(lifetime)),
			ID:        id,
		},
		TenantID:        i.tid,
		AppID:           c.AppID,
		AuthorizedParty: c.AppID,
		ObjectID:        c.ObjectID,
		Roles:           c.Roles,
		Version:         "2.0",
		UTI:             id,
		CredentialID:    c.CredentialID,
	}
	if len(c.Scopes) > 0 {
		tc.Scope = strings.Join(c.Scopes, " ")
		tc.UPN = c.UPN
		tc.PreferredUsername = c.UPN
		tc.IDType = "user"
	} else {
		tc.IDType = "app"
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, issuedClaims{tc, c.Audience})
	tok.Header["kid"] = i.kid
	s, err := tok.SignedString(i.key)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("auth: sign token: %w", err)
	}
	return s, tc.ExpiresAt.Time, nil
}

// jwk is one RSA key of a JSON Web Key Set (RFC 7517).
type jwk struct {
	Kty string `json:"kty"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	N   string `json:"n"`
	E   string `json:"e"`
}

// JWKS returns the JSON Web Key Set of i's public keys, current first, as
// served at /.well-known/jwks.json and /discovery/v2.0/keys.
func (i *Issuer) JWKS() []byte {
	var set struct {
		Keys []jwk `json:"keys"`
	}
	for _, kid := range i.order {
		pub := i.public[kid]
		set.Keys = append(set.Keys, jwk{
			Kty: "RSA", Use: "sig", Alg: "RS256", Kid: kid,
			N: b64(pub.N.Bytes()),
			E: b64(big.NewInt(int64(pub.E)).Bytes()),
		})
	}
	b, err := json.Marshal(set)
	if err != nil {
		panic(err) // strings only: cannot fail
	}
	return b
}
