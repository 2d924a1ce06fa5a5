package redis_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"os"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/certinv/certinv"
	"github.com/certinv/certinv/ratelimit"
	"github.com/certinv/certinv/ratelimit/ratelimittest"
	"github.com/certinv/certinv/ratelimit/redis"
)

// testTimeout is generous: the machine is shared, and a test that hits it
// fails rather than passes.
const testTimeout = 5 * time.Second

// testURL returns the Redis the tests run against; there is no fallback.
func testURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv("CERTINV_TEST_REDIS")
	if u == "" {
		tb.Fatal("CERTINV_TEST_REDIS is not set: start the test services with `bash scripts/services.sh start`, " +
			"then `set -a; . /var/tmp/certinv-services/env; set +a` (or source scripts/services.sh), and run the tests again")
	}
	return u
}

// testClient returns a new client of the test Redis (a replica's own).
func testClient(tb testing.TB) *goredis.Client {
	tb.Helper()
	c, err := redis.NewClient(testURL(tb), testTimeout)
	if err != nil {
		tb.Fatalf("NewClient: %v", err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// testPrefix returns a prefix of this test alone, whose keys are deleted
// when the test ends, so tests share the developer's Redis without traces.
func testPrefix(tb testing.TB, c *goredis.Client) string {
	tb.Helper()
	var b [8]byte
	rand.Read(b[:])
	prefix := "certinv:test:ratelimit:" + hex.EncodeToString(b[:]) + ":"
	tb.Cleanup(func() {
		ctx := context.Background()
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if err := iter.Err(); err != nil {
			tb.Errorf("scan %s*: %v", prefix, err)
			return
		}
		if len(keys) > 0 {
			if err := c.Del(ctx, keys...).Err(); err != nil {
				tb.Errorf("delete %d keys of %s: %v", len(keys), prefix, err)
			}
		}
	})
	return prefix
}

func newLimiter(tb testing.TB, c goredis.UniversalClient, opts redis.Options, rates ...ratelimit.Rate) *redis.Limiter {
	tb.Helper()
	if opts.Timeout == 0 {
		opts.Timeout = testTimeout
	}
	l, err := redis.New(c, opts, rates...)
	if err != nil {
		tb.Fatalf("New(%v): %v", rates, err)
	}
	return l
}

var t0 = time.Date(2026, 12, 3, 15, 0, 17, 250_000_000, time.UTC)

func TestContract(t *testing.T) {
	c := testClient(t)
	prefix := testPrefix(t, c)
	ratelimittest.Run(t, func(t *testing.T, rates ...ratelimit.Rate) ratelimit.Limiter {
		return newLimiter(t, c, redis.Options{Prefix: prefix}, rates...)
	})
}

// TestTwoReplicas: two limiters with their own clients, as two replicas of
// the server, share one limit of 30 calls a minute.
func TestTwoReplicas(t *testing.T) {
	rates := []ratelimit.Rate{{Limit: 30, Period: time.Minute}, {Limit: 1000, Period: time.Hour}}
	ca, cb := testClient(t), testClient(t)
	prefix := testPrefix(t, ca)
	a := newLimiter(t, ca, redis.Options{Prefix: prefix}, rates...)
	b := newLimiter(t, cb, redis.Options{Prefix: prefix}, rates...)
	replicas := []*redis.Limiter{a, b}
	ctx := context.Background()

	t.Run("Alternating", func(t *testing.T) {
		const key = "CertificateAssessmentByMachine\x00tenant\x00app-alternating"
		// 120 calls in a minute, every 500ms, alternately on each replica.
		allowed := [2]int{}
		for i := range 120 {
			at := t0.Add(time.Duration(i) * 500 * time.Millisecond)
			ok, ra, err := replicas[i%2].Allow(ctx, key, at)
			if err != nil {
				t.Fatalf("call %d: %v", i+1, err)
			}
			if ok {
				allowed[i%2]++
				if i >= 30 {
					t.Errorf("call %d at +%v allowed, want only the first 30 of the minute", i+1, at.Sub(t0))
				}
				continue
			}
			// Refused: the first call (at t0, on replica a) leaves the
			// window at t0+1m, whichever replica is asked.
			if want := t0.Add(time.Minute).Sub(at); ra != want {
				t.Errorf("call %d at +%v on replica %d: retryAfter %v, want %v", i+1, at.Sub(t0), i%2, ra, want)
			}
		}
		if got := allowed[0] + allowed[1]; got != 30 {
			t.Errorf("two replicas allowed %d calls in a minute (%d and %d), want 30", got, allowed[0], allowed[1])
		}
		// At t0+1m the first call left the window: replica b has room for one.
		if ok, _, err := b.Allow(ctx, key, t0.Add(time.Minute)); err != nil || !ok {
			t.Errorf("b.Allow at t0+1m = %v, %v; want allowed (a's first call left the window)", ok, err)
		}
		if ok, ra, err := a.Allow(ctx, key, t0.Add(time.Minute)); err != nil || ok || ra != 500*time.Millisecond {
			t.Errorf("a.Allow at t0+1m after b's = %v, %v, %v; want refused with 500ms", ok, ra, err)
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		const key = "CertificateAssessmentByMachine\x00tenant\x00app-concurrent"
		// burst makes 200 calls at once, 100 on each replica, at times
		// spread over 100ms from start, and returns how many passed.
		burst := func(start time.Time) int {
			var wg sync.WaitGroup
			var mu sync.Mutex
			passed := 0
			for i := range 200 {
				wg.Go(func() {
					ok, _, err := replicas[i%2].Allow(ctx, key, start.Add(time.Duration(i)*500*time.Microsecond))
					if err != nil {
						t.Errorf("Allow: %v", err)
					}
					if ok {
						mu.Lock()
						passed++
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			return passed
		}
		if n := burst(t0); n != 30 {
			t.Errorf("%d of 200 concurrent calls on two replicas passed, want 30", n)
		}
		if n := burst(t0.Add(30 * time.Second)); n != 0 {
			t.Errorf("%d of 200 concurrent calls half a minute later passed, want 0", n)
		}
		// A minute after the last allowed call (at most t0+100ms) all left.
		if n := burst(t0.Add(time.Minute + 100*time.Millisecond)); n != 30 {
			t.Errorf("%d of 200 concurrent calls a minute later passed, want 30", n)
		}
	})
}

// TestMatchesMemory runs one random sequence of calls, with clocks that go
// back as unsynchronized replicas' do, through Memory and through Redis:
// every answer must be the same, to the nanosecond.
func TestMatchesMemory(t *testing.T) {
	rates := []ratelimit.Rate{{Limit: 3, Period: 10 * time.Second}, {Limit: 7, Period: time.Minute}, {Limit: 20, Period: time.Hour}}
	c := testClient(t)
	l := newLimiter(t, c, redis.Options{Prefix: testPrefix(t, c)}, rates...)
	m, err := ratelimit.NewMemory(rates...)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rng := mrand.New(mrand.NewPCG(1, 2))
	keys := []string{"a", "b", "c"}
	now := t0
	for i := range 3000 {
		// Mostly forward by up to 20s, at nanosecond resolution; sometimes
		// back by up to 5s.
		if rng.IntN(10) == 0 {
			now = now.Add(-time.Duration(rng.Int64N(int64(5 * time.Second))))
		} else {
			now = now.Add(time.Duration(rng.Int64N(int64(20 * time.Second))))
		}
		k := keys[rng.IntN(len(keys))]
		wantOK, wantRA, _ := m.Allow(ctx, k, now)
		ok, ra, err := l.Allow(ctx, k, now)
		if err != nil {
			t.Fatalf("call %d: Allow(%q, %v): %v", i, k, now, err)
		}
		if ok != wantOK || ra != wantRA {
			t.Fatalf("call %d: Allow(%q, %v) = %v, %v; Memory says %v, %v", i, k, now, ok, ra, wantOK, wantRA)
		}
	}
}

// TestKeys: the caller's key never reaches Redis's key space as is, every
// key lives under the prefix, expires, and holds at most the largest Limit.
func TestKeys(t *testing.T) {
	c := testClient(t)
	prefix := testPrefix(t, c)
	rates := []ratelimit.Rate{{Limit: 2, Period: time.Second}, {Limit: 5, Period: time.Minute}}
	l := newLimiter(t, c, redis.Options{Prefix: prefix}, rates...)
	ctx := context.Background()

	t.Run("Hashed", func(t *testing.T) {
		shape := regexp.MustCompile("^" + regexp.QuoteMeta(prefix) + "[0-9a-f]{32}$")
		seen := map[string]string{}
		for _, k := range []string{"", "tenant\x00app", "tenant\x00app2", "*", "{tag}x", "a:b", "a\r\nDEL *", strings.Repeat("k", 10_000), prefix} {
			rk := l.RedisKey(k)
			if !shape.MatchString(rk) {
				t.Errorf("RedisKey(%.40q) = %q, want %q and 32 hex digits", k, rk, prefix)
			}
			if other, ok := seen[rk]; ok {
				t.Errorf("RedisKey(%.40q) = RedisKey(%.40q) = %q, want apart", k, other, rk)
			}
			seen[rk] = k
		}
		d, err := redis.New(c, redis.Options{}, rates...)
		if err != nil {
			t.Fatal(err)
		}
		if rk := d.RedisKey("x"); !strings.HasPrefix(rk, redis.DefaultPrefix) {
			t.Errorf("RedisKey with the default prefix = %q, want it under %q", rk, redis.DefaultPrefix)
		}
	})

	t.Run("Bounded", func(t *testing.T) {
		const key = "tenant\x00app*{x}"
		// Every 13 seconds: room in both windows each time, 40 allowed.
		for i := range 40 {
			at := t0.Add(time.Duration(i) * 13 * time.Second)
			if ok, _, err := l.Allow(ctx, key, at); err != nil || !ok {
				t.Fatalf("call %d at +%v = %v, %v; want allowed", i+1, at.Sub(t0), ok, err)
			}
		}
		rk := l.RedisKey(key)
		if n, err := c.ZCard(ctx, rk).Result(); err != nil || n != 5 {
			t.Errorf("ZCARD %s = %d, %v; want 5 (the largest Limit)", rk, n, err)
		}
		ttl, err := c.PTTL(ctx, rk).Result()
		if err != nil || ttl <= 0 || ttl > time.Minute {
			t.Errorf("PTTL %s = %v, %v; want within (0, 1m]", rk, ttl, err)
		}
		if n, err := c.Exists(ctx, prefix+key, key).Result(); err != nil || n != 0 {
			t.Errorf("EXISTS of the raw key = %d, %v; want 0", n, err)
		}
	})

	t.Run("SameInstant", func(t *testing.T) {
		const key = "same-instant"
		// Two calls at the same nanosecond are two members.
		for i := range 2 {
			if ok, _, err := l.Allow(ctx, key, t0); err != nil || !ok {
				t.Fatalf("call %d at t0 = %v, %v; want allowed", i+1, ok, err)
			}
		}
		if n, err := c.ZCard(ctx, l.RedisKey(key)).Result(); err != nil || n != 2 {
			t.Errorf("ZCARD after two calls at one instant = %d, %v; want 2", n, err)
		}
	})

	t.Run("Before1970", func(t *testing.T) {
		if _, _, err := l.Allow(ctx, "x", time.Unix(-1, 0)); err == nil {
			t.Error("Allow at 1969 = nil error, want one")
		}
	})
}

// closedPort returns an address on which nothing listens.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// silentServer returns the address of a server that accepts connections
// and never answers: a Redis that hangs.
func silentServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

func TestUnavailable(t *testing.T) {
	rates := []ratelimit.Rate{{Limit: 30, Period: time.Minute}}
	for _, tc := range []struct {
		name  string
		addr  func(t *testing.T) string
		cause func(err error) bool
		want  string
	}{
		{"ClosedPort", closedPort, func(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }, "connection refused"},
		{"Silent", silentServer, func(err error) bool {
			var ne net.Error
			return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
		}, "a timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := redis.NewClient("redis://"+tc.addr(t)+"/0", 100*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ctx := context.Background()

			closed := newLimiter(t, c, redis.Options{Timeout: 100 * time.Millisecond}, rates...)
			ok, ra, err := closed.Allow(ctx, "app", t0)
			if ok || ra != 0 || err == nil {
				t.Fatalf("Allow (fail closed) = %v, %v, %v; want refused with an error", ok, ra, err)
			}
			if !errors.Is(err, redis.ErrUnavailable) || certinv.KindOf(err) != certinv.EUnavailable {
				t.Errorf("Allow error %v (kind %s), want one wrapping ErrUnavailable of kind %s", err, certinv.KindOf(err), certinv.EUnavailable)
			}
			if msg := certinv.MessageOf(err); msg != redis.ErrUnavailable.Message {
				t.Errorf("MessageOf(%v) = %q, want %q", err, msg, redis.ErrUnavailable.Message)
			}
			if !tc.cause(err) {
				t.Errorf("Allow error %v, want it to wrap %s", err, tc.want)
			}
			if err := closed.Ping(ctx); !errors.Is(err, redis.ErrUnavailable) || !tc.cause(err) {
				t.Errorf("Ping = %v, want an error wrapping ErrUnavailable and %s", err, tc.want)
			}

			var logs bytes.Buffer
			open := newLimiter(t, c, redis.Options{Timeout: 100 * time.Millisecond, FailOpen: true,
				Log: slog.New(slog.NewTextHandler(&logs, nil))}, rates...)
			// 10 calls over 45 seconds: all let through, one failure logged.
			for i := range 10 {
				at := t0.Add(time.Duration(i) * 5 * time.Second)
				if ok, ra, err := open.Allow(ctx, "app", at); !ok || ra != 0 || err != nil {
					t.Fatalf("Allow (fail open) call %d = %v, %v, %v; want allowed", i+1, ok, ra, err)
				}
			}
			if n := strings.Count(logs.String(), "rate limits not enforced"); n != 1 {
				t.Errorf("fail-open logged %d times in a minute, want 1:\n%s", n, logs.String())
			}
			if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "failures_not_logged=0") {
				t.Errorf("first fail-open log = %q, want an ERROR with failures_not_logged=0", logs.String())
			}
			if ok, _, err := open.Allow(ctx, "app", t0.Add(time.Minute)); !ok || err != nil {
				t.Fatalf("Allow (fail open) a minute later = %v, %v; want allowed", ok, err)
			}
			if !strings.Contains(logs.String(), "failures_not_logged=9") {
				t.Errorf("second fail-open log = %q, want failures_not_logged=9", logs.String())
			}

			// A caller that gave up is not Redis's failure, and not let through.
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			if ok, _, err := open.Allow(cctx, "app", t0); ok || err == nil || errors.Is(err, redis.ErrUnavailable) {
				t.Errorf("Allow (fail open) with a cancelled context = %v, %v; want refused with an error not ErrUnavailable", ok, err)
			}
		})
	}
}

func TestNewRefuses(t *testing.T) {
	c, err := redis.NewClient("redis://127.0.0.1:1/0", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	minute := ratelimit.Rate{Limit: 30, Period: time.Minute}
	for _, tc := range []struct {
		name   string
		client goredis.UniversalClient
		opts   redis.Options
		rates  []ratelimit.Rate
	}{
		{"NoClient", nil, redis.Options{}, []ratelimit.Rate{minute}},
		{"NoRates", c, redis.Options{}, nil},
		{"ZeroLimit", c, redis.Options{}, []ratelimit.Rate{{Limit: 0, Period: time.Minute}}},
		{"PeriodTooLong", c, redis.Options{}, []ratelimit.Rate{minute, {Limit: 1, Period: redis.MaxPeriod + time.Second}}},
		{"NegativeTimeout", c, redis.Options{Timeout: -time.Second}, []ratelimit.Rate{minute}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := redis.New(tc.client, tc.opts, tc.rates...); err == nil {
				t.Errorf("New(%v, %+v, %v) = nil error, want one", tc.client, tc.opts, tc.rates)
			}
		})
	}
}

func TestNewClient(t *testing.T) {
	for _, tc := range []struct {
		url     string
		wantErr bool
	}{
		{"redis://127.0.0.1:6379/0", false},
		{"rediss://user:pw@redis.example:6380/2", false},
		{"http://127.0.0.1:6379", true},
		{"redis://user:s3cret@[::1/0", true},
	} {
		c, err := redis.NewClient(tc.url, 0)
		if (err != nil) != tc.wantErr {
			t.Errorf("NewClient(%q) error = %v, want error %v", tc.url, err, tc.wantErr)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("NewClient(%q) error = %v, want the password left out", tc.url, err)
		}
		if c != nil {
			if o := c.Options(); !o.ContextTimeoutEnabled || o.ReadTimeout != redis.DefaultTimeout || o.DialTimeout != redis.DefaultTimeout {
				t.Errorf("NewClient(%q) options: ContextTimeoutEnabled %v, ReadTimeout %v, DialTimeout %v; want true, %v, %v",
					tc.url, o.ContextTimeoutEnabled, o.ReadTimeout, o.DialTimeout, redis.DefaultTimeout, redis.DefaultTimeout)
			}
			c.Close()
		}
	}
}

// BenchmarkAllow measures one Allow against the test Redis (a round trip
// and one script run) beside a bare round trip (Ping): allowed calls on a full history (the largest Limit
// kept, one trimmed each call), refused calls, and allowed calls from many
// goroutines on their own keys. calls/s is the throughput.
func BenchmarkAllow(b *testing.B) {
	rates := []ratelimit.Rate{{Limit: 30, Period: time.Minute}, {Limit: 1000, Period: time.Hour}}
	c := testClient(b)
	l := newLimiter(b, c, redis.Options{Prefix: testPrefix(b, c)}, rates...)
	ctx := context.Background()
	report := func(b *testing.B) {
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
	}

	// Ping is the floor: one round trip, no script.
	b.Run("Ping", func(b *testing.B) {
		for b.Loop() {
			if err := l.Ping(ctx); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
	})
	b.Run("Allowed", func(b *testing.B) {
		i := 0
		for b.Loop() {
			i++
			// Every 4s: under both limits, always allowed.
			if ok, _, err := l.Allow(ctx, "bench/allowed", t0.Add(time.Duration(i)*4*time.Second)); err != nil || !ok {
				b.Fatalf("Allow = %v, %v; want allowed", ok, err)
			}
		}
		report(b)
	})
	b.Run("Refused", func(b *testing.B) {
		for range 30 {
			l.Allow(ctx, "bench/refused", t0)
		}
		for b.Loop() {
			if ok, _, err := l.Allow(ctx, "bench/refused", t0.Add(time.Second)); err != nil || ok {
				b.Fatalf("Allow = %v, %v; want refused", ok, err)
			}
		}
		report(b)
	})
	// Goroutines of every run of Parallel (one per b.N tried) take keys of
	// their own: a key reused with an earlier time would be refused.
	var mu sync.Mutex
	next := 0
	b.Run("Parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			mu.Lock()
			next++
			key := fmt.Sprintf("bench/parallel/%d", next)
			mu.Unlock()
			i := 0
			for pb.Next() {
				i++
				if ok, _, err := l.Allow(ctx, key, t0.Add(time.Duration(i)*4*time.Second)); err != nil || !ok {
					b.Errorf("Allow = %v, %v; want allowed", ok, err)
					return
				}
			}
		})
		report(b)
	})
}
