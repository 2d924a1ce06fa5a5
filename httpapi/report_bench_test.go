package httpapi

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/certinv/certinv/ingest"
)

// BenchmarkReport posts agents' reports end to end (secret check, JSON
// decoding, validation, ingest into SQLite on disk, answer), each of 100
// certificates the server already holds, sent by sha256 as agents do. The
// issue's target is 1,000 reports a second on this 2-core machine.
//
//	go test -run '^$' -bench BenchmarkReport -benchtime 3s ./httpapi
func BenchmarkReport(b *testing.B) {
	e := newEnv(b)
	cfg := e.cfg
	cfg.Ingest = &ingest.Service{Store: e.db, Now: e.clock.Now}
	srv, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	certs := makeCerts(b, 100)
	body := func(device int, at time.Time, der bool) string {
		var sb strings.Builder
		fmt.Fprintf(&sb, `{"deviceId":%q,"deviceName":"host%d.corp.example","osPlatform":"Ubuntu 24.04","collectedAt":%q,"certificates":[`,
			deviceID(device), device, at.UTC().Format(time.RFC3339))
		for i, c := range certs {
			if i > 0 {
				sb.WriteByte(',')
			}
			if der {
				fmt.Fprintf(&sb, `{"path":"/etc/ssl/certs/c%03d.pem","der":"%s"}`, i, base64.StdEncoding.EncodeToString(c.der))
			} else {
				sum := sha256.Sum256(c.der)
				fmt.Fprintf(&sb, `{"path":"/etc/ssl/certs/c%03d.pem","sha256":%q}`, i, hex.EncodeToString(sum[:]))
			}
		}
		sb.WriteString(`]}`)
		return sb.String()
	}
	post := func(s string) {
		r := httptest.NewRequest("POST", PathReports, strings.NewReader(s))
		r.Header.Set("Authorization", "Bearer "+enrollment)
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("report = %d %s", w.Code, w.Body)
		}
	}
	// The certificates become known with one full report.
	post(body(0, e.clock.Now(), true))

	for _, kind := range []string{"same device again", "new device"} {
		b.Run(strings.ReplaceAll(kind, " ", "-"), func(b *testing.B) {
			// One collection time: a report as old as the last one is
			// taken (an agent retrying), and the clock of the test is fixed.
			n := 1
			at := e.clock.Now()
			var bytes int64
			for b.Loop() {
				device := 0
				if kind == "new device" {
					device = n
					n++
				}
				s := body(device, at, false)
				bytes += int64(len(s))
				post(s)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reports/s")
			b.ReportMetric(float64(bytes)/float64(b.N), "bytes/report")
		})
	}
}
