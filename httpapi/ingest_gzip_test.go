package httpapi

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/certinv/certinv"
)

func gzipped(t *testing.T, r io.Reader) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := io.Copy(zw, r); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func (e *env) reportEncoded(body []byte, encoding string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("POST", PathReports, bytes.NewReader(body))
	r.Header.Set("Authorization", "Bearer "+enrollment)
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Content-Encoding", encoding)
	w := httptest.NewRecorder()
	e.srv.ServeHTTP(w, r)
	return w
}

// TestReportGzip takes a gzip-compressed report as the plain one, and
// refuses a compressed body that inflates past the report limit, corrupt
// gzip data and other encodings, storing nothing of them.
func TestReportGzip(t *testing.T) {
	e := newIngestEnv(t)
	certs := makeCerts(t, 2)
	body := reportBody(deviceID(7), e.clock.Now(), reportCert{Path: "/a", DER: certs[0].der}, reportCert{Path: "/b", DER: certs[1].der})
	a := decodeAnswer(t, e.reportEncoded(gzipped(t, strings.NewReader(body)), "gzip"))
	if a.DeviceID != deviceID(7) || a.Stored != 2 || a.NewCertificates != 2 {
		t.Errorf("gzip report answer = %+v, want device %s with 2 stored, 2 new", a, deviceID(7))
	}

	// 64 MiB and more of zeros in a few hundred kilobytes.
	bomb := gzipped(t, io.MultiReader(strings.NewReader(`{"deviceId":"`), io.LimitReader(repeatReader('0'), certinv.MaxReportBytes+1), strings.NewReader(`"}`)))
	if len(bomb) > 1<<20 {
		t.Fatalf("bomb is %d bytes, want a small body", len(bomb))
	}
	wantError(t, e.reportEncoded(bomb, "gzip"), http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "larger than")

	good := gzipped(t, strings.NewReader(reportBody(deviceID(8), e.clock.Now(), reportCert{Path: "/a", DER: certs[0].der})))
	wantError(t, e.reportEncoded(good[:len(good)/2], "gzip"), http.StatusBadRequest, "InvalidInput", "gzip")
	wantError(t, e.reportEncoded([]byte(body), "gzip"), http.StatusBadRequest, "InvalidInput", "not gzip")
	wantError(t, e.reportEncoded(good, "br"), http.StatusBadRequest, "InvalidInput", "not supported")

	// Nothing of the refused reports was stored: only device 7 has records.
	e.build()
	for _, line := range func() []string { l, _ := e.exportLines(e.reader()); return l }() {
		if strings.Contains(line, deviceID(8)) {
			t.Errorf("a refused report's device is in the export: %s", line)
		}
	}
}
