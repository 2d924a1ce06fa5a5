package client_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/certinv/certinv"
	"github.com/certinv/certinv/client"
	"github.com/certinv/certinv/client/servertest"
)

const deviceID = "49126b9e4a5473b5229c73799e9e55c48668101b"

func newClient(t *testing.T, url string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// report returns a report of the given certificates at /etc/ssl/<i>.pem,
// with DER where withDER says, and SHA-256 only elsewhere.
func report(at time.Time, ders [][]byte, withDER func(i int) bool) *client.Report {
	r := &client.Report{
		Device:    certinv.Device{ID: deviceID, Name: "web1.corp.example", OS: "Ubuntu 24.04", CollectedAt: at},
		GroupName: "Servers",
	}
	for i, der := range ders {
		c := certinv.ReportedCertificate{Path: "/etc/ssl/" + string(rune('a'+i)) + ".pem", SHA256: sha256.Sum256(der)}
		if withDER(i) {
			c.DER = der
		}
		r.Certificates = append(r.Certificates, c)
	}
	return r
}

func all(int) bool  { return true }
func none(int) bool { return false }

// TestReportAgainstServer walks the hash-first protocol against the real
// server: hashes of unknown certificates are refused naming them, the DER
// of those is taken, hashes alone are then enough, and an older report is
// refused as stale.
func TestReportAgainstServer(t *testing.T) {
	ctx := context.Background()
	srv := servertest.New(t, nil)
	c := newClient(t, srv.URL, client.WithUserAgent("certinv-agent/test"))
	ders := servertest.Certificates(t, 3)
	at := time.Now().Add(-time.Hour).UTC()

	_, err := c.Report(ctx, servertest.Secret, report(at, ders, none))
	var missing *client.MissingError
	if !errors.As(err, &missing) {
		t.Fatalf("Report(hashes of unknown certificates) error = %v, want *MissingError", err)
	}
	want := map[[32]byte]bool{}
	for _, d := range ders {
		want[sha256.Sum256(d)] = true
	}
	if len(missing.SHA256) != len(ders) {
		t.Errorf("MissingError.SHA256 has %d hashes, want %d", len(missing.SHA256), len(ders))
	}
	for _, h := range missing.SHA256 {
		if !want[h] {
			t.Errorf("MissingError names %x, which the report did not hold", h)
		}
	}
	if certinv.KindOf(err) != certinv.EConflict || errors.Is(err, client.ErrStale) {
		t.Errorf("KindOf(missing) = %s, stale %v; want %s, not stale", certinv.KindOf(err), errors.Is(err, client.ErrStale), certinv.EConflict)
	}
	if retry, _ := client.Retryable(err); retry {
		t.Errorf("Retryable(missing) = true, want false: the report must change")
	}

	// DER of the first only: the others are still missing.
	_, err = c.Report(ctx, servertest.Secret, report(at, ders, func(i int) bool { return i == 0 }))
	if !errors.As(err, &missing) || len(missing.SHA256) != 2 {
		t.Fatalf("Report(der of one of three) error = %v, want *MissingError of 2", err)
	}

	res, err := c.Report(ctx, servertest.Secret, report(at, ders, all))
	if err != nil {
		t.Fatalf("Report(all der) error = %v", err)
	}
	if res.DeviceID != deviceID || res.Stored != 3 || res.NewCertificates != 3 || res.Unchanged || len(res.Rejected) != 0 {
		t.Errorf("Report(all der) = %+v, want 3 stored, 3 new", res)
	}

	res, err = c.Report(ctx, servertest.Secret, report(at.Add(time.Minute), ders, none))
	if err != nil {
		t.Fatalf("Report(hashes of known certificates) error = %v", err)
	}
	if !res.Unchanged || res.Stored != 3 || res.NewCertificates != 0 {
		t.Errorf("Report(hashes of known certificates) = %+v, want unchanged, 3 stored", res)
	}

	_, err = c.Report(ctx, servertest.Secret, report(at, ders, none))
	if !errors.Is(err, client.ErrStale) {
		t.Errorf("Report(older report) error = %v, want ErrStale", err)
	}
	var api *client.APIError
	if !errors.As(err, &api) || api.Status != http.StatusConflict || api.Code != "Conflict" || api.Message == "" || api.RequestID == "" {
		t.Errorf("Report(older report) = %#v, want an *APIError 409 Conflict with message and request id", api)
	}

	paths, err := srv.Paths(ctx, deviceID)
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 3 || paths["/etc/ssl/a.pem"] != 1 {
		t.Errorf("store holds %v for the device, want 3 paths, one certificate each", paths)
	}
}

func TestReportRejected(t *testing.T) {
	srv := servertest.New(t, nil)
	c := newClient(t, srv.URL)
	ders := servertest.Certificates(t, 1)
	r := report(time.Now().UTC(), [][]byte{ders[0], []byte("not a certificate")}, all)
	res, err := c.Report(context.Background(), servertest.Secret, r)
	if err != nil {
		t.Fatal(err)
	}
	if res.Stored != 1 || len(res.Rejected) != 1 || res.Rejected[0].Index != 1 || res.Rejected[0].Path != r.Certificates[1].Path || res.Rejected[0].Reason == "" {
		t.Errorf("Report(one bad der) = %+v, want 1 stored and index 1 rejected with a reason", res)
	}
}

// TestReportRefusals checks the typed errors of refusals, and that none of
// them carries the secret.
func TestReportRefusals(t *testing.T) {
	srv := servertest.New(t, nil)
	ders := servertest.Certificates(t, 1)
	c := newClient(t, srv.URL)
	good := report(time.Now().UTC(), ders, all)
	bad := report(time.Now().UTC(), ders, all)
	bad.Device.ID = "not-hex"
	const wrong = "wrong-secret-value-0123456789"
	for _, tc := range []struct {
		name   string
		secret string
		r      *client.Report
		status int
		kind   certinv.ErrorKind
	}{
		{"wrong secret", wrong, good, http.StatusUnauthorized, certinv.EUnauthorized},
		{"invalid device id", servertest.Secret, bad, http.StatusBadRequest, certinv.EInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Report(context.Background(), tc.secret, tc.r)
			var api *client.APIError
			if !errors.As(err, &api) || api.Status != tc.status || certinv.KindOf(err) != tc.kind || api.Message == "" {
				t.Fatalf("Report() error = %v, want status %d, kind %s, with a message", err, tc.status, tc.kind)
			}
			if retry, _ := client.Retryable(err); retry {
				t.Errorf("Retryable(%v) = true, want false", err)
			}
			if strings.Contains(err.Error(), tc.secret) {
				t.Errorf("error %q holds the secret", err)
			}
		})
	}
	if _, err := c.Report(context.Background(), "", good); err == nil {
		t.Errorf("Report(empty secret) error = nil, want an error")
	}
	if strings.Contains(srv.Log.String(), wrong) || strings.Contains(srv.Log.String(), servertest.Secret) {
		t.Errorf("the server's log holds a secret")
	}
}

func TestReportTooLarge(t *testing.T) {
	srv := servertest.New(t, nil)
	c := newClient(t, srv.URL)
	der := servertest.Certificates(t, 1)[0]
	many := &client.Report{Device: certinv.Device{ID: deviceID, Name: "h", CollectedAt: time.Now()}}
	for range certinv.MaxCertificatesPerReport + 1 {
		many.Certificates = append(many.Certificates, certinv.ReportedCertificate{Path: "/p", SHA256: sha256.Sum256(der)})
	}
	// 64 MiB of paths in fewer certificates than the count limit.
	big := &client.Report{Device: many.Device}
	long := "/" + strings.Repeat("x", 8000)
	for range certinv.MaxReportBytes/8000 + 1 {
		big.Certificates = append(big.Certificates, certinv.ReportedCertificate{Path: long, SHA256: sha256.Sum256(der)})
	}
	for name, r := range map[string]*client.Report{"count": many, "bytes": big} {
		if _, err := c.Report(context.Background(), servertest.Secret, r); !errors.Is(err, client.ErrTooLarge) {
			t.Errorf("Report(too many %s) error = %v, want ErrTooLarge", name, err)
		}
	}
	if n, _ := srv.Requests(); n != 0 {
		t.Errorf("the server got %d requests, want none: too large a report is refused before sending", n)
	}
}

// TestRetryable checks which failures are worth another attempt, against a
// server that is overloaded, one that cuts connections and one that is not
// there at all.
func TestRetryable(t *testing.T) {
	ders := servertest.Certificates(t, 1)
	srv := servertest.New(t, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := "http://" + ln.Addr().String()
	ln.Close()

	for _, tc := range []struct {
		name      string
		url       string
		mode      servertest.Mode
		wantRetry bool
		wantAfter time.Duration
	}{
		{"unavailable", srv.URL, servertest.Unavailable, true, 7 * time.Second},
		{"connection cut", srv.URL, servertest.Cut, true, 0},
		{"nobody listening", gone, servertest.Up, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv.SetMode(tc.mode, 7)
			c := newClient(t, tc.url, client.WithTimeout(10*time.Second))
			_, err := c.Report(context.Background(), servertest.Secret, report(time.Now().UTC(), ders, all))
			if err == nil {
				t.Fatal("Report() error = nil, want a failure")
			}
			retry, after := client.Retryable(err)
			if retry != tc.wantRetry || after != tc.wantAfter {
				t.Errorf("Retryable(%v) = %v, %v; want %v, %v", err, retry, after, tc.wantRetry, tc.wantAfter)
			}
		})
	}

	srv.SetMode(servertest.Up, 0)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = newClient(t, srv.URL).Report(ctx, servertest.Secret, report(time.Now().UTC(), ders, all))
	if retry, _ := client.Retryable(err); retry || !errors.Is(err, context.Canceled) {
		t.Errorf("Report(canceled) error = %v, retryable %v; want context.Canceled, not retryable", err, retry)
	}
}

func TestUserAgentAndNoRedirect(t *testing.T) {
	srv := servertest.New(t, nil)
	var ua string
	srv.OnRequest(func(r *http.Request) { ua = r.Header.Get("User-Agent") })
	c := newClient(t, srv.URL, client.WithUserAgent("certinv-agent/1.2.3"))
	if _, err := c.Report(context.Background(), servertest.Secret, report(time.Now().UTC(), servertest.Certificates(t, 1), all)); err != nil {
		t.Fatal(err)
	}
	if ua != "certinv-agent/1.2.3" {
		t.Errorf("User-Agent = %q, want certinv-agent/1.2.3", ua)
	}

	// A redirect is not followed: the secret goes nowhere else.
	var followed bool
	elsewhere := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { followed = true }))
	defer elsewhere.Close()
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer redirect.Close()
	_, err := newClient(t, redirect.URL).Report(context.Background(), servertest.Secret, report(time.Now().UTC(), servertest.Certificates(t, 1), all))
	var api *client.APIError
	if !errors.As(err, &api) || api.Status != http.StatusTemporaryRedirect || followed {
		t.Errorf("Report(to a redirect) error = %v, followed %v; want an *APIError 307, not followed", err, followed)
	}
}

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		url  string
		opts []client.Option
		ok   bool
	}{
		{"https://certinv.example.com", nil, true},
		{"https://certinv.example.com/prefix/", nil, true},
		{"http://127.0.0.1:8080", nil, true},
		{"http://localhost:8080", nil, true},
		{"http://[::1]:8080", nil, true},
		{"http://certinv.example.com", nil, false},
		{"http://certinv.example.com", []client.Option{client.WithAllowHTTP()}, true},
		{"ftp://certinv.example.com", nil, false},
		{"certinv.example.com", nil, false},
		{"https://user:pw@certinv.example.com", nil, false},
		{"https://certinv.example.com?x=1", nil, false},
	} {
		_, err := client.New(tc.url, tc.opts...)
		if (err == nil) != tc.ok {
			t.Errorf("New(%q) error = %v, want ok %v", tc.url, err, tc.ok)
		}
	}
}

// TestEncodeReport checks the body against what the server's strict decoder
// expects: every field, der for certificates that carry it, sha256 for the
// others, and the size it returns.
func TestEncodeReport(t *testing.T) {
	ders := servertest.Certificates(t, 2)
	at := time.Date(2026, 12, 3, 15, 4, 5, 123456789, time.UTC)
	r := report(at, ders, func(i int) bool { return i == 1 })
	r.Certificates[0].Path = "C:\\ProgramData\\\"odd\" <path>\u00e9"
	var buf bytes.Buffer
	n, err := client.EncodeReport(&buf, r)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(buf.Len()) {
		t.Errorf("EncodeReport() = %d, want the %d bytes written", n, buf.Len())
	}
	var got struct {
		DeviceID, DeviceName, OSPlatform, RBACGroupName string
		CollectedAt                                     time.Time
		Certificates                                    []struct {
			Path   string
			DER    []byte
			SHA256 string
		}
	}
	dec := json.NewDecoder(&buf)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("decode %s: %v", buf.String(), err)
	}
	if got.DeviceID != deviceID || got.DeviceName != "web1.corp.example" || got.OSPlatform != "Ubuntu 24.04" || got.RBACGroupName != "Servers" || !got.CollectedAt.Equal(at) {
		t.Errorf("decoded device = %+v, want the report's", got)
	}
	sum := sha256.Sum256(ders[0])
	if len(got.Certificates) != 2 || got.Certificates[0].Path != r.Certificates[0].Path ||
		got.Certificates[0].SHA256 != hex.EncodeToString(sum[:]) || got.Certificates[0].DER != nil ||
		!bytes.Equal(got.Certificates[1].DER, ders[1]) || got.Certificates[1].SHA256 != "" {
		t.Errorf("decoded certificates = %+v, want the first by sha256 with its path, the second by der", got.Certificates)
	}
}

// FuzzRefusal feeds answers of any status and body to the client: it must
// never panic, and must answer with an error for anything but 200.
func FuzzRefusal(f *testing.F) {
	f.Add(409, `{"error":{"code":"Conflict","message":"m","target":"t"},"missingCertificates":["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"]}`, "")
	f.Add(409, `{"error":{"code":"Conflict"},"missingCertificates":["zz"]}`, "")
	f.Add(429, `<html>busy</html>`, "Wed, 21 Oct 2015 07:28:00 GMT")
	f.Add(503, ``, "120")
	f.Add(200, `{"deviceId":"x","stored":1,"rejected":[{"index":0}]}`, "")
	f.Add(200, `{"deviceId":`, "")
	f.Fuzz(func(t *testing.T, status int, body, retryAfter string) {
		if status < 200 || status > 599 {
			return
		}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if retryAfter != "" {
				w.Header()["Retry-After"] = []string{retryAfter}
			}
			w.WriteHeader(status)
			w.Write([]byte(body))
		}))
		defer srv.Close()
		c, err := client.New(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		r := &client.Report{Device: certinv.Device{ID: deviceID, Name: "h", CollectedAt: time.Now()}}
		res, err := c.Report(context.Background(), "s", r)
		if status != http.StatusOK && (err == nil || res != nil) {
			t.Fatalf("Report() on status %d = %v, %v; want only an error", status, res, err)
		}
		if _, after := client.Retryable(err); after < 0 || after > time.Hour {
			t.Fatalf("Retryable() after = %v, want within [0, 1h]", after)
		}
	})
}

func BenchmarkEncodeReport(b *testing.B) {
	ders := servertest.Certificates(b, 20)
	var many [][]byte
	for range 10 {
		many = append(many, ders...)
	}
	for _, tc := range []struct {
		name string
		der  func(int) bool
	}{{"hashes", none}, {"der", all}} {
		r := report(time.Now(), many, tc.der)
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			var n int64
			for b.Loop() {
				n, _ = client.EncodeReport(discard{}, r)
			}
			b.SetBytes(n)
		})
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
