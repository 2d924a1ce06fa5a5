package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/certinv/certinv"
)

// failingLimiter is a limiter whose store is down.
type failingLimiter struct {
	err   error
	calls int
}

func (l *failingLimiter) Allow(context.Context, string, time.Time) (bool, time.Duration, error) {
	l.calls++
	return false, 0, l.err
}

func TestRateLimiterDown(t *testing.T) {
	const cause = "dial tcp 10.1.2.3:6379: connection refused"
	unavailable := fmt.Errorf("redis: %w: %w",
		certinv.Errorf(certinv.EUnavailable, "rate limits cannot be checked right now (the rate limit store is unavailable); try again later"),
		errors.New(cause))
	for _, tc := range []struct {
		name       string
		err        error
		failOpen   bool
		wantStatus int
		wantMsg    string
	}{
		{"closed, store unavailable", unavailable, false, http.StatusServiceUnavailable, "rate limit store is unavailable); try again in 5 seconds"},
		{"closed, other failure", errors.New(cause), false, http.StatusServiceUnavailable, "rate limits cannot be checked right now"},
		{"open", unavailable, true, http.StatusOK, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := &failingLimiter{err: tc.err}
			e := newEnv(t, func(c *Config) {
				c.PagesLimit = &RateLimit{Limiter: l, Describe: "30 calls a minute", FailOpen: tc.failOpen}
			})
			e.addDevices(0, 2, 2, groupByThree)
			e.build()
			tok := e.reader()
			for i := range 3 {
				w := e.do("GET", PathPages+"?pageSize=1", tok, nil)
				if tc.wantStatus == http.StatusOK {
					if w.Code != http.StatusOK {
						t.Fatalf("call %d with the limiter down, failing open = %d, want 200: %s", i, w.Code, w.Body)
					}
					continue
				}
				b := wantError(t, w, tc.wantStatus, "ServiceUnavailable", tc.wantMsg)
				if got := w.Header().Get("Retry-After"); got != "5" {
					t.Errorf("Retry-After = %q, want 5", got)
				}
				if strings.Contains(b.Error.Message, "10.1.2.3") || strings.Contains(w.Body.String(), "connection refused") {
					t.Errorf("503 body shows the cause: %s", w.Body)
				}
			}
			if l.calls != 3 {
				t.Errorf("limiter asked %d times, want 3", l.calls)
			}
			// Logged once for the three failures, with the cause.
			if n := strings.Count(e.logs.String(), "rate limiter failed"); n != 1 {
				t.Errorf("limiter failure logged %d times for 3 calls within a minute, want 1:\n%s", n, e.logs)
			}
			if !strings.Contains(e.logs.String(), cause) {
				t.Errorf("log does not hold the cause %q", cause)
			}
			// A minute later it is logged again, with how many were left out.
			e.clock.Add(time.Minute)
			e.do("GET", PathPages+"?pageSize=1", tok, nil)
			if n := strings.Count(e.logs.String(), "rate limiter failed"); n != 2 || !strings.Contains(e.logs.String(), "failures_not_logged=2") {
				t.Errorf("a minute later: failure logged %d times (want 2), with failures_not_logged=2:\n%s", n, e.logs)
			}
		})
	}
}

func TestReadyz(t *testing.T) {
	ok := func(details map[string]any) func(context.Context) (map[string]any, error) {
		return func(context.Context) (map[string]any, error) { return details, nil }
	}
	failing := func(err error) func(context.Context) (map[string]any, error) {
		return func(context.Context) (map[string]any, error) { return nil, err }
	}
	const secret = "postgres://certinv:hunter2@db.internal:5432/certinv"
	for _, tc := range []struct {
		name   string
		checks []ReadinessCheck
		status int
		want   map[string]string // check -> status
		msg    map[string]string // check -> message part
	}{
		{
			name: "all ok",
			checks: []ReadinessCheck{
				{Name: "database", Check: ok(map[string]any{"kind": "postgres"})},
				{Name: "blobStorage", Check: ok(nil)},
			},
			status: http.StatusOK,
			want:   map[string]string{"database": "ok", "blobStorage": "ok"},
		},
		{
			name: "database down",
			checks: []ReadinessCheck{
				{Name: "database", Check: failing(fmt.Errorf("ping %s: %w", secret, errors.New("connection refused")))},
				{Name: "blobStorage", Check: ok(nil)},
			},
			status: http.StatusServiceUnavailable,
			want:   map[string]string{"database": "failed", "blobStorage": "ok"},
			msg:    map[string]string{"database": "the server's log has the cause"},
		},
		{
			name: "optional down",
			checks: []ReadinessCheck{
				{Name: "database", Check: ok(nil)},
				{Name: "redis", Optional: true, Check: failing(certinv.Errorf(certinv.EUnavailable, "Redis does not answer"))},
			},
			status: http.StatusOK,
			want:   map[string]string{"database": "ok", "redis": "degraded"},
			msg:    map[string]string{"redis": "Redis does not answer"},
		},
		{
			name: "check past its deadline",
			checks: []ReadinessCheck{
				{Name: "slow", Check: func(ctx context.Context) (map[string]any, error) { <-ctx.Done(); return nil, nil }},
			},
			status: http.StatusServiceUnavailable,
			want:   map[string]string{"slow": "failed"},
			msg:    map[string]string{"slow": "no answer within"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.Readiness = tc.checks })
			w := e.do("GET", "/readyz", "", nil)
			if w.Code != tc.status {
				t.Errorf("GET /readyz = %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			if strings.Contains(w.Body.String(), "hunter2") || strings.Contains(w.Body.String(), "db.internal") {
				t.Errorf("/readyz shows a secret or a host: %s", w.Body)
			}
			var got Readiness
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatalf("GET /readyz body %s: %v", w.Body, err)
			}
			wantOverall := "ready"
			if tc.status != http.StatusOK {
				wantOverall = "unready"
			}
			if got.Status != wantOverall {
				t.Errorf("status = %q, want %q", got.Status, wantOverall)
			}
			if len(got.Checks) != len(tc.want) {
				t.Errorf("checks = %v, want %d of them", got.Checks, len(tc.want))
			}
			for name, st := range tc.want {
				if got.Checks[name].Status != st {
					t.Errorf("check %s = %+v, want status %s", name, got.Checks[name], st)
				}
				if m := tc.msg[name]; !strings.Contains(got.Checks[name].Message, m) {
					t.Errorf("check %s message = %q, want it to contain %q", name, got.Checks[name].Message, m)
				}
			}
		})
	}
}

// TestReadyzDefaultSnapshot: with no checks configured, /readyz reports the
// latest snapshot, as /healthz does, with its age.
func TestReadyzDefaultSnapshot(t *testing.T) {
	e := newEnv(t)
	if w := e.do("GET", "/readyz", "", nil); w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "no snapshot is published yet") {
		t.Errorf("GET /readyz before any snapshot = %d %s, want 503 saying no snapshot", w.Code, w.Body)
	}
	e.addDevices(0, 2, 2, groupByThree)
	snap := e.build()
	e.clock.Add(90 * time.Second)
	w := e.do("GET", "/readyz", "", nil)
	var got Readiness
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || w.Code != http.StatusOK {
		t.Fatalf("GET /readyz = %d %s (%v), want 200", w.Code, w.Body, err)
	}
	d := got.Checks["snapshot"].Details
	if d["id"] != snap.ID || d["ageSeconds"] != float64(90) || d["records"] != float64(snap.Records) {
		t.Errorf("snapshot details = %v, want id %s, ageSeconds 90, records %d", d, snap.ID, snap.Records)
	}
}
