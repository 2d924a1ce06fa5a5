package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestEndToEnd drives the commands a user runs, on one data folder: seed a
// fleet, serve it, page through it, download the same snapshot as files,
// report a new device, build a snapshot while a traversal is under way, and
// see that traversal finish on the snapshot it began on.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test in -short mode")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	data := filepath.Join(t.TempDir(), "data")
	const devices, certsPerDevice = 40, 15

	mustRun(t, ctx, "seed", "--data", data, "--devices", fmt.Sprint(devices), "--certs-per-device", fmt.Sprint(certsPerDevice), "--groups", "3", "--seed", "7")

	base, stopServer := startServer(t, ctx, data)
	defer stopServer()
	token := strings.TrimSpace(mustRun(t, ctx, "token", "--data", data, "--role", "Vulnerability.Read.All"))

	// The whole inventory through the JSON pages.
	pages := traverse(t, base, token, 37)
	if len(pages) != devices*certsPerDevice {
		t.Fatalf("pages hold %d records, want %d", len(pages), devices*certsPerDevice)
	}
	seen := map[string]bool{}
	for _, rec := range pages {
		var r struct{ DeviceID, Thumbprint, Path string }
		if err := json.Unmarshal([]byte(rec), &r); err != nil {
			t.Fatalf("record %s: %v", rec, err)
		}
		k := r.DeviceID + "|" + r.Thumbprint + "|" + r.Path
		if seen[k] {
			t.Errorf("record (device, thumbprint, path) = %s twice", k)
		}
		seen[k] = true
	}

	// The same snapshot as files: the same records, line for line.
	files := exportFiles(t, base, token, "")
	if got := readExport(t, files); !equalLines(got, pages) {
		t.Errorf("export files hold %d lines that differ from the %d records of the pages", len(got), len(pages))
	}
	layout := regexp.MustCompile(`^` + regexp.QuoteMeta(base) + `/files/export-[0-9a-f-]{36}/\d{4}-\d\d-\d\d/\d{4}/CertificateAssessmentExport/json/OrgId=[0-9a-f-]{36}/_RbacGroupId=\d+/part-\d{5}-[0-9a-f-]{36}\.c000\.json\.gz\?sv=[^&]+&st=[^&]+&se=[^&]+&sr=b&sp=r&sig=[^&]+$`)
	for _, f := range files {
		if !layout.MatchString(f) {
			t.Errorf("export URL %s does not follow the vendor's layout", f)
		}
	}

	// A traversal begins on the current snapshot...
	first := getJSON(t, base+"/api/machines/CertificateAssessmentByMachine?pageSize=100", token, http.StatusOK)
	next, _ := first["@odata.nextLink"].(string)
	if next == "" {
		t.Fatalf("first page of 100 has no nextLink")
	}

	// ...a new device reports, and a new snapshot is published meanwhile.
	der, thumb := newCertificate(t)
	secret, err := os.ReadFile(filepath.Join(data, "enrollment-secret"))
	if err != nil {
		t.Fatal(err)
	}
	newDevice := strings.Repeat("ab", 20)
	report := fmt.Sprintf(`{"deviceId":%q,"deviceName":"new-host.contoso.com","osPlatform":"Ubuntu 24.04","collectedAt":%q,"certificates":[{"path":"/etc/ssl/certs/new.pem","der":%q},{"path":"/etc/ssl/certs/broken.pem","der":%q}]}`,
		newDevice, time.Now().UTC().Format(time.RFC3339), base64.StdEncoding.EncodeToString(der), base64.StdEncoding.EncodeToString([]byte("not a certificate")))
	req, _ := http.NewRequest(http.MethodPost, base+"/api/agent/reports", strings.NewReader(report))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(secret)))
	req.Header.Set("Content-Type", "application/json")
	var ingested struct {
		Stored   int
		Rejected []struct {
			Index  int
			Reason string
		}
	}
	doJSON(t, req, http.StatusOK, &ingested)
	if ingested.Stored != 1 || len(ingested.Rejected) != 1 || ingested.Rejected[0].Index != 1 || ingested.Rejected[0].Reason == "" {
		t.Errorf("report answer = %+v, want 1 stored and certificate 1 rejected with a reason", ingested)
	}
	mustRun(t, ctx, "snapshot", "--data", data)

	// The old traversal finishes on its own snapshot.
	rest := traverseFrom(t, next, token)
	if got := 100 + len(rest); got != devices*certsPerDevice {
		t.Errorf("traversal begun before the new snapshot saw %d records, want %d (its own snapshot only)", got, devices*certsPerDevice)
	}
	if !equalLines(rest, pages[100:]) {
		t.Errorf("traversal begun before the new snapshot changed records on the way")
	}

	// A new traversal sees the new device, with fields derived by the server.
	now := traverse(t, base, token, 200_000)
	if len(now) != devices*certsPerDevice+1 {
		t.Fatalf("new traversal holds %d records, want %d", len(now), devices*certsPerDevice+1)
	}
	var found bool
	for _, rec := range now {
		if strings.Contains(rec, newDevice) {
			found = true
			var r map[string]any
			json.Unmarshal([]byte(rec), &r)
			if r["thumbprint"] != thumb || r["signatureAlgorithm"] != "sha256ECDSA" || r["keySize"] != float64(256) ||
				r["deviceName"] != "new-host.contoso.com" || r["issuedTo"] != "CN=new-host.contoso.com, O=Contoso" {
				t.Errorf("new device's record = %s, want thumbprint %s, sha256ECDSA, 256 bits, CN=new-host.contoso.com, O=Contoso", rec, thumb)
			}
		}
	}
	if !found {
		t.Errorf("new traversal has no record of device %s", newDevice)
	}
	if got := readExport(t, exportFiles(t, base, token, "?sasValidHours=1")); !equalLines(got, now) {
		t.Errorf("export of the new snapshot differs from its pages")
	}

	// Bad input gets the contract's error body.
	for _, tc := range []struct {
		name, url string
		status    int
		code      string
	}{
		{"forged skiptoken", forge(next), http.StatusBadRequest, "BadRequest"},
		{"pageSize 0", base + "/api/machines/CertificateAssessmentByMachine?pageSize=0", http.StatusBadRequest, "InvalidInput"},
		{"sasValidHours 25", base + "/api/machines/CertificateAssessmentExport?sasValidHours=25", http.StatusBadRequest, "InvalidInput"},
		{"tampered download", strings.Replace(files[0], "_RbacGroupId=", "_RbacGroupId=9", 1), http.StatusForbidden, "Forbidden"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := getJSON(t, tc.url, token, tc.status)
			e, _ := body["error"].(map[string]any)
			if e == nil || e["code"] != tc.code || e["message"] == "" || e["target"] == "" {
				t.Errorf("GET %s = %v, want error code %s with message and target", tc.url, body, tc.code)
			}
		})
	}

	stopServer()
}

// startServer runs `certinv serve` on a free port and waits until it is
// healthy. It returns the base URL and a func that stops the server and
// checks it ended cleanly.
func startServer(t *testing.T, ctx context.Context, data string) (string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := run(ctx, []string{"serve", "--data", data, "--addr", "127.0.0.1:0", "--snapshot-interval", "1h", "--log-level", "warn"}, pw, io.Discard)
		pw.CloseWithError(io.EOF)
		done <- err
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		cancel()
		t.Fatalf("serve printed nothing: %v (%v)", err, <-done)
	}
	go io.Copy(io.Discard, pr)
	m := regexp.MustCompile(`at (http://\S+)`).FindStringSubmatch(line)
	if m == nil {
		cancel()
		t.Fatalf("serve printed %q, want its URL", line)
	}
	base := m[1]
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("server at %s not healthy after 60s (last: %v)", base, err)
		}
		time.Sleep(20 * time.Millisecond) // waiting for readiness, not timing anything
	}
	var stopped bool
	return base, func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve ended with %v, want nil after shutdown", err)
		}
	}
}

func mustRun(t *testing.T, ctx context.Context, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if err := run(ctx, args, &out, &errOut); err != nil {
		t.Fatalf("certinv %s: %v\n%s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String()
}

func traverse(t *testing.T, base, token string, pageSize int) []string {
	return traverseFrom(t, fmt.Sprintf("%s/api/machines/CertificateAssessmentByMachine?pageSize=%d", base, pageSize), token)
}

// traverseFrom follows nextLinks from u to the last page and returns every
// record, compacted, in order.
func traverseFrom(t *testing.T, u, token string) []string {
	t.Helper()
	var out []string
	for pages := 0; u != ""; pages++ {
		if pages > 10000 {
			t.Fatalf("more than 10000 pages: nextLink loop?")
		}
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		var page struct {
			Context  string            `json:"@odata.context"`
			Value    []json.RawMessage `json:"value"`
			NextLink string            `json:"@odata.nextLink"`
		}
		doJSON(t, req, http.StatusOK, &page)
		if !strings.HasSuffix(page.Context, "/api/$metadata#Collection(microsoft.windowsDefenderATP.api.AssetCertificateAssessment)") {
			t.Errorf("@odata.context = %q", page.Context)
		}
		for _, v := range page.Value {
			out = append(out, compact(t, v))
		}
		u = page.NextLink
	}
	return out
}

func exportFiles(t *testing.T, base, token, query string) []string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/api/machines/CertificateAssessmentExport"+query, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	var resp struct {
		ExportFiles   []string `json:"exportFiles"`
		GeneratedTime string   `json:"generatedTime"`
	}
	doJSON(t, req, http.StatusOK, &resp)
	if _, err := time.Parse(time.RFC3339, resp.GeneratedTime); err != nil || len(resp.ExportFiles) == 0 {
		t.Fatalf("export = %+v, want files and a generatedTime", resp)
	}
	return resp.ExportFiles
}

// readExport downloads every file without a token, as a client does with
// the signed URLs, and returns their lines in order.
func readExport(t *testing.T, urls []string) []string {
	t.Helper()
	var out []string
	for _, u := range urls {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Encoding") != "" {
			t.Fatalf("GET %s = %d with Content-Encoding %q, want 200 and none", u, resp.StatusCode, resp.Header.Get("Content-Encoding"))
		}
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			t.Fatalf("GET %s: not gzip: %v", u, err)
		}
		sc := bufio.NewScanner(zr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			out = append(out, compact(t, sc.Bytes()))
		}
		if err := sc.Err(); err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
		resp.Body.Close()
	}
	return out
}

func getJSON(t *testing.T, u, token string, status int) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	var v map[string]any
	doJSON(t, req, status, &v)
	return v
}

func doJSON(t *testing.T, req *http.Request, status int, v any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("%s %s = %d %.300s, want %d", req.Method, req.URL, resp.StatusCode, body, status)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("%s %s: body %.200s: %v", req.Method, req.URL, body, err)
	}
}

func compact(t *testing.T, b []byte) string {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatalf("record %s: %v", b, err)
	}
	return buf.String()
}

func equalLines(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// forge changes the line number in the skiptoken's JSON, keeping it valid
// base64 and valid JSON: only the signature can tell.
func forge(nextLink string) string {
	u, _ := url.Parse(nextLink)
	q := u.Query()
	raw, _ := base64.RawURLEncoding.DecodeString(q.Get("$skiptoken"))
	raw = regexp.MustCompile(`"LineStoppedAt":(\d+)`).ReplaceAll(raw, []byte(`"LineStoppedAt":1${1}`))
	q.Set("$skiptoken", base64.RawURLEncoding.EncodeToString(raw))
	u.RawQuery = q.Encode()
	return u.String()
}

func newCertificate(t *testing.T) (der []byte, thumbprint string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(4242),
		Subject:      pkix.Name{CommonName: "new-host.contoso.com", Organization: []string{"Contoso"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(90 * 24 * time.Hour),
	}
	der, err = x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha1.Sum(der)
	return der, strings.ToUpper(hex.EncodeToString(sum[:]))
}
