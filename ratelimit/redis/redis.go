// Package redis counts certinv's rate limits in Redis, so that replicas of
// the server share them: two replicas together allow 30 JSON calls a minute
// per application and tenant, not 60.
//
// A Limiter implements ratelimit.Limiter with exactly the semantics of
// ratelimit.Memory (exact sliding windows over several Rates, refused calls
// not counted, Retry-After the time until a call succeeds) and passes the
// same contract suite, ratelimittest.Run. Each call is one Lua script run
// on the Redis server (EVALSHA, falling back to EVAL when the server does
// not know the script yet): it checks every window and records the call
// only when all of them allow it, so the decision is atomic across any
// number of replicas.
//
// # Storage
//
// A key's allowed calls are a sorted set at Prefix + hex(SHA-256(key))[:32]:
// the caller's key is hashed, so nothing it holds (tenant and application
// ids, NUL bytes, "*", "{...}") reaches Redis's key space, and every Redis
// key has the same short length. A member is the call's time in Unix
// nanoseconds, zero-padded to 19 digits, then ":" and an id unique to the
// call; its score is the time in microseconds. Equal scores sort by member,
// so the set is ordered by the exact nanosecond. The set keeps the newest
// calls up to the largest Limit (older ones can no longer fill any window)
// and expires the longest Period after its last allowed call: memory per
// active key is bounded by the largest Limit: measured with MEMORY USAGE,
// about 130 KB for the JSON pages' 1,000 an hour (some 134 bytes a call),
// 1.6 KB for 30 calls (Redis packs small sets).
//
// Limiters that count different things (JSON pages, the export) must use
// different keys or different prefixes: httpapi's keys name the endpoint.
//
// # Time
//
// The time of a call is the caller's now (the replica's clock), not Redis's
// TIME: the contract suite injects a clock, and a server's decisions stay
// testable. Replicas must therefore keep their clocks synchronized (NTP).
// As in Memory, time does not go back within a key: a call whose time is
// before the key's newest recorded call counts at that newest time. A
// replica whose clock is ahead by d makes the windows of the others up to d
// longer (stricter) and their Retry-After up to d too short; one whose
// clock is behind changes nothing but its own Retry-After.
//
// # Failures
//
// Each call has a deadline (Options.Timeout, 500ms by default). When Redis
// cannot answer in time (down, unreachable, refusing writes), Allow returns
// an error that wraps both ErrUnavailable (a *certinv.Error of kind
// certinv.EUnavailable, whose message is safe to show a client: a 503) and
// the cause. With Options.FailOpen, Allow instead allows the call and logs
// the failure (at most once a minute): serving without limits when Redis is
// down, which is not recommended.
//
// The package is named redis after the dependency it adapts, like postgres
// and azure; it imports go-redis as goredis.
package redis

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/certinv/certinv"
	"github.com/certinv/certinv/ratelimit"
)

// DefaultPrefix is the namespace of the limiter's keys in Redis.
const DefaultPrefix = "certinv:ratelimit:"

// DefaultTimeout is how long one Allow waits for Redis before it fails.
const DefaultTimeout = 500 * time.Millisecond

// MaxPeriod is the longest Period a Limiter accepts: the script computes
// waits in nanoseconds as Lua numbers (doubles), exact up to 2^53 ns (some
// 104 days).
const MaxPeriod = 100 * 24 * time.Hour

// ErrUnavailable is wrapped by every error of Allow and Ping that comes from
// Redis not answering. It is a *certinv.Error of kind certinv.EUnavailable
// (503 ServiceUnavailable), and its message is safe to show a client; the
// cause, wrapped beside it, is for the log. Test with errors.Is(err,
// ErrUnavailable) or certinv.KindOf(err) == certinv.EUnavailable.
var ErrUnavailable = certinv.Errorf(certinv.EUnavailable,
	"rate limits cannot be checked right now (the rate limit store is unavailable); try again later")

// Options configure a Limiter. The zero value is the default: keys under
// DefaultPrefix, a DefaultTimeout deadline, fail closed.
type Options struct {
	// Prefix namespaces the limiter's keys in Redis (DefaultPrefix when
	// empty).
	Prefix string

	// Timeout bounds each call to Redis (DefaultTimeout when zero). The
	// client should have ContextTimeoutEnabled set (NewClient does), or its
	// own read and write timeouts apply instead.
	Timeout time.Duration

	// FailOpen serves without limits when Redis is down (not recommended):
	// Allow then allows every call and logs the failure, at most once a
	// minute, instead of returning an error wrapping ErrUnavailable.
	FailOpen bool

	// Log receives the failures that FailOpen lets through (slog.Default()
	// when nil).
	Log *slog.Logger
}

// Limiter is a ratelimit.Limiter whose calls are counted in Redis, shared
// by every Limiter of the same rates, prefix and Redis server. It is safe
// for concurrent use.
type Limiter struct {
	client  goredis.UniversalClient
	prefix  string
	timeout time.Duration
	rates   []ratelimit.Rate
	log     *slog.Logger
	open    bool

	// args are the script's fixed arguments after the call's own: the
	// largest Limit, the expiry in milliseconds, then each window's Limit
	// and Period in nanoseconds.
	args []any

	// id makes call ids unique across replicas, seq within this one.
	id  string
	seq atomic.Uint64

	logMu      sync.Mutex
	lastLog    time.Time
	suppressed int
}

// allowScript is the atomic check-and-record of one call.
//
// KEYS[1]  the key's sorted set
// ARGV[1]  the call's time: Unix nanoseconds, 19 digits zero-padded
// ARGV[2]  the call's score: Unix microseconds
// ARGV[3]  the call's unique id
// ARGV[4]  how many calls to keep (the largest Limit)
// ARGV[5]  expiry in milliseconds (the longest Period)
// ARGV[6], ARGV[7], ...  each window's Limit and Period in nanoseconds
//
// It returns {1, 0} when the call is allowed (and recorded), {0, wait} with
// wait in nanoseconds when it is refused (and not recorded).
//
// Lua numbers are doubles: a 19-digit time is not exact in one, so times
// are split into seconds and nanoseconds, and only their differences (less
// than MaxPeriod) are computed as numbers. Time strings compare as strings
// (same width).
var allowScript = goredis.NewScript(`
local key = KEYS[1]
local t = ARGV[1]
local score = ARGV[2]
local newest = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
if newest[1] then
  local nt = string.sub(newest[1], 1, 19)
  if nt > t then
    t = nt
    score = newest[2]
  end
end
local ts = tonumber(string.sub(t, 1, 10))
local tn = tonumber(string.sub(t, 11, 19))
local n = redis.call('ZCARD', key)
local wait = 0
for i = 6, #ARGV, 2 do
  local limit = tonumber(ARGV[i])
  if n >= limit then
    local m = redis.call('ZRANGE', key, -limit, -limit)[1]
    local free = (tonumber(string.sub(m, 1, 10)) - ts) * 1000000000
      + (tonumber(string.sub(m, 11, 19)) - tn) + tonumber(ARGV[i + 1])
    if free > wait then
      wait = free
    end
  end
end
if wait > 0 then
  return {0, wait}
end
redis.call('ZADD', key, score, t .. ':' .. ARGV[3])
local keep = tonumber(ARGV[4])
if n + 1 > keep then
  redis.call('ZREMRANGEBYRANK', key, 0, n - keep)
end
redis.call('PEXPIRE', key, ARGV[5])
return {1, 0}
`)

// New returns a limiter of the given windows whose calls are counted
// through client. The rates are checked as ratelimit.CheckRates does, and
// no Period may exceed MaxPeriod. New does not contact Redis: Ping does.
func New(client goredis.UniversalClient, opts Options, rates ...ratelimit.Rate) (*Limiter, error) {
	if client == nil {
		return nil, errors.New("redis rate limiter: no client")
	}
	if err := ratelimit.CheckRates(rates); err != nil {
		return nil, err
	}
	var maxLimit int
	var maxPeriod time.Duration
	for _, r := range rates {
		if r.Period > MaxPeriod {
			return nil, fmt.Errorf("redis rate limiter: rate %v: want a period of at most %v", r, MaxPeriod)
		}
		maxLimit = max(maxLimit, r.Limit)
		maxPeriod = max(maxPeriod, r.Period)
	}
	if opts.Timeout < 0 {
		return nil, fmt.Errorf("redis rate limiter: timeout %v: want 0 (the default) or more", opts.Timeout)
	}
	l := &Limiter{
		client:  client,
		prefix:  opts.Prefix,
		timeout: opts.Timeout,
		rates:   append([]ratelimit.Rate(nil), rates...),
		log:     opts.Log,
		open:    opts.FailOpen,
	}
	if l.prefix == "" {
		l.prefix = DefaultPrefix
	}
	if l.timeout == 0 {
		l.timeout = DefaultTimeout
	}
	if l.log == nil {
		l.log = slog.Default()
	}
	expiryMS := int64((maxPeriod + time.Millisecond - 1) / time.Millisecond)
	l.args = []any{maxLimit, expiryMS}
	for _, r := range rates {
		l.args = append(l.args, r.Limit, int64(r.Period))
	}
	var id [6]byte
	_, _ = rand.Read(id[:]) // crypto/rand.Read does not fail
	l.id = hex.EncodeToString(id[:]) + "."
	return l, nil
}

// RedisKey returns the Redis key that holds the calls of a caller's key:
// the prefix and the first 128 bits of the key's SHA-256, in hex.
func (l *Limiter) RedisKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return l.prefix + hex.EncodeToString(sum[:16])
}

// Allow implements ratelimit.Limiter: it allows and records a call of key
// at now when every window has room, and otherwise returns how long until
// one will. An error wrapping ErrUnavailable means Redis did not answer
// within the timeout (never returned with FailOpen, which allows the call
// instead).
func (l *Limiter) Allow(ctx context.Context, key string, now time.Time) (bool, time.Duration, error) {
	ns := now.UnixNano()
	if ns < 0 {
		return false, 0, fmt.Errorf("redis rate limiter: time %v is before 1970", now)
	}
	args := make([]any, 0, 3+len(l.args))
	args = append(args,
		fmt.Sprintf("%019d", ns),
		strconv.FormatInt(ns/1000, 10),
		l.id+strconv.FormatUint(l.seq.Add(1), 36))
	args = append(args, l.args...)

	cctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	res, err := allowScript.Run(cctx, l.client, []string{l.RedisKey(key)}, args...).Int64Slice()
	if err == nil && len(res) != 2 {
		return false, 0, fmt.Errorf("redis rate limiter: script answered %v, want 2 integers", res)
	}
	if err != nil {
		if ctx.Err() != nil {
			// The caller gave up: not Redis's failure.
			return false, 0, fmt.Errorf("redis rate limiter: %w", err)
		}
		err = fmt.Errorf("redis rate limiter: %w: %w", ErrUnavailable, err)
		if l.open {
			l.logFailOpen(ctx, now, err)
			return true, 0, nil
		}
		return false, 0, err
	}
	if res[0] == 1 {
		return true, 0, nil
	}
	if res[1] <= 0 {
		return false, 0, fmt.Errorf("redis rate limiter: script refused with a wait of %d ns, want more than 0", res[1])
	}
	return false, time.Duration(res[1]), nil
}

// logFailOpen logs a failure let through by FailOpen: the first, then at
// most one a minute (of the callers' clock) with how many were not logged.
func (l *Limiter) logFailOpen(ctx context.Context, now time.Time, err error) {
	l.logMu.Lock()
	if !l.lastLog.IsZero() && now.Sub(l.lastLog) < time.Minute && now.Sub(l.lastLog) >= 0 {
		l.suppressed++
		l.logMu.Unlock()
		return
	}
	suppressed := l.suppressed
	l.lastLog, l.suppressed = now, 0
	l.logMu.Unlock()
	l.log.ErrorContext(ctx, "rate limits not enforced: Redis is unavailable and the limiter fails open",
		"err", err, "failures_not_logged", suppressed)
}

// Ping checks that Redis answers within the timeout, for a readiness
// check. Its error wraps ErrUnavailable and the cause.
func (l *Limiter) Ping(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	if err := l.client.Ping(cctx).Err(); err != nil {
		return fmt.Errorf("redis rate limiter: ping: %w: %w", ErrUnavailable, err)
	}
	return nil
}

// NewClient returns a go-redis client of a redis:// or rediss:// URL
// ("redis://[user:password@]host:port/db", go-redis's ParseURL, whose query
// parameters such as dial_timeout win), set for a rate limiter: context
// deadlines honoured, and dial, read, write and pool timeouts of timeout
// (DefaultTimeout when zero), at most one retry. It does not connect: the
// first call or Ping does. One client serves every Limiter of a process;
// close it when done.
func NewClient(rawURL string, timeout time.Duration) (*goredis.Client, error) {
	opt, err := goredis.ParseURL(rawURL)
	if err != nil {
		// A *url.Error repeats the URL, which may hold a password.
		if ue := (*url.Error)(nil); errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("redis rate limiter: redis URL: %w", err)
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	opt.ContextTimeoutEnabled = true
	for _, d := range []*time.Duration{&opt.DialTimeout, &opt.ReadTimeout, &opt.WriteTimeout, &opt.PoolTimeout} {
		if *d == 0 {
			*d = timeout
		}
	}
	// A retried script whose first answer was lost would count the call
	// twice: retry once (a connection gone stale), no more.
	if opt.MaxRetries == 0 {
		opt.MaxRetries = 1
	}
	if opt.DialerRetries == 0 {
		opt.DialerRetries = 1
	}
	return goredis.NewClient(opt), nil
}
