package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/certinv/certinv"
)

// Defaults of RemoteOptions.
const (
	DefaultFetchTimeout    = 10 * time.Second
	DefaultMaxFetchBytes   = 1 << 20 // the vendor's key set is about 10 KiB
	DefaultKeysTTL         = time.Hour
	DefaultMinKeysTTL      = 5 * time.Minute
	DefaultMaxKeysTTL      = 24 * time.Hour
	DefaultRefreshInterval = time.Minute
	// MaxRemoteKeys is the most keys a key set may hold.
	MaxRemoteKeys = 100
)

// RemoteOptions tune how RemoteKeys fetches and caches an identity
// provider's keys. The zero value takes the defaults.
type RemoteOptions struct {
	// Client makes the requests; one with DefaultFetchTimeout when nil.
	Client *http.Client
	// Timeout bounds one fetch (discovery or key set);
	// DefaultFetchTimeout when zero.
	Timeout time.Duration
	// MaxBytes is the largest discovery document or key set accepted;
	// DefaultMaxFetchBytes when zero.
	MaxBytes int64
	// DefaultTTL is how long keys are kept when the response says nothing
	// (Cache-Control max-age or Expires); MinTTL and MaxTTL bound what it
	// says. DefaultKeysTTL, DefaultMinKeysTTL, DefaultMaxKeysTTL when zero.
	DefaultTTL, MinTTL, MaxTTL time.Duration
	// RefreshInterval is the least time between two fetches of the key
	// set: a token naming an unknown kid fetches it again only once this
	// long has passed since the last fetch, so that made-up kids cannot
	// make certinv hammer the provider. DefaultRefreshInterval when zero.
	RefreshInterval time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Log receives fetch failures and key changes; discarded when nil.
	Log *slog.Logger
}

func (o *RemoteOptions) fill() {
	if o.Timeout <= 0 {
		o.Timeout = DefaultFetchTimeout
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: o.Timeout, CheckRedirect: checkRedirect}
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxFetchBytes
	}
	if o.DefaultTTL <= 0 {
		o.DefaultTTL = DefaultKeysTTL
	}
	if o.MinTTL <= 0 {
		o.MinTTL = DefaultMinKeysTTL
	}
	if o.MaxTTL <= 0 {
		o.MaxTTL = DefaultMaxKeysTTL
	}
	if o.RefreshInterval <= 0 {
		o.RefreshInterval = DefaultRefreshInterval
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 3 {
		return errors.New("more than 3 redirects")
	}
	return checkFetchURL(req.URL)
}

// checkFetchURL allows https, and http to a loopback host only (a local
// identity provider, a test): keys fetched in the clear could be anyone's.
func checkFetchURL(u *url.URL) error {
	if u.Scheme == "https" && u.Host != "" {
		return nil
	}
	if u.Scheme == "http" && u.Host != "" {
		host := u.Hostname()
		if host == "localhost" {
			return nil
		}
		if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
			return nil
		}
	}
	return fmt.Errorf("URL %s: want https (http only to a loopback host)", redact(u))
}

// redact drops the query and user info of u, for messages and logs.
func redact(u *url.URL) string {
	c := *u
	c.User = nil
	c.RawQuery = ""
	c.Fragment = ""
	return c.String()
}

// RemoteKeys is the KeySet of one identity provider: the keys of its JSON
// Web Key Set, fetched over HTTPS (at the jwks_uri of its OpenID discovery
// document, or at a configured URL), cached as the response's headers say,
// and fetched again when a token names a key it lacks, at most once per
// RefreshInterval. It keeps only RSA keys of at least MinKeyBits bits and
// EC keys on P-256 or P-384. It is safe for concurrent use.
type RemoteKeys struct {
	discovery string // discovery URL, or ""
	opts      RemoteOptions

	fetchMu sync.Mutex // one fetch at a time

	mu        sync.Mutex
	jwksURL   string                      // from the configuration or discovery
	keys      map[string]crypto.PublicKey // nil before the first good fetch
	expires   time.Time                   // when keys go stale
	lastFetch time.Time                   // last attempt, good or not
	lastErr   error                       // of the last attempt
}

// NewRemoteKeys returns the keys at jwksURL, or those named by the
// discovery document at discoveryURL (one of them must be set). Nothing is
// fetched until Refresh or Key is called.
func NewRemoteKeys(discoveryURL, jwksURL string, opts RemoteOptions) (*RemoteKeys, error) {
	opts.fill()
	if (discoveryURL == "") == (jwksURL == "") {
		return nil, errors.New("auth: remote keys need a discovery URL or a JWKS URL (one of them)")
	}
	for _, s := range []string{discoveryURL, jwksURL} {
		if s == "" {
			continue
		}
		u, err := url.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("auth: %q is not a URL", s)
		}
		if err := checkFetchURL(u); err != nil {
			return nil, fmt.Errorf("auth: %w", err)
		}
	}
	return &RemoteKeys{discovery: discoveryURL, jwksURL: jwksURL, opts: opts}, nil
}

// Discovery is what certinv reads of an OpenID Provider's discovery document.
type Discovery struct {
	Issuer  string `json:"issuer"`
	JWKSURI string `json:"jwks_uri"`
}

// Discover fetches the discovery document of r (which must have been made
// with a discovery URL) and checks its issuer and jwks_uri.
func (r *RemoteKeys) Discover(ctx context.Context) (*Discovery, error) {
	if r.discovery == "" {
		return nil, errors.New("auth: remote keys have no discovery URL")
	}
	var d Discovery
	if err := r.getJSON(ctx, r.discovery, &d); err != nil {
		return nil, fmt.Errorf("fetch OpenID discovery document: %w", err)
	}
	if d.Issuer == "" || strings.ContainsAny(d.Issuer, "{}") {
		return nil, fmt.Errorf("OpenID discovery document at %s: issuer %q is empty or a template; use the tenant's own discovery URL (with its tenant id, not common or organizations)", r.discovery, d.Issuer)
	}
	u, err := url.Parse(d.JWKSURI)
	if err != nil || d.JWKSURI == "" {
		return nil, fmt.Errorf("OpenID discovery document at %s: jwks_uri %q is not a URL", r.discovery, d.JWKSURI)
	}
	if err := checkFetchURL(u); err != nil {
		return nil, fmt.Errorf("OpenID discovery document at %s: jwks_uri: %w", r.discovery, err)
	}
	return &d, nil
}

// Key implements KeySet. It answers from the cached keys while they are
// fresh; it fetches when they are stale or lack kid and the last fetch is
// older than RefreshInterval. When a fetch fails it goes on with the keys it
// has; with none, the error is of kind EUnavailable.
func (r *RemoteKeys) Key(ctx context.Context, _, kid string) (crypto.PublicKey, error) {
	now := r.opts.Now()
	r.mu.Lock()
	key, ok := r.keys[kid]
	fresh := r.keys != nil && now.Before(r.expires)
	mayFetch := r.lastFetch.IsZero() || now.Sub(r.lastFetch) >= r.opts.RefreshInterval || now.Before(r.lastFetch)
	r.mu.Unlock()
	if ok && fresh {
		return key, nil
	}
	if mayFetch {
		r.refresh(ctx, false)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if key, ok := r.keys[kid]; ok {
		return key, nil
	}
	if r.keys == nil {
		return nil, unavailable(r.lastErr)
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownKey, kid)
}

// Refresh fetches the key set now (resolving the discovery document first
// if needed), whatever the cache holds. It returns the fetch's error, and
// keeps the keys it had when the fetch fails.
func (r *RemoteKeys) Refresh(ctx context.Context) error {
	return r.refresh(ctx, true)
}

func (r *RemoteKeys) refresh(ctx context.Context, force bool) error {
	r.fetchMu.Lock()
	defer r.fetchMu.Unlock()
	now := r.opts.Now()
	r.mu.Lock()
	if !force && !r.lastFetch.IsZero() && now.Sub(r.lastFetch) < r.opts.RefreshInterval && !now.Before(r.lastFetch) {
		// Another caller fetched while this one waited.
		err := r.lastErr
		r.mu.Unlock()
		return err
	}
	r.lastFetch = now
	jwksURL := r.jwksURL
	r.mu.Unlock()

	// The fetch is the issuer's, not the request's: a client that hangs up
	// must not leave the cache without keys.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.opts.Timeout)
	defer cancel()
	keys, ttl, err := r.fetch(ctx, jwksURL)

	r.mu.Lock()
	defer r.mu.Unlock()
	r.lastErr = err
	if err != nil {
		r.opts.Log.Warn("fetching an identity provider's keys failed; keeping the keys held", "source", r.source(), "keys_held", len(r.keys), "err", err)
		return err
	}
	if !sameKeys(r.keys, keys) {
		r.opts.Log.Info("identity provider's keys fetched", "source", r.source(), "keys", len(keys), "ttl", ttl)
	}
	r.keys = keys
	r.expires = now.Add(ttl)
	return nil
}

func (r *RemoteKeys) source() string {
	if r.discovery != "" {
		return r.discovery
	}
	return r.jwksURL
}

// fetch resolves the discovery document when jwksURL is empty, then reads
// the key set.
func (r *RemoteKeys) fetch(ctx context.Context, jwksURL string) (map[string]crypto.PublicKey, time.Duration, error) {
	if jwksURL == "" || r.discovery != "" {
		// The discovery document is read again on every fetch: a provider
		// may move its keys.
		d, err := r.Discover(ctx)
		if err != nil {
			return nil, 0, err
		}
		jwksURL = d.JWKSURI
		r.mu.Lock()
		r.jwksURL = jwksURL
		r.mu.Unlock()
	}
	var set jwkSet
	h, err := r.get(ctx, jwksURL, &set)
	if err != nil {
		return nil, 0, fmt.Errorf("fetch JSON Web Key Set: %w", err)
	}
	keys, err := parseKeySet(&set)
	if err != nil {
		return nil, 0, fmt.Errorf("JSON Web Key Set at %s: %w", jwksURL, err)
	}
	return keys, cacheTTL(h, r.opts.Now(), r.opts.DefaultTTL, r.opts.MinTTL, r.opts.MaxTTL), nil
}

func (r *RemoteKeys) getJSON(ctx context.Context, u string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	defer cancel()
	_, err := r.get(ctx, u, v)
	return err
}

// get fetches u and decodes its JSON body, of at most MaxBytes, into v.
func (r *RemoteKeys) get(ctx context.Context, u string, v any) (http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := r.opts.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", redact(req.URL), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %s", redact(req.URL), resp.Status)
	}
	if resp.ContentLength > r.opts.MaxBytes {
		return nil, fmt.Errorf("GET %s: body of %d bytes, more than the %d accepted", redact(req.URL), resp.ContentLength, r.opts.MaxBytes)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, r.opts.MaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", redact(req.URL), err)
	}
	if int64(len(body)) > r.opts.MaxBytes {
		return nil, fmt.Errorf("GET %s: body larger than the %d bytes accepted", redact(req.URL), r.opts.MaxBytes)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return nil, fmt.Errorf("GET %s: not the JSON expected: %w", redact(req.URL), err)
	}
	return resp.Header, nil
}

// unavailable is the error of a key lookup when no keys could be fetched:
// the client is told the issuer's keys are unreachable (503), the detail is
// kept in the chain for the log.
func unavailable(cause error) error {
	if cause == nil {
		cause = errors.New("no keys fetched yet")
	}
	return fmt.Errorf("%w: %w", certinv.Errorf(certinv.EUnavailable, "the keys of the token's issuer cannot be fetched now; try again later"), cause)
}

// cacheTTL is how long a response with headers h may be kept: its
// Cache-Control max-age, else its Expires, else def; within [lo, hi].
// no-store and no-cache give lo: keys fetched on every token would let any
// client make certinv fetch without bound.
func cacheTTL(h http.Header, now time.Time, def, lo, hi time.Duration) time.Duration {
	ttl := def
	if cc := h.Get("Cache-Control"); cc != "" {
		for d := range strings.SplitSeq(cc, ",") {
			d = strings.ToLower(strings.TrimSpace(d))
			switch {
			case d == "no-store" || d == "no-cache":
				return lo
			case strings.HasPrefix(d, "max-age="):
				if n, err := strconv.ParseInt(strings.Trim(d[len("max-age="):], `"`), 10, 64); err == nil && n >= 0 {
					ttl = time.Duration(min(n, int64(hi/time.Second)+1)) * time.Second
					return max(lo, min(hi, ttl))
				}
			}
		}
	}
	if e := h.Get("Expires"); e != "" {
		if t, err := http.ParseTime(e); err == nil {
			base := now
			if d, err := http.ParseTime(h.Get("Date")); err == nil {
				base = d
			}
			ttl = t.Sub(base)
		} else {
			ttl = lo // an invalid Expires means already expired (RFC 9111)
		}
	}
	return max(lo, min(hi, ttl))
}

// jwkSet is a JSON Web Key Set as fetched (RFC 7517).
type jwkSet struct {
	Keys []json.RawMessage `json:"keys"`
}

// remoteJWK holds the members of a fetched key that certinv reads.
type remoteJWK struct {
	Kty string `json:"kty"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// parseKeySet returns the usable keys of set by kid. Keys that are not for
// signatures, of another type, too weak or malformed are left out; a set
// with none left, or with too many keys, is an error.
func parseKeySet(set *jwkSet) (map[string]crypto.PublicKey, error) {
	if len(set.Keys) > MaxRemoteKeys {
		return nil, fmt.Errorf("%d keys, more than the %d accepted", len(set.Keys), MaxRemoteKeys)
	}
	keys := make(map[string]crypto.PublicKey)
	var skipped []string
	for i, raw := range set.Keys {
		var k remoteJWK
		if err := json.Unmarshal(raw, &k); err != nil {
			skipped = append(skipped, fmt.Sprintf("key %d: %v", i, err))
			continue
		}
		pub, err := parseJWK(&k)
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("key %d (kid %q): %v", i, k.Kid, err))
			continue
		}
		if _, dup := keys[k.Kid]; dup {
			// Two keys under one kid: neither can be told apart, use neither.
			skipped = append(skipped, fmt.Sprintf("key %d: kid %q is used twice", i, k.Kid))
			keys[k.Kid] = nil
			continue
		}
		keys[k.Kid] = pub
	}
	for kid, k := range keys {
		if k == nil {
			delete(keys, kid)
		}
	}
	if len(keys) == 0 {
		msg := "no usable key (RSA of at least 2048 bits, or EC on P-256 or P-384, for signatures, with a kid)"
		if len(skipped) > 0 {
			msg += ": " + strings.Join(skipped, "; ")
		}
		return nil, errors.New(msg)
	}
	return keys, nil
}

// parseJWK returns the public key of k, if it is one certinv verifies with.
func parseJWK(k *remoteJWK) (crypto.PublicKey, error) {
	if k.Kid == "" {
		return nil, errors.New("no kid")
	}
	if k.Use != "" && k.Use != "sig" {
		return nil, fmt.Errorf("use %q is not sig", k.Use)
	}
	if k.Alg != "" && !isAccepted(k.Alg) {
		return nil, fmt.Errorf("alg %q is not accepted", k.Alg)
	}
	switch k.Kty {
	case "RSA":
		n, err := base64.RawURLEncoding.DecodeString(k.N)
		if err != nil || len(n) == 0 {
			return nil, errors.New("RSA modulus n is not base64url")
		}
		e, err := base64.RawURLEncoding.DecodeString(k.E)
		if err != nil || len(e) == 0 || len(e) > 4 {
			return nil, errors.New("RSA exponent e is not base64url of at most 4 bytes")
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		if bits := pub.N.BitLen(); bits < MinKeyBits {
			return nil, fmt.Errorf("RSA key of %d bits, want at least %d", bits, MinKeyBits)
		}
		if pub.E < 3 || pub.E%2 == 0 || pub.E > 1<<31-1 {
			return nil, fmt.Errorf("RSA exponent %d is not an odd number from 3 to 2^31-1", pub.E)
		}
		return pub, nil
	case "EC":
		var curve elliptic.Curve
		switch k.Crv {
		case "P-256":
			curve = elliptic.P256()
		case "P-384":
			curve = elliptic.P384()
		default:
			return nil, fmt.Errorf("EC curve %q: want P-256 or P-384", k.Crv)
		}
		size := (curve.Params().BitSize + 7) / 8
		x, errX := base64.RawURLEncoding.DecodeString(k.X)
		y, errY := base64.RawURLEncoding.DecodeString(k.Y)
		if errX != nil || errY != nil || len(x) != size || len(y) != size {
			return nil, fmt.Errorf("EC coordinates are not base64url of %d bytes", size)
		}
		point := append(append([]byte{4}, x...), y...)
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, point)
		if err != nil {
			return nil, fmt.Errorf("EC point: %w", err)
		}
		return pub, nil
	default:
		return nil, fmt.Errorf("kty %q: want RSA or EC", k.Kty)
	}
}

func isAccepted(alg string) bool {
	for _, a := range AcceptedAlgorithms {
		if a == alg {
			return true
		}
	}
	return false
}

func sameKeys(a, b map[string]crypto.PublicKey) bool {
	if len(a) != len(b) {
		return false
	}
	for kid, k := range a {
		o, ok := b[kid]
		if !ok {
			return false
		}
		eq, ok := k.(interface{ Equal(crypto.PublicKey) bool })
		if !ok || !eq.Equal(o) {
			return false
		}
	}
	return true
}
