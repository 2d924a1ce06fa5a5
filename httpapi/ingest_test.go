package httpapi

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/certinv/certinv"
	"github.com/certinv/certinv/ingest"
)

// newIngestEnv returns an env whose server takes reports into its SQLite
// store through the real ingest service.
func newIngestEnv(t *testing.T) *env {
	e := newEnv(t)
	cfg := e.cfg
	cfg.Ingest = &ingest.Service{Store: e.db, Now: e.clock.Now}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.srv, e.cfg = srv, cfg
	return e
}

type reportCert struct {
	Path   string `json:"path"`
	DER    []byte `json:"der,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
}

func reportBody(id string, collected time.Time, certs ...reportCert) string {
	b, _ := json.Marshal(map[string]any{
		"deviceId": id, "deviceName": "web1.corp.example", "osPlatform": "Ubuntu 24.04",
		"collectedAt": collected.Format(time.RFC3339), "rbacGroupName": "Servers", "certificates": certs,
	})
	return string(b)
}

func (e *env) report(secret, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("POST", PathReports, strings.NewReader(body))
	if secret != "" {
		r.Header.Set("Authorization", "Bearer "+secret)
	}
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	e.srv.ServeHTTP(w, r)
	return w
}

type ingestAnswer struct {
	DeviceID        string `json:"deviceId"`
	Stored          int    `json:"stored"`
	NewCertificates int    `json:"newCertificates"`
	Unchanged       bool   `json:"unchanged"`
	Rejected        []struct {
		Index  int    `json:"index"`
		Path   string `json:"path"`
		Reason string `json:"reason"`
	} `json:"rejected"`
}

func decodeAnswer(t *testing.T, w *httptest.ResponseRecorder) ingestAnswer {
	t.Helper()
	if w.Code != http.StatusOK {
		t.Fatalf("report = %d, want 200: %s", w.Code, w.Body)
	}
	var a ingestAnswer
	dec := json.NewDecoder(w.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		t.Fatal(err)
	}
	return a
}

func TestReportIngest(t *testing.T) {
	e := newIngestEnv(t)
	certs := makeCerts(t, 4)
	id := deviceID(1)
	at := e.clock.Now().Add(-time.Minute)

	// First report: DER of three certificates and one that does not parse.
	body := reportBody(id, at,
		reportCert{Path: "/etc/ssl/a.pem", DER: certs[0].der},
		reportCert{Path: "/etc/ssl/b.pem", DER: certs[1].der},
		reportCert{Path: "/etc/ssl/c.pem", DER: certs[2].der},
		reportCert{Path: "/etc/ssl/bad.pem", DER: []byte("not a certificate")},
	)
	a := decodeAnswer(t, e.report(enrollment, body))
	if a.DeviceID != id || a.Stored != 3 || a.NewCertificates != 3 || a.Unchanged || len(a.Rejected) != 1 ||
		a.Rejected[0].Index != 3 || a.Rejected[0].Path != "/etc/ssl/bad.pem" || a.Rejected[0].Reason == "" {
		t.Errorf("first report = %+v, want 3 stored, 3 new, index 3 rejected", a)
	}

	// The same set by hash only: unchanged.
	hashOf := func(c *testCert) string { return hex.EncodeToString(c.cert.SHA256[:]) }
	body = reportBody(id, at.Add(time.Second),
		reportCert{Path: "/etc/ssl/a.pem", SHA256: hashOf(certs[0])},
		reportCert{Path: "/etc/ssl/b.pem", SHA256: hashOf(certs[1])},
		reportCert{Path: "/etc/ssl/c.pem", SHA256: hashOf(certs[2])},
	)
	a = decodeAnswer(t, e.report(enrollment, body))
	if !a.Unchanged || a.Stored != 3 || a.NewCertificates != 0 || a.Rejected == nil || len(a.Rejected) != 0 {
		t.Errorf("hash-only resend = %+v, want unchanged, 3 stored, rejected []", a)
	}

	// A hash the server does not hold: 409 naming it, nothing stored.
	body = reportBody(id, at.Add(2*time.Second),
		reportCert{Path: "/etc/ssl/a.pem", SHA256: hashOf(certs[0])},
		reportCert{Path: "/etc/ssl/d.pem", SHA256: hashOf(certs[3])},
	)
	b := wantError(t, e.report(enrollment, body), http.StatusConflict, "Conflict", "send the report again with their der")
	if len(b.MissingCertificates) != 1 || b.MissingCertificates[0] != hashOf(certs[3]) {
		t.Errorf("missingCertificates = %v, want [%s]", b.MissingCertificates, hashOf(certs[3]))
	}
	// ... and the agent resends with the DER.
	body = reportBody(id, at.Add(2*time.Second),
		reportCert{Path: "/etc/ssl/a.pem", SHA256: hashOf(certs[0])},
		reportCert{Path: "/etc/ssl/d.pem", DER: certs[3].der},
	)
	if a = decodeAnswer(t, e.report(enrollment, body)); a.Stored != 2 || a.NewCertificates != 1 {
		t.Errorf("resend with der = %+v, want 2 stored, 1 new", a)
	}

	// A stale report: 409.
	wantError(t, e.report(enrollment, reportBody(id, at, reportCert{Path: "/x", DER: certs[0].der})), http.StatusConflict, "Conflict", "")

	// What was stored is exported.
	e.build()
	recs := e.traverse(PathPages, e.reader())
	if len(recs) != 2 {
		t.Fatalf("export after reports has %d records, want 2", len(recs))
	}
	for _, r := range recs {
		if !strings.Contains(r, `"deviceId":"`+id+`"`) || !strings.Contains(r, `"rbacGroupName":"Servers"`) {
			t.Errorf("exported record %s lacks the device or its group", r)
		}
	}
}

func TestReportRefusals(t *testing.T) {
	e := newIngestEnv(t)
	certs := makeCerts(t, 1)
	good := reportBody(deviceID(2), e.clock.Now(), reportCert{Path: "/a", DER: certs[0].der})
	tests := []struct {
		name   string
		secret string
		body   string
		status int
		code   string
		msg    string
	}{
		{"no secret", "", good, 401, "Unauthorized", "no Authorization header"},
		{"wrong secret", "guess", good, 401, "Unauthorized", "enrollment secret is not valid"},
		{"a token is not the secret", e.reader(), good, 401, "Unauthorized", "enrollment secret is not valid"},
		{"unknown field", enrollment, strings.Replace(good, `"osPlatform"`, `"platform"`, 1), 400, "InvalidInput", "unknown field"},
		{"trailing data", enrollment, good + good, 400, "InvalidInput", "data after"},
		{"bad device id", enrollment, reportBody("ABC", e.clock.Now(), reportCert{Path: "/a", DER: certs[0].der}), 400, "InvalidInput", "40 lowercase hexadecimal"},
		{"bad der base64", enrollment, strings.Replace(good, `"der":"`, `"der":"*`, 1), 400, "InvalidInput", "cannot be read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := e.report(tt.secret, tt.body)
			wantError(t, w, tt.status, tt.code, tt.msg)
		})
	}
	wantError(t, e.do("GET", PathReports, "", nil), 405, "MethodNotAllowed", "use POST")
}

func TestReportTooLarge(t *testing.T) {
	e := newIngestEnv(t)
	// Declared too large: refused before reading.
	r := httptest.NewRequest("POST", PathReports, strings.NewReader("{}"))
	r.Header.Set("Authorization", "Bearer "+enrollment)
	r.ContentLength = certinv.MaxReportBytes + 1
	w := httptest.NewRecorder()
	e.srv.ServeHTTP(w, r)
	wantError(t, w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", fmt.Sprint(certinv.MaxReportBytes))

	// Streamed without a length: cut at the limit.
	body := io.MultiReader(strings.NewReader(`{"deviceId":"`), io.LimitReader(repeatReader('a'), certinv.MaxReportBytes+10), strings.NewReader(`"}`))
	r = httptest.NewRequest("POST", PathReports, body)
	r.ContentLength = -1
	r.Header.Set("Authorization", "Bearer "+enrollment)
	w = httptest.NewRecorder()
	e.srv.ServeHTTP(w, r)
	wantError(t, w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "larger than")
}

type repeatReader byte

func (b repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(b)
	}
	return len(p), nil
}
