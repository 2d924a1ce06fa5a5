package agent

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certinv/certinv"
	"github.com/certinv/certinv/client"
	"github.com/certinv/certinv/client/servertest"
)

// fakeTime is the injected clock of a test: Sleep records the wait and
// moves the clock on by it, so nothing really waits.
type fakeTime struct {
	mu      sync.Mutex
	t       time.Time
	sleeps  []time.Duration
	onSleep func(n int, d time.Duration) // called with the sleep's number (from 1)
}

func newFakeTime() *fakeTime {
	return &fakeTime{t: time.Now().UTC().Add(-time.Hour).Truncate(time.Second)}
}

func (f *fakeTime) Now() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.t }
func (f *fakeTime) Add(d time.Duration) {
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.mu.Unlock()
}

func (f *fakeTime) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	f.sleeps = append(f.sleeps, d)
	f.t = f.t.Add(d)
	n, hook := len(f.sleeps), f.onSleep
	f.mu.Unlock()
	if hook != nil {
		hook(n, d)
	}
	return ctx.Err()
}

func (f *fakeTime) Sleeps() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.sleeps...)
}

// item is one certificate a fixed collector finds.
type item struct {
	path string
	der  []byte
}

// fixed returns a collector of the given items, counting its runs.
func fixed(items []item, runs *int) Collector {
	return func(ctx context.Context, found func(string, []byte) error, warn func(string, error)) error {
		*runs++
		for _, it := range items {
			if err := found(it.path, it.der); err != nil {
				return err
			}
		}
		return nil
	}
}

const testDevice = "0123456789abcdef0123456789abcdef01234567"

func newAgent(t testing.TB, url string, ft *fakeTime, collect Collector, logs *bytes.Buffer) *Agent {
	t.Helper()
	c, err := client.New(url, client.WithUserAgent("certinv-agent/test"))
	if err != nil {
		t.Fatal(err)
	}
	if logs == nil {
		logs = new(bytes.Buffer)
	}
	return &Agent{
		Client:  c,
		Secret:  servertest.Secret,
		Collect: collect,
		Device:  Identity{ID: testDevice, Name: "web1.corp.example", OS: "Ubuntu 24.04"},
		Group:   "Servers",
		Retry:   RetryPolicy{Attempts: 4, Base: time.Second, Max: time.Minute},
		Now:     ft.Now,
		Sleep:   ft.Sleep,
		Rand:    func() float64 { return 0 },
		Log:     slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

// items returns 3 certificates at 4 paths: the first at two paths, and the
// third twice at the same path (collected twice, reported once).
func threeAtFour(t *testing.T) []item {
	ders := servertest.Certificates(t, 3)
	return []item{
		{"/etc/ssl/certs/ca-certificates.crt", ders[0]},
		{"/etc/ssl/certs/ca-certificates.crt", ders[1]},
		{"/usr/share/ca-certificates/a.crt", ders[0]},
		{"/etc/nginx/site.pem", ders[2]},
		{"/etc/nginx/site.pem", ders[2]},
	}
}

// TestReportOnceHashesFirst reports twice to the real server: the first
// report names the certificates by hash, is told which the server lacks and
// sends their DER once each (2 requests); the second sends hashes only and
// is taken as unchanged (1 request).
func TestReportOnceHashesFirst(t *testing.T) {
	ctx := context.Background()
	ft := newFakeTime()
	srv := servertest.New(t, ft.Now)
	runs := 0
	logs := new(bytes.Buffer)
	a := newAgent(t, srv.URL, ft, fixed(threeAtFour(t), &runs), logs)

	out, err := a.ReportOnce(ctx)
	if err != nil {
		t.Fatalf("first ReportOnce() error = %v", err)
	}
	if out.Requests != 2 || out.SentDER != 3 || out.Certificates != 4 || out.Result.NewCertificates != 3 || out.Result.Stored != 4 || out.Result.Unchanged {
		t.Errorf("first ReportOnce() = %+v, result %+v; want 2 requests, 3 DER sent, 4 certificates, 3 new, 4 stored", out, out.Result)
	}
	if _, reports := srv.Requests(); reports != 2 {
		t.Errorf("server got %d reports, want 2", reports)
	}

	ft.Add(6 * time.Hour)
	srv.ResetCounters()
	out, err = a.ReportOnce(ctx)
	if err != nil {
		t.Fatalf("second ReportOnce() error = %v", err)
	}
	if out.Requests != 1 || out.SentDER != 0 || !out.Result.Unchanged || out.Result.Stored != 4 {
		t.Errorf("second ReportOnce() = %+v, result %+v; want 1 request, no DER, unchanged, 4 stored", out, out.Result)
	}
	if _, reports := srv.Requests(); reports != 1 {
		t.Errorf("server got %d reports, want 1", reports)
	}
	if runs != 2 {
		t.Errorf("collector ran %d times, want 2 (once per report)", runs)
	}
	paths, err := srv.Paths(ctx, testDevice)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"/etc/ssl/certs/ca-certificates.crt": 2, "/usr/share/ca-certificates/a.crt": 1, "/etc/nginx/site.pem": 1}
	if fmt.Sprint(paths) != fmt.Sprint(want) {
		t.Errorf("server holds %v, want %v", paths, want)
	}
	if strings.Contains(logs.String(), servertest.Secret) {
		t.Errorf("the agent's log holds the secret")
	}
}

// TestReportOnceOverBudget holds no DER between collection and upload: the
// certificates the server asks for are collected again.
func TestReportOnceOverBudget(t *testing.T) {
	ft := newFakeTime()
	srv := servertest.New(t, ft.Now)
	runs := 0
	a := newAgent(t, srv.URL, ft, fixed(threeAtFour(t), &runs), nil)
	a.MaxHeldDERBytes = 1
	out, err := a.ReportOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if runs != 2 || out.Requests != 2 || out.SentDER != 3 || out.Result.Stored != 4 {
		t.Errorf("ReportOnce() over budget = %+v after %d collections; want 2 collections, 2 requests, 3 DER, 4 stored", out, runs)
	}
}

// TestReportOnceCertificateGone drops a certificate whose file changed
// between the collection and the server's request for its DER.
func TestReportOnceCertificateGone(t *testing.T) {
	ft := newFakeTime()
	srv := servertest.New(t, ft.Now)
	ders := servertest.Certificates(t, 2)
	runs := 0
	collect := func(ctx context.Context, found func(string, []byte) error, warn func(string, error)) error {
		runs++
		if err := found("/a.pem", ders[0]); err != nil {
			return err
		}
		if runs == 1 {
			return found("/b.pem", ders[1])
		}
		return nil
	}
	a := newAgent(t, srv.URL, ft, collect, nil)
	a.MaxHeldDERBytes = 1
	out, err := a.ReportOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if out.Dropped != 1 || out.Result.Stored != 1 || out.Certificates != 1 {
		t.Errorf("ReportOnce() = %+v, result %+v; want 1 dropped, 1 stored", out, out.Result)
	}
}

// TestReportOnceServerDownThenUp starts with nothing listening, then a
// server that answers 503 with Retry-After, then the real one: the agent
// retries with backoff, honours Retry-After, and the report is taken.
func TestReportOnceServerDownThenUp(t *testing.T) {
	ft := newFakeTime()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // down: connections are refused
	srv := &servertest.Server{}
	ft.onSleep = func(n int, d time.Duration) {
		switch n {
		case 1: // up, but overloaded
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				t.Errorf("listen again on %s: %v", addr, err)
				return
			}
			srv.SetMode(servertest.Unavailable, 7)
			srv.Start(t, ln, ft.Now)
		case 2:
			srv.SetMode(servertest.Up, 0)
		}
	}
	runs := 0
	a := newAgent(t, "http://"+addr, ft, fixed(threeAtFour(t), &runs), nil)
	out, err := a.ReportOnce(context.Background())
	if err != nil {
		t.Fatalf("ReportOnce() error = %v", err)
	}
	// Rand is 0: the first wait is Base/2; the second would be Base, but the
	// server asked for 7s.
	want := []time.Duration{500 * time.Millisecond, 7 * time.Second}
	if got := ft.Sleeps(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("waits = %v, want %v", got, want)
	}
	if out.Requests != 4 || out.Result == nil || out.Result.Stored != 4 {
		t.Errorf("ReportOnce() = %+v; want 4 requests (refused, 503, hashes, DER) and 4 stored", out)
	}
}

// TestReportOnceGivesUp fails after Attempts tries of a server that cuts
// every connection, waiting longer each time.
func TestReportOnceGivesUp(t *testing.T) {
	ft := newFakeTime()
	srv := servertest.New(t, ft.Now)
	srv.SetMode(servertest.Cut, 0)
	runs := 0
	a := newAgent(t, srv.URL, ft, fixed(threeAtFour(t), &runs), nil)
	a.Rand = func() float64 { return 0.5 }
	out, err := a.ReportOnce(context.Background())
	if err == nil || out.Result != nil {
		t.Fatalf("ReportOnce() against a cutting server = %+v, %v; want an error", out, err)
	}
	if retry, _ := client.Retryable(err); !retry {
		t.Errorf("ReportOnce() error = %v, want the last (retryable) transport error in its chain", err)
	}
	want := []time.Duration{750 * time.Millisecond, 1500 * time.Millisecond, 3 * time.Second}
	if got := ft.Sleeps(); fmt.Sprint(got) != fmt.Sprint(want) || out.Requests != 4 {
		t.Errorf("waits = %v over %d requests, want %v over 4", got, out.Requests, want)
	}
}

// TestReportOnceStale: the device's clock went back; the server refuses
// the report, and the agent says so.
func TestReportOnceStale(t *testing.T) {
	ft := newFakeTime()
	srv := servertest.New(t, ft.Now)
	runs := 0
	logs := new(bytes.Buffer)
	a := newAgent(t, srv.URL, ft, fixed(threeAtFour(t), &runs), logs)
	if _, err := a.ReportOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	ft.Add(-time.Minute)
	out, err := a.ReportOnce(context.Background())
	if !errors.Is(err, ErrStale) || out.Requests != 1 {
		t.Errorf("ReportOnce() after the clock went back = %+v, %v; want ErrStale after 1 request", out, err)
	}
	if !strings.Contains(logs.String(), "clock gone back") {
		t.Errorf("log does not say the clock went back:\n%s", logs)
	}
}

// TestReportOnceRejected: a certificate the server cannot parse is sent
// with its DER from the next report on, saving the round trip.
func TestReportOnceRejected(t *testing.T) {
	ft := newFakeTime()
	srv := servertest.New(t, ft.Now)
	runs := 0
	items := append(threeAtFour(t), item{"/etc/ssl/bad.pem", []byte("not a certificate")})
	a := newAgent(t, srv.URL, ft, fixed(items, &runs), nil)
	out, err := a.ReportOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Result.Rejected) != 1 || out.Result.Rejected[0].Path != "/etc/ssl/bad.pem" {
		t.Fatalf("ReportOnce() rejected = %+v, want /etc/ssl/bad.pem", out.Result.Rejected)
	}
	ft.Add(time.Hour)
	if out, err = a.ReportOnce(context.Background()); err != nil || out.Requests != 1 || out.SentDER != 1 {
		t.Errorf("second ReportOnce() = %+v, %v; want 1 request with the rejected DER only", out, err)
	}
}

// countingReporter answers every report with success.
type countingReporter struct {
	at []time.Time
	ft *fakeTime
}

func (c *countingReporter) Report(_ context.Context, _ string, r *client.Report) (*client.ReportResult, error) {
	c.at = append(c.at, c.ft.Now())
	return &client.ReportResult{DeviceID: r.Device.ID, Stored: len(r.Certificates)}, nil
}

// TestRunSchedule reports at start, then every interval with jitter, in
// sleeps no longer than wakeEvery, until the context ends.
func TestRunSchedule(t *testing.T) {
	ft := newFakeTime()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rep := &countingReporter{ft: ft}
	runs := 0
	a := newAgent(t, "http://127.0.0.1:1", ft, fixed(threeAtFour(t), &runs), nil)
	a.Client = rep
	a.Interval = 6 * time.Hour
	draws := []float64{0, 0.999999}
	a.Rand = func() float64 { v := draws[0]; draws = append(draws[1:], v); return v }
	ft.onSleep = func(int, time.Duration) {
		if len(rep.at) == 3 {
			cancel()
		}
	}
	start := ft.Now()
	if err := a.Run(ctx); err != nil {
		t.Fatalf("Run() = %v, want nil when the context ends", err)
	}
	if len(rep.at) != 3 || !rep.at[0].Equal(start) {
		t.Fatalf("reports at %v, want 3, the first at the start %v", rep.at, start)
	}
	gaps := []time.Duration{rep.at[1].Sub(rep.at[0]), rep.at[2].Sub(rep.at[1])}
	// 10% of 6h is 36 min, capped at MaxJitter: 5h30m, then almost 6h30m.
	if gaps[0] != 6*time.Hour-MaxJitter || gaps[1] < 6*time.Hour+MaxJitter-time.Second || gaps[1] > 6*time.Hour+MaxJitter {
		t.Errorf("gaps between reports = %v, want 5h30m and just under 6h30m", gaps)
	}
	for _, d := range ft.Sleeps() {
		if d > wakeEvery || d <= 0 {
			t.Errorf("Run slept %v, want (0, %v]", d, wakeEvery)
		}
	}
}

func TestNextWait(t *testing.T) {
	for _, tc := range []struct {
		interval time.Duration
		rand     float64
		want     time.Duration
	}{
		{0, 0, DefaultInterval - MaxJitter},
		{6 * time.Hour, 0.5, 6 * time.Hour},
		{time.Hour, 0, 54 * time.Minute},
		{time.Hour, 0.75, time.Hour + 3*time.Minute},
		{24 * time.Hour, 0, 24*time.Hour - MaxJitter},
	} {
		a := &Agent{Interval: tc.interval, Rand: func() float64 { return tc.rand }}
		if got := a.NextWait(); got != tc.want {
			t.Errorf("NextWait() with interval %v, rand %v = %v, want %v", tc.interval, tc.rand, got, tc.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	p := RetryPolicy{Attempts: 10, Base: 10 * time.Second, Max: time.Minute}
	for _, tc := range []struct {
		attempt int
		rand    float64
		want    time.Duration
	}{
		{1, 0, 5 * time.Second},
		{1, 0.5, 7500 * time.Millisecond},
		{2, 0, 10 * time.Second},
		{3, 0, 20 * time.Second},
		{4, 0, 30 * time.Second}, // 80s capped at 1m
		{9, 0.5, 45 * time.Second},
	} {
		a := &Agent{Rand: func() float64 { return tc.rand }}
		if got := a.backoff(p, tc.attempt); got != tc.want {
			t.Errorf("backoff(attempt %d, rand %v) = %v, want %v", tc.attempt, tc.rand, got, tc.want)
		}
	}
}

// TestCollectLimits keeps the report within what the server takes: no
// empty or oversized certificate, no overlong path, no control character,
// no duplicate, at most MaxCertificatesPerReport.
func TestCollectLimits(t *testing.T) {
	var items []item
	items = append(items,
		item{"/empty.pem", nil},
		item{"/huge.pem", make([]byte, certinv.MaxCertificateBytes+1)},
		item{"/" + strings.Repeat("x", certinv.MaxPathBytes), []byte("long path")},
		item{"/odd\nname\xff.pem", []byte("odd")},
		item{"/dup.pem", []byte("dup")},
		item{"/dup.pem", []byte("dup")},
	)
	for i := range certinv.MaxCertificatesPerReport + 5 {
		items = append(items, item{fmt.Sprintf("/many/%d", i), []byte(fmt.Sprint(i))})
	}
	runs := 0
	logs := new(bytes.Buffer)
	a := &Agent{Collect: fixed(items, &runs), Log: slog.New(slog.NewTextHandler(logs, nil))}
	inv, err := a.collect(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.certs) != certinv.MaxCertificatesPerReport {
		t.Errorf("collected %d certificates, want the limit %d", len(inv.certs), certinv.MaxCertificatesPerReport)
	}
	// empty, huge, long path, and those over the count: 2 of the 3 others
	// fit (odd and dup), so 20000-2 of the many.
	if want := 3 + (certinv.MaxCertificatesPerReport + 5 - (certinv.MaxCertificatesPerReport - 2)); inv.dropped != want {
		t.Errorf("dropped %d, want %d", inv.dropped, want)
	}
	if inv.certs[0].Path != `/odd\nname\xff.pem` || inv.certs[1].Path != "/dup.pem" || inv.certs[2].Path != "/many/0" {
		t.Errorf("first certificates = %q, %q, %q; want the odd path escaped, /dup.pem once, /many/0", inv.certs[0].Path, inv.certs[1].Path, inv.certs[2].Path)
	}
	if inv.warnings != 3 || strings.Count(logs.String(), "more certificates than a report may hold") != 1 {
		t.Errorf("warnings = %d, log:\n%s\nwant 3 warnings and one line about the limit", inv.warnings, logs)
	}
}

func TestCleanPath(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"/etc/ssl/certs/ca.pem", "/etc/ssl/certs/ca.pem", true},
		{`LocalMachine\Root\0563B8630D62D75ABBC8AB1E4BDFB5A899B24D43`, `LocalMachine\Root\0563B8630D62D75ABBC8AB1E4BDFB5A899B24D43`, true},
		{"/tmp/caf\u00e9.pem", "/tmp/caf\u00e9.pem", true},
		{"/tmp/a\tb", `/tmp/a\tb`, true},
		{"/tmp/\x00\x7f", `/tmp/\x00\x7f`, true},
		{"/tmp/\xc3", `/tmp/\xc3`, true},
		{"/tmp/\u0085", `/tmp/\u0085`, true},
		{"", "", false},
		{"/" + strings.Repeat("a", certinv.MaxPathBytes), "", false},
	} {
		got, ok := cleanPath(tc.in)
		if ok != tc.ok || (ok && got != tc.want) {
			t.Errorf("cleanPath(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// systemCertificates returns the DER of the certificates in this machine's
// CA bundle, or nil when it has none.
func systemCertificates() [][]byte {
	var out [][]byte
	for _, p := range []string{"/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"} {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		for {
			var blk *pem.Block
			blk, b = pem.Decode(b)
			if blk == nil {
				break
			}
			if blk.Type == "CERTIFICATE" {
				out = append(out, blk.Bytes)
			}
		}
		if len(out) > 0 {
			return out
		}
	}
	return nil
}

// wireBytes measures the bytes a report crosses the wire with (request
// headers and body, as the server's connections count them): of a device
// whose certificates the server holds (hashes only), and of the same report
// sent whole (every DER).
func wireBytes(t testing.TB) (known, full int64, certs int, source string) {
	ders, source := systemCertificates(), "this machine's CA bundle"
	if len(ders) == 0 {
		ders, source = servertest.Certificates(t, 150), "150 generated RSA 2048 roots"
	}
	var items []item
	for i, der := range ders {
		// Two places each, as on a Debian system: the bundle, and the file
		// it was built from.
		items = append(items, item{"/etc/ssl/certs/ca-certificates.crt", der},
			item{fmt.Sprintf("/usr/share/ca-certificates/mozilla/Certificate_Authority_%03d.crt", i), der})
	}
	ft := newFakeTime()
	srv := servertest.New(t, ft.Now)
	runs := 0
	a := newAgent(t, srv.URL, ft, fixed(items, &runs), nil)
	ctx := context.Background()
	if _, err := a.ReportOnce(ctx); err != nil {
		t.Fatal(err)
	}
	ft.Add(time.Hour)
	srv.ResetCounters()
	out, err := a.ReportOnce(ctx)
	if err != nil || out.Requests != 1 || !out.Result.Unchanged {
		t.Fatalf("report of known certificates = %+v, %v; want 1 request, unchanged", out, err)
	}
	known, _ = srv.Bytes()

	inv, err := a.collect(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	rep := &client.Report{Device: a.deviceAt(ft.Now().Add(time.Hour)), GroupName: a.Group, Certificates: inv.certs}
	for i := range rep.Certificates {
		rep.Certificates[i].DER = inv.der[rep.Certificates[i].SHA256]
	}
	srv.ResetCounters()
	if _, err := a.Client.Report(ctx, a.Secret, rep); err != nil {
		t.Fatal(err)
	}
	full, _ = srv.Bytes()
	return known, full, len(items), source
}

// TestWireBytes: a report of a device whose certificates the server already
// holds sends under 10% of the bytes of a full report.
func TestWireBytes(t *testing.T) {
	known, full, n, source := wireBytes(t)
	ratio := float64(known) / float64(full)
	t.Logf("%d certificates (%s): hashes only %d bytes, full %d bytes, ratio %.2f%%", n, source, known, full, 100*ratio)
	if ratio >= 0.10 {
		t.Errorf("a report of known certificates sends %d bytes, %.1f%% of a full report's %d; want under 10%%", known, 100*ratio, full)
	}
}

// BenchmarkWireBytes reports the bytes on the wire of a report of known
// certificates and of a full one (go test -run '^$' -bench WireBytes ./agent).
func BenchmarkWireBytes(b *testing.B) {
	var known, full int64
	var n int
	for b.Loop() {
		known, full, n, _ = wireBytes(b)
	}
	b.ReportMetric(float64(known), "known-B/report")
	b.ReportMetric(float64(full), "full-B/report")
	b.ReportMetric(100*float64(known)/float64(full), "known-%-of-full")
	b.ReportMetric(float64(known)/float64(n), "known-B/cert")
}

// BenchmarkCollect measures the agent's own cost per certificate found:
// hashing, deduplication and holding the DER.
func BenchmarkCollect(b *testing.B) {
	ders := servertest.Certificates(b, 100)
	var items []item
	for i, der := range ders {
		items = append(items, item{fmt.Sprintf("/etc/ssl/certs/%d.pem", i), der})
	}
	runs := 0
	a := &Agent{Collect: fixed(items, &runs), Log: slog.New(slog.DiscardHandler)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.collect(context.Background(), nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(items)), "ns/cert")
}
