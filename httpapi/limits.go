package httpapi

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/certinv/certinv"
)

// Limiter decides whether a call of key at now is allowed, and if not, how
// long until one will be; *ratelimit.Memory is one. err is a failure of the
// limiter itself.
type Limiter interface {
	Allow(ctx context.Context, key string, now time.Time) (ok bool, retryAfter time.Duration, err error)
}

// RateLimit limits one endpoint's calls per application and tenant (the key
// is the token's tid and its appid or azp), as the contract says.
type RateLimit struct {
	Limiter Limiter
	// Describe is the limit in words, for the refusal's message: "30 calls
	// a minute and 1000 an hour".
	Describe string
	// FailOpen lets calls through, unlimited, when the Limiter fails (a
	// shared store that is down). By default such a call is refused with
	// 503 ServiceUnavailable and Retry-After: an API without limits is one
	// that any client can exhaust.
	FailOpen bool

	// The limiter's failures are logged at most once a minute.
	logMu      sync.Mutex
	lastLog    time.Time
	suppressed int
}

// LimiterRetryAfter is the Retry-After, in seconds, of a call refused
// because the limiter failed: a store that is down usually comes back (or
// fails over) within seconds.
const LimiterRetryAfter = 5

// logFailure logs a failure of the limiter: the first, then at most one a
// minute with the number left out meanwhile, so that a store that is down
// does not flood the log with one line per call.
func (rl *RateLimit) logFailure(ctx context.Context, s *Server, now time.Time, err error) {
	rl.logMu.Lock()
	if !rl.lastLog.IsZero() && now.Sub(rl.lastLog) >= 0 && now.Sub(rl.lastLog) < time.Minute {
		rl.suppressed++
		rl.logMu.Unlock()
		return
	}
	suppressed := rl.suppressed
	rl.lastLog, rl.suppressed = now, 0
	rl.logMu.Unlock()
	msg := "rate limiter failed: calls are refused with 503 until it answers"
	if rl.FailOpen {
		msg = "rate limiter failed: calls are let through without limits (fail open) until it answers"
	}
	s.log.ErrorContext(ctx, msg, "request_id", requestID(ctx), "err", err, "failures_not_logged", suppressed)
}

// The contract's limits, per application and tenant.
const (
	DefaultPagesPerMinute  = 30
	DefaultPagesPerHour    = 1000
	DefaultExportPerMinute = 5
	DefaultExportPerHour   = 20
)

// rateLimitError is a 429 answer, or a 503 when the limiter failed: it
// carries Retry-After.
type rateLimitError struct {
	err  *certinv.Error
	secs int
}

func (e *rateLimitError) Error() string   { return e.err.Error() }
func (e *rateLimitError) Unwrap() error   { return e.err }
func (e *rateLimitError) RetryAfter() int { return e.secs }

// rateLimitFor returns the limit of a route (by lower-case path), or nil.
func (s *Server) rateLimitFor(lowerPath string) (*RateLimit, string) {
	switch lowerPath {
	case strings.ToLower(PathPages):
		return s.cfg.PagesLimit, "CertificateAssessmentByMachine"
	case strings.ToLower(PathExport):
		return s.cfg.ExportLimit, "CertificateAssessmentExport"
	}
	return nil, ""
}

// limit counts a call of a rate-limited route against its caller's
// application and tenant, and refuses it with 429 TooManyRequests when the
// limit is reached. It authenticates the caller to know the key (an
// unauthenticated call is refused as the handler would refuse it, and is
// not counted) and remembers the principal in the returned request, so the
// handler does not verify the token again. Downloads of export files are
// not limited. A failure of the limiter lets the call through: a limiter
// that is down must not take the API down with it; it is logged as an error.
func (s *Server) limit(r *http.Request, lowerPath string) (*http.Request, error) {
	rl, endpoint := s.rateLimitFor(lowerPath)
	if rl == nil || rl.Limiter == nil {
		return r, nil
	}
	token, err := bearer(r)
	if err != nil {
		return r, err
	}
	ctx := r.Context()
	p, err := s.cfg.Verifier.Verify(ctx, token)
	if err != nil {
		return r, err
	}
	r = r.WithContext(context.WithValue(ctx, principalMemoKey{}, &principalMemo{token: token, p: p}))
	if !p.CanReadVulnerabilities() {
		return r, nil // the handler refuses it with 403; not counted
	}
	app := p.AppID
	if app == "" {
		app = "oid:" + p.ObjectID
	}
	key := endpoint + "\x00" + p.TenantID + "\x00" + app
	now := s.now()
	ok, wait, err := rl.Limiter.Allow(ctx, key, now)
	if err != nil {
		if ctx.Err() != nil {
			return r, ctx.Err() // the client went away: nothing to answer
		}
		rl.logFailure(ctx, s, now, err)
		if rl.FailOpen {
			return r, nil
		}
		return r, limiterUnavailable(err)
	}
	if ok {
		return r, nil
	}
	secs := retryAfterSeconds(wait)
	return r, &rateLimitError{
		err: certinv.Errorf(certinv.ETooManyRequest,
			"the application %s of tenant %s reached the rate limit of %s (%s per application and tenant); try again in %d seconds",
			truncate(app, 64), truncate(p.TenantID, 64), endpoint, rl.Describe, secs),
		secs: secs,
	}
}

// limiterUnavailable is the 503 answer to a call whose limit cannot be
// checked. The limiter's own client-safe message (kind EUnavailable) is
// kept; any other failure gets a general one. The cause is logged, not shown.
func limiterUnavailable(err error) error {
	msg := "rate limits cannot be checked right now (the rate limit store is unavailable)"
	if certinv.KindOf(err) == certinv.EUnavailable {
		msg = strings.TrimSuffix(certinv.MessageOf(err), "; try again later")
	}
	return &rateLimitError{
		err:  certinv.Errorf(certinv.EUnavailable, "%s; try again in %d seconds", msg, LimiterRetryAfter),
		secs: LimiterRetryAfter,
	}
}

// retryAfterSeconds rounds a wait up to whole seconds, at least 1: a call
// made after that many seconds succeeds.
func retryAfterSeconds(d time.Duration) int {
	return max(int((d+time.Second-1)/time.Second), 1)
}

// principalMemo is a token verified earlier in the same request.
type principalMemo struct {
	token string
	p     *certinv.Principal
}

type principalMemoKey struct{}

// memoVerifier answers a token verified earlier in the same request from
// the request's memo, and asks the next verifier otherwise.
type memoVerifier struct{ next TokenVerifier }

func (v memoVerifier) Verify(ctx context.Context, token string) (*certinv.Principal, error) {
	if m, ok := ctx.Value(principalMemoKey{}).(*principalMemo); ok && m.token == token {
		return m.p, nil
	}
	return v.next.Verify(ctx, token)
}
