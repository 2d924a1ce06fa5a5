package httpapi

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certinv/certinv"
	"github.com/certinv/certinv/auth"
	"github.com/certinv/certinv/ratelimit"
)

// withContractLimits configures the contract's limits on in-memory limiters.
func withContractLimits(t testing.TB) envOption {
	return func(c *Config) {
		pages, err := ratelimit.NewMemory(ratelimit.Rate{Limit: DefaultPagesPerMinute, Period: time.Minute}, ratelimit.Rate{Limit: DefaultPagesPerHour, Period: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		export, err := ratelimit.NewMemory(ratelimit.Rate{Limit: DefaultExportPerMinute, Period: time.Minute}, ratelimit.Rate{Limit: DefaultExportPerHour, Period: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		c.PagesLimit = &RateLimit{Limiter: pages, Describe: "30 calls a minute and 1000 an hour"}
		c.ExportLimit = &RateLimit{Limiter: export, Describe: "5 calls a minute and 20 an hour"}
	}
}

func TestRateLimitPagesMinuteBoundary(t *testing.T) {
	e := newEnv(t, withContractLimits(t))
	e.addDevices(0, 3, 2, groupByThree)
	e.build()
	tok := e.reader()
	start := e.clock.Now()
	for i := range 30 {
		if w := e.do("GET", PathPages+"?pageSize=1", tok, nil); w.Code != http.StatusOK {
			t.Fatalf("call %d = %d, want 200: %s", i+1, w.Code, w.Body)
		}
		e.clock.Add(time.Second)
	}
	// 31st, 30s after the first: refused until the first leaves the minute.
	w := e.do("GET", PathPages+"?pageSize=1", tok, nil)
	b := wantError(t, w, http.StatusTooManyRequests, "TooManyRequests", "30 calls a minute and 1000 an hour")
	if got := w.Header().Get("Retry-After"); got != "30" {
		t.Errorf("Retry-After = %q, want 30", got)
	}
	if strings.Contains(w.Body.String(), `"value"`) || strings.Contains(w.Body.String(), "thumbprint") {
		t.Errorf("429 body leaks records: %s", w.Body)
	}
	if !strings.Contains(b.Error.Message, "try again in 30 seconds") {
		t.Errorf("message %q does not say when to try again", b.Error.Message)
	}
	// One nanosecond before the first call leaves the window: still 429, Retry-After 1.
	e.clock.Add(start.Add(time.Minute - time.Nanosecond).Sub(e.clock.Now()))
	w = e.do("GET", PathPages+"?pageSize=1", tok, nil)
	wantError(t, w, http.StatusTooManyRequests, "TooManyRequests", "rate limit")
	if got := w.Header().Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After 1ns before the boundary = %q, want 1", got)
	}
	e.clock.Add(time.Nanosecond)
	if w := e.do("GET", PathPages+"?pageSize=1", tok, nil); w.Code != http.StatusOK {
		t.Errorf("call at the boundary = %d, want 200: %s", w.Code, w.Body)
	}
	// The second call (at +1s) is still in the window.
	if w := e.do("GET", PathPages+"?pageSize=1", tok, nil); w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "1" {
		t.Errorf("second call at the boundary = %d Retry-After %q, want 429 and 1", w.Code, w.Header().Get("Retry-After"))
	}
}

func TestRateLimitCountsPerApplicationAndTenant(t *testing.T) {
	e := newEnv(t, withContractLimits(t))
	e.addDevices(0, 3, 2, groupByThree)
	e.build()
	a := e.appToken("app-a", certinv.RoleVulnerabilityReadAll)
	for range 30 {
		if w := e.do("GET", PathPages, a, nil); w.Code != http.StatusOK {
			t.Fatalf("app-a: %d %s", w.Code, w.Body)
		}
	}
	if w := e.do("GET", PathPages, a, nil); w.Code != http.StatusTooManyRequests {
		t.Fatalf("app-a call 31 = %d, want 429", w.Code)
	}
	// Another token of the same app and tenant shares the limit.
	if w := e.do("GET", PathPages, e.appToken("app-a", certinv.RoleVulnerabilityReadAll), nil); w.Code != http.StatusTooManyRequests {
		t.Errorf("app-a with a new token = %d, want 429", w.Code)
	}
	// Another app, and the same app in another tenant, do not.
	if w := e.do("GET", PathPages, e.appToken("app-b", certinv.RoleVulnerabilityReadAll), nil); w.Code != http.StatusOK {
		t.Errorf("app-b = %d, want 200", w.Code)
	}
	other, err := auth.NewIssuer(auth.IssuerConfig{Key: signingKey(), Issuer: testIssuer, TenantID: "99999999-2222-4333-8444-555555555555", Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := other.Issue(auth.Claims{Audience: auth.AudienceDefender, AppID: "app-a", Roles: []string{certinv.RoleVulnerabilityReadAll}})
	if err != nil {
		t.Fatal(err)
	}
	if w := e.do("GET", PathPages, tok, nil); w.Code != http.StatusOK {
		t.Errorf("app-a in another tenant = %d, want 200: %s", w.Code, w.Body)
	}
	// The export has its own limit.
	if w := e.do("GET", PathExport, a, nil); w.Code != http.StatusOK {
		t.Errorf("app-a export = %d, want 200", w.Code)
	}
}

func TestRateLimitExportHourAndDownloadsNotCounted(t *testing.T) {
	e := newEnv(t, withContractLimits(t))
	e.addDevices(0, 30, 3, groupByThree)
	e.build()
	tok := e.reader()
	start := e.clock.Now()
	var urls []string
	for i := range 20 {
		_, us := e.exportLines(tok) // downloads every file each time
		urls = us
		if i == 0 && len(us) < 2 {
			t.Fatalf("export has %d files, want several", len(us))
		}
		e.clock.Add(2 * time.Minute)
	}
	w := e.do("GET", PathExport, tok, nil)
	wantError(t, w, http.StatusTooManyRequests, "TooManyRequests", "5 calls a minute and 20 an hour")
	if got, want := w.Header().Get("Retry-After"), strconv.Itoa(int(start.Add(time.Hour).Sub(e.clock.Now())/time.Second)); got != want {
		t.Errorf("Retry-After of call 21 = %q, want %q (until the first call leaves the hour)", got, want)
	}
	if strings.Contains(w.Body.String(), "exportFiles") {
		t.Errorf("429 body leaks the file list: %s", w.Body)
	}
	// Downloads go on while the export is limited.
	for _, u := range urls {
		if d := e.do("GET", u, "", nil); d.Code != http.StatusOK {
			t.Errorf("download while limited = %d, want 200", d.Code)
		}
	}
	// The minute window of the export: 5, then 429 with the rest of the minute.
	e.clock.Add(time.Hour)
	tok = e.reader() // the first one expired
	for i := range 5 {
		if w := e.do("GET", PathExport, tok, nil); w.Code != http.StatusOK {
			t.Fatalf("export call %d after an hour = %d", i+1, w.Code)
		}
		e.clock.Add(time.Second)
	}
	if w := e.do("GET", PathExport, tok, nil); w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "55" {
		t.Errorf("export call 6 within a minute = %d Retry-After %q, want 429 and 55", w.Code, w.Header().Get("Retry-After"))
	}
}

func TestRateLimitRefusedCallsNotCounted(t *testing.T) {
	e := newEnv(t, withContractLimits(t))
	e.addDevices(0, 3, 2, groupByThree)
	e.build()
	noRole := e.appToken("app-a")
	for range 40 {
		wantError(t, e.do("GET", PathPages, "not-a-token", nil), http.StatusUnauthorized, "Unauthorized", "")
		wantError(t, e.do("GET", PathPages, noRole, nil), http.StatusForbidden, "Forbidden", certinv.RoleVulnerabilityReadAll)
	}
	tok := e.appToken("app-a", certinv.RoleVulnerabilityReadAll)
	for i := range 30 {
		if w := e.do("GET", PathPages, tok, nil); w.Code != http.StatusOK {
			t.Fatalf("call %d after refused calls = %d, want 200: %s", i+1, w.Code, w.Body)
		}
	}
}

// BenchmarkLimitedPage is a 1,000-record page with the rate limiter in the
// path, against BenchmarkPage1000 without it (bench_test.go shapes).
func BenchmarkLimitedPage(b *testing.B) {
	for _, limited := range []bool{false, true} {
		b.Run("limited="+strconv.FormatBool(limited), func(b *testing.B) {
			var opts []envOption
			if limited {
				opts = append(opts, func(c *Config) {
					m, _ := ratelimit.NewMemory(ratelimit.Rate{Limit: 1 << 30, Period: time.Minute})
					c.PagesLimit = &RateLimit{Limiter: m, Describe: "unlimited"}
				})
			}
			e := newEnv(b, opts...)
			e.addDevices(0, 100, 10, groupByThree)
			e.build()
			tok := e.reader()
			b.ResetTimer()
			for b.Loop() {
				if w := e.do("GET", PathPages+"?pageSize=1000", tok, nil); w.Code != http.StatusOK {
					b.Fatal(w.Code)
				}
			}
		})
	}
}
