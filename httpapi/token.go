package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/certinv/certinv"
)

// ClientCredentials grants access tokens to the applications registered
// with the embedded issuer; *auth.Apps is one. Grant authenticates the
// client with its secret and returns a token for audience and its expiry.
// Its refusals are *certinv.Error values: EUnauthorized when the client is
// unknown or the secret wrong, EInvalid when the audience is not one tokens
// are given for. Anything else is internal.
type ClientCredentials interface {
	Grant(ctx context.Context, clientID, clientSecret, audience string) (accessToken string, expiresAt time.Time, err error)
}

// TokenConfig configures the embedded issuer's endpoints: the
// client-credentials token endpoints (v2.0 and v1 forms) and the OpenID
// discovery document.
type TokenConfig struct {
	// Grants gives out the tokens. Required.
	Grants ClientCredentials
	// Issuer is the iss of the tokens, published by the discovery
	// document. Required.
	Issuer string
	// TenantID is the organization's GUID: the {tenant} of the endpoints'
	// paths, as in the vendor's https://login.microsoftonline.com/{tenant}/...
	// Required.
	TenantID string
	// MaxFailures is how many failed client authentications a client id
	// may have in FailureWindow before its requests are refused with 429
	// (good secrets too, so that guessing learns nothing). 10 a minute when
	// zero.
	MaxFailures   int
	FailureWindow time.Duration
}

// Limits of the token endpoints.
const (
	// MaxTokenRequestBytes is the largest form body the token endpoints read.
	MaxTokenRequestBytes = 16 << 10
	// MaxClientIDLength and MaxClientSecretLength bound what they pass on.
	MaxClientIDLength     = 128
	MaxClientSecretLength = 256
	// failureTrackLimit bounds the client ids whose failures are counted
	// apart; beyond it, new ids share one more count until old ones are
	// forgotten (a window after their last failure).
	failureTrackLimit = 10000
)

// Paths of the embedded issuer's endpoints; each is also served under
// /{tenant}, as the vendor's are.
const (
	PathTokenV2 = "/oauth2/v2.0/token"
	PathTokenV1 = "/oauth2/token"
)

// tokenEndpoints serves the routes of TokenConfig.
type tokenEndpoints struct {
	s        *Server
	cfg      TokenConfig
	base     string // PublicURL without trailing slash
	failures *failureLimiter
}

// addTokenRoutes adds the embedded issuer's routes to s, when configured.
func (s *Server) addTokenRoutes() error {
	c := s.cfg.Tokens
	if c == nil {
		return nil
	}
	if c.Grants == nil || c.Issuer == "" || c.TenantID == "" || strings.ContainsAny(c.TenantID, "/?#") {
		return errors.New("httpapi: Tokens needs Grants, Issuer and a TenantID")
	}
	t := &tokenEndpoints{s: s, cfg: *c, base: strings.TrimSuffix(s.cfg.PublicURL, "/")}
	if t.cfg.MaxFailures <= 0 {
		t.cfg.MaxFailures = 10
	}
	if t.cfg.FailureWindow <= 0 {
		t.cfg.FailureWindow = time.Minute
	}
	t.failures = &failureLimiter{max: float64(t.cfg.MaxFailures), window: t.cfg.FailureWindow}
	tenant := "/" + strings.ToLower(c.TenantID)
	for _, prefix := range []string{"", tenant} {
		s.routes[prefix+PathTokenV2] = route{"POST", t.handleV2}
		s.routes[prefix+PathTokenV1] = route{"POST", t.handleV1}
	}
	s.routes[tenant+"/v2.0/.well-known/openid-configuration"] = route{"GET", t.handleDiscovery(PathTokenV2)}
	s.routes[tenant+"/.well-known/openid-configuration"] = route{"GET", t.handleDiscovery(PathTokenV1)}
	s.routes[tenant+"/oauth2/v2.0/authorize"] = route{"GET", t.handleAuthorize}
	return nil
}

// oauthError is an error answer of the token endpoint (RFC 6749, 5.2).
type oauthError struct {
	status      int
	code        string
	description string
	retryAfter  int // seconds, for 429
}

func (e *oauthError) Error() string { return e.code + ": " + e.description }

func invalidRequest(format string, args ...any) *oauthError {
	return &oauthError{http.StatusBadRequest, "invalid_request", fmt.Sprintf(format, args...), 0}
}

// tokenRequest is a parsed client-credentials request.
type tokenRequest struct {
	clientID, secret string
	audience         string // from scope (v2) or resource (v1)
	basic            bool   // the client authenticated with HTTP Basic
}

func (t *tokenEndpoints) handleV2(w http.ResponseWriter, r *http.Request) error {
	return t.serveToken(w, r, false)
}

func (t *tokenEndpoints) handleV1(w http.ResponseWriter, r *http.Request) error {
	return t.serveToken(w, r, true)
}

func (t *tokenEndpoints) serveToken(w http.ResponseWriter, r *http.Request, v1 bool) error {
	ctx := r.Context()
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	req, oerr := parseTokenRequest(w, r, v1)
	if oerr != nil {
		t.writeError(ctx, w, oerr, req != nil && req.basic)
		return nil
	}
	now := t.s.now()
	if wait := t.failures.wait(req.clientID, now); wait > 0 {
		secs := int(math.Ceil(wait.Seconds()))
		t.writeError(ctx, w, &oauthError{http.StatusTooManyRequests, "temporarily_unavailable",
			"too many failed client authentications for this client_id; retry after " + strconv.Itoa(secs) + " seconds", secs}, req.basic)
		return nil
	}
	token, exp, err := t.cfg.Grants.Grant(ctx, req.clientID, req.secret, req.audience)
	if err != nil {
		switch certinv.KindOf(err) {
		case certinv.EUnauthorized:
			t.failures.fail(req.clientID, now)
			oerr = &oauthError{http.StatusUnauthorized, "invalid_client", certinv.MessageOf(err), 0}
		case certinv.EInvalid:
			code := "invalid_scope"
			if v1 {
				code = "invalid_resource"
			}
			oerr = &oauthError{http.StatusBadRequest, code, certinv.MessageOf(err), 0}
		default:
			t.s.log.ErrorContext(ctx, "token grant failed", "request_id", requestID(ctx), "err", err)
			oerr = &oauthError{http.StatusInternalServerError, "server_error", "an internal error occurred; try again later", 0}
		}
		t.writeError(ctx, w, oerr, req.basic)
		return nil
	}
	// The vendor answers 3599 for a token of an hour: whole seconds left,
	// rounded down, and one less for the time the answer takes.
	expiresIn := int(math.Ceil(exp.Sub(now).Seconds())) - 1
	if expiresIn < 0 {
		expiresIn = 0
	}
	if v1 {
		// The v1 endpoint answers numbers as strings, as the vendor's does.
		writeJSON(ctx, t.s.log, w, http.StatusOK, struct {
			TokenType    string `json:"token_type"`
			ExpiresIn    string `json:"expires_in"`
			ExtExpiresIn string `json:"ext_expires_in"`
			ExpiresOn    string `json:"expires_on"`
			NotBefore    string `json:"not_before"`
			Resource     string `json:"resource"`
			AccessToken  string `json:"access_token"`
		}{"Bearer", strconv.Itoa(expiresIn), strconv.Itoa(expiresIn), strconv.FormatInt(exp.Unix(), 10),
			strconv.FormatInt(now.Unix(), 10), req.audience, token})
		return nil
	}
	writeJSON(ctx, t.s.log, w, http.StatusOK, struct {
		TokenType    string `json:"token_type"`
		ExpiresIn    int    `json:"expires_in"`
		ExtExpiresIn int    `json:"ext_expires_in"`
		AccessToken  string `json:"access_token"`
	}{"Bearer", expiresIn, expiresIn, token})
	return nil
}

// parseTokenRequest reads the form of a client-credentials request. It
// returns the request as far as it was read with any error, so that the
// error answer knows whether the client used HTTP Basic.
func parseTokenRequest(w http.ResponseWriter, r *http.Request, v1 bool) (*tokenRequest, *oauthError) {
	req := &tokenRequest{}
	user, pass, basic := r.BasicAuth()
	if !basic && r.Header.Get("Authorization") != "" {
		return req, &oauthError{http.StatusUnauthorized, "invalid_client", "the Authorization header is not HTTP Basic with the client id and secret", 0}
	}
	req.basic = basic
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return req, invalidRequest("the body must be a form: Content-Type application/x-www-form-urlencoded")
	}
	if r.ContentLength > MaxTokenRequestBytes {
		return req, invalidRequest("the body is larger than %d bytes", MaxTokenRequestBytes)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxTokenRequestBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return req, invalidRequest("the body is larger than %d bytes", MaxTokenRequestBytes)
		}
		return req, invalidRequest("the body could not be read")
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return req, invalidRequest("the body is not a valid form (application/x-www-form-urlencoded)")
	}
	for _, p := range []string{"grant_type", "client_id", "client_secret", "scope", "resource"} {
		if len(form[p]) > 1 {
			return req, invalidRequest("the parameter %s is given more than once", p)
		}
	}
	switch gt := form.Get("grant_type"); gt {
	case "client_credentials":
	case "":
		return req, invalidRequest("grant_type is missing; this endpoint serves grant_type=client_credentials")
	default:
		return req, &oauthError{http.StatusBadRequest, "unsupported_grant_type", "grant_type " + strconv.Quote(truncate(gt, 64)) + " is not supported; use client_credentials", 0}
	}

	req.clientID, req.secret = form.Get("client_id"), form.Get("client_secret")
	if basic {
		if req.secret != "" {
			return req, invalidRequest("the client authenticates with HTTP Basic and client_secret at once; use one")
		}
		// RFC 6749, 2.3.1: the id and secret are form-encoded before Basic.
		id, err1 := url.QueryUnescape(user)
		secret, err2 := url.QueryUnescape(pass)
		if err1 != nil || err2 != nil {
			return req, &oauthError{http.StatusUnauthorized, "invalid_client", "the HTTP Basic credentials are not form-encoded client id and secret", 0}
		}
		if req.clientID != "" && req.clientID != id {
			return req, invalidRequest("client_id differs from the HTTP Basic user")
		}
		req.clientID, req.secret = id, secret
	}
	switch {
	case req.clientID == "":
		return req, invalidRequest("client_id is missing")
	case len(req.clientID) > MaxClientIDLength:
		return req, invalidRequest("client_id is longer than %d characters", MaxClientIDLength)
	case req.secret == "":
		return req, &oauthError{http.StatusUnauthorized, "invalid_client", "client_secret is missing: authenticate with client_secret in the body or with HTTP Basic", 0}
	case len(req.secret) > MaxClientSecretLength:
		return req, invalidRequest("client_secret is longer than %d characters", MaxClientSecretLength)
	}

	if v1 {
		req.audience = form.Get("resource")
		if req.audience == "" {
			return req, invalidRequest("resource is missing; give the API to call, such as resource=https://api.securitycenter.microsoft.com")
		}
		return req, nil
	}
	if form.Get("resource") != "" {
		return req, invalidRequest("resource is not a parameter of the v2.0 endpoint; use scope=<resource>/.default (or the v1 endpoint %s)", PathTokenV1)
	}
	scope := form.Get("scope")
	if scope == "" {
		return req, invalidRequest("scope is missing; the client credentials flow takes scope=<resource>/.default, such as https://api.securitycenter.microsoft.com/.default")
	}
	scopes := strings.Fields(scope)
	if len(scopes) != 1 || !strings.HasSuffix(scopes[0], "/.default") || scopes[0] == "/.default" {
		return req, &oauthError{http.StatusBadRequest, "invalid_scope", "the client credentials flow takes one scope of the form <resource>/.default, such as https://api.securitycenter.microsoft.com/.default", 0}
	}
	req.audience = strings.TrimSuffix(scopes[0], "/.default")
	return req, nil
}

// writeError answers an OAuth 2.0 error.
func (t *tokenEndpoints) writeError(ctx context.Context, w http.ResponseWriter, e *oauthError, basic bool) {
	t.s.log.DebugContext(ctx, "token request refused", "request_id", requestID(ctx), "status", e.status, "err", e)
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	switch {
	case e.status == http.StatusUnauthorized && basic:
		h.Set("WWW-Authenticate", `Basic realm="certinv", charset="UTF-8"`)
	case e.status == http.StatusTooManyRequests:
		h.Set("Retry-After", strconv.Itoa(e.retryAfter))
	}
	writeJSON(ctx, t.s.log, w, e.status, struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
		TraceID     string `json:"trace_id"`
		Timestamp   string `json:"timestamp"`
	}{e.code, e.description, requestID(ctx), t.s.now().UTC().Format(time.DateTime + "Z")})
}

// handleDiscovery serves the OpenID discovery document of the embedded
// issuer, naming the token endpoint at tokenPath.
func (t *tokenEndpoints) handleDiscovery(tokenPath string) func(http.ResponseWriter, *http.Request) error {
	tenant := t.base + "/" + strings.ToLower(t.cfg.TenantID)
	doc := map[string]any{
		"issuer":                                t.cfg.Issuer,
		"token_endpoint":                        tenant + tokenPath,
		"authorization_endpoint":                tenant + "/oauth2/v2.0/authorize",
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "client_secret_basic"},
		"grant_types_supported":                 []string{"client_credentials"},
		"response_types_supported":              []string{"token"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"scopes_supported":                      []string{".default"},
		"tenant_id":                             t.cfg.TenantID,
	}
	if t.s.cfg.JWKS != nil {
		doc["jwks_uri"] = t.base + "/discovery/v2.0/keys"
	}
	body, err := json.Marshal(doc)
	if err != nil {
		panic(err) // strings only
	}
	return func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		if r.Method == http.MethodHead {
			return nil
		}
		if _, err := w.Write(body); err != nil {
			logWriteError(r.Context(), t.s.log, err)
		}
		return nil
	}
}

// handleAuthorize answers the authorization endpoint that OpenID discovery
// must name: certinv issues tokens to applications only.
func (t *tokenEndpoints) handleAuthorize(w http.ResponseWriter, r *http.Request) error {
	t.writeError(r.Context(), w, &oauthError{http.StatusBadRequest, "unsupported_response_type",
		"the embedded issuer serves the client credentials grant only, at " + t.base + "/" + strings.ToLower(t.cfg.TenantID) + PathTokenV2, 0}, false)
	return nil
}

// failureLimiter counts failed client authentications per client id in a
// token bucket: max failures, refilled over window. It is in memory: each
// replica counts its own.
type failureLimiter struct {
	mu      sync.Mutex
	max     float64
	window  time.Duration
	buckets map[string]*failureBucket
}

type failureBucket struct {
	tokens float64
	at     time.Time
}

// bucket returns key's bucket refilled to now; nil when key has none.
// l.mu is held.
func (l *failureLimiter) bucket(key string, now time.Time) *failureBucket {
	b := l.buckets[key]
	if b == nil {
		return nil
	}
	if d := now.Sub(b.at); d > 0 {
		b.tokens = math.Min(l.max, b.tokens+l.max*d.Seconds()/l.window.Seconds())
		b.at = now
	}
	return b
}

// wait returns how long key must wait before its next attempt; 0 when it
// may try now.
func (l *failureLimiter) wait(key string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.bucket(l.key(key), now)
	if b == nil || b.tokens >= 1 {
		return 0
	}
	return time.Duration((1 - b.tokens) / l.max * float64(l.window))
}

// fail counts a failed attempt of key.
func (l *failureLimiter) fail(key string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buckets == nil {
		l.buckets = make(map[string]*failureBucket)
	}
	if _, ok := l.buckets[key]; !ok && len(l.buckets) >= failureTrackLimit {
		l.prune(now)
	}
	k := l.key(key)
	b := l.bucket(k, now)
	if b == nil {
		b = &failureBucket{tokens: l.max, at: now}
		l.buckets[k] = b
	}
	b.tokens = math.Max(0, b.tokens-1)
}

// key is the bucket of client id: its own when tracked or when there is
// room, the shared overflow bucket "" otherwise. l.mu is held.
func (l *failureLimiter) key(id string) string {
	if _, ok := l.buckets[id]; ok || len(l.buckets) < failureTrackLimit {
		return id
	}
	return ""
}

// prune drops the buckets that have refilled: their failures are forgotten.
func (l *failureLimiter) prune(now time.Time) {
	for k := range l.buckets {
		if b := l.bucket(k, now); b.tokens >= l.max {
			delete(l.buckets, k)
		}
	}
}
