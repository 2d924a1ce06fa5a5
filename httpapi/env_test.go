package httpapi

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certinv/certinv"
	"github.com/certinv/certinv/auth"
	"github.com/certinv/certinv/blob"
	"github.com/certinv/certinv/certparse"
	"github.com/certinv/certinv/snapshot"
	"github.com/certinv/certinv/sqlite"
)

const (
	publicURL  = "https://certinv.test"
	testIssuer = "https://certinv.test/11111111-2222-4333-8444-555555555555/v2.0"
	testTenant = "11111111-2222-4333-8444-555555555555"
	enrollment = "enrollment-secret-for-tests-0123456789"
)

var (
	rsaOnce sync.Once
	rsaKey  *rsa.PrivateKey
)

func signingKey() *rsa.PrivateKey {
	rsaOnce.Do(func() {
		var err error
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	return rsaKey
}

// clock is the injected time of a test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is a server on real packages: SQLite in a temporary folder, a blob.Dir,
// snapshots built by snapshot.Builder, tokens of auth.Issuer.
type env struct {
	t       testing.TB
	clock   *clock
	db      *sqlite.DB
	bucket  *blob.Dir
	signer  *blob.LocalSigner
	issuer  *auth.Issuer
	builder *snapshot.Builder
	srv     *Server
	logs    *bytes.Buffer
	certs   []*testCert
	cfg     Config
}

type testCert struct {
	der  []byte
	cert *certinv.Certificate
}

// envOptions change the server's configuration before New.
type envOption func(*Config)

func newEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	e := &env{t: t, clock: &clock{t: time.Date(2026, 12, 3, 15, 0, 0, 0, time.UTC)}, logs: new(bytes.Buffer)}
	var err error
	e.db, err = sqlite.Open(ctx, filepath.Join(dir, "certinv.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.db.Close() })
	if e.bucket, err = blob.NewDir(filepath.Join(dir, "blobs")); err != nil {
		t.Fatal(err)
	}
	e.signer = &blob.LocalSigner{BaseURL: publicURL + "/files", Key: bytes.Repeat([]byte("k"), 32)}
	e.issuer, err = auth.NewIssuer(auth.IssuerConfig{Key: signingKey(), Issuer: testIssuer, TenantID: testTenant, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	org, err := e.db.OrgID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.builder = &snapshot.Builder{Source: e.db, Registry: e.db, Bucket: e.bucket, OrgID: org,
		LinesPerMember: 7, RecordsPerFile: 40, Now: e.clock.Now}
	e.cfg = Config{
		PublicURL:  publicURL,
		Registry:   e.db,
		Bucket:     e.bucket,
		Signer:     e.signer,
		LocalFiles: e.signer,
		Verifier: &auth.Verifier{Keys: e.issuer, Issuers: []string{testIssuer},
			Audiences: []string{auth.AudienceDefender, auth.AudienceCertinv}, Now: e.clock.Now},
		SkiptokenKey:         bytes.Repeat([]byte("s"), 32),
		JWKS:                 e.issuer.JWKS,
		EnrollmentSecretHash: sha256.Sum256([]byte(enrollment)),
		Now:                  e.clock.Now,
		Log:                  slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, o := range opts {
		o(&e.cfg)
	}
	if e.srv, err = New(e.cfg); err != nil {
		t.Fatal(err)
	}
	return e
}

var (
	certsOnce sync.Once
	certPool  []*testCert
)

// makeCerts returns n distinct parsed certificates (made once per binary).
func makeCerts(t testing.TB, n int) []*testCert {
	t.Helper()
	certsOnce.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		for i := range 256 {
			tmpl := &x509.Certificate{
				SerialNumber:          big.NewInt(int64(1000 + i)),
				Subject:               pkix.Name{CommonName: fmt.Sprintf("Test Cert %d", i), Organization: []string{"Certinv Tests"}},
				NotBefore:             time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
				NotAfter:              time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC),
				KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
				ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
				BasicConstraintsValid: true,
				IsCA:                  i%5 == 0,
			}
			der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
			if err != nil {
				panic(err)
			}
			c, err := certparse.Parse(der)
			if err != nil {
				panic(err)
			}
			certPool = append(certPool, &testCert{der: der, cert: c})
		}
	})
	if n > len(certPool) {
		t.Fatalf("makeCerts(%d): at most %d", n, len(certPool))
	}
	return certPool[:n]
}

// deviceID returns the i-th test device's id: 40 lowercase hex characters.
func deviceID(i int) string {
	s := sha1.Sum([]byte(fmt.Sprint("device", i)))
	return hex.EncodeToString(s[:])
}

// addDevices stores devices [from, to): device i holds certsPer certificates
// starting at (i*7)%len(certs), in group groupOf(i) ("" for none).
func (e *env) addDevices(from, to, certsPer int, groupOf func(int) string) {
	e.t.Helper()
	certs := makeCerts(e.t, 64)
	var sets []certinv.DeviceSet
	for i := from; i < to; i++ {
		set := certinv.DeviceSet{
			Device:    certinv.Device{ID: deviceID(i), Name: fmt.Sprintf("host%d.corp.example", i), OS: "Ubuntu 24.04", CollectedAt: e.clock.Now().Add(time.Duration(i) * time.Millisecond)},
			GroupName: groupOf(i),
		}
		for j := range certsPer {
			c := certs[(i*7+j)%len(certs)]
			set.Links = append(set.Links, certinv.Link{Path: "/etc/ssl/certs/" + c.cert.Thumbprint + ".pem", SHA256: c.cert.SHA256})
			set.New = append(set.New, certinv.StoredCertificate{SHA256: c.cert.SHA256, DER: c.der, JSON: certinv.AppendCertificateJSON(nil, c.cert)})
		}
		sets = append(sets, set)
	}
	results, err := e.db.ApplyDeviceSets(context.Background(), sets)
	if err != nil {
		e.t.Fatal(err)
	}
	for i, r := range results {
		if r.Err != nil {
			e.t.Fatalf("ApplyDeviceSets: set %d: %v", i, r.Err)
		}
	}
}

func groupByThree(i int) string {
	switch i % 3 {
	case 0:
		return "Servers"
	case 1:
		return "Workstations"
	}
	return "" // no group
}

// build builds and publishes a snapshot.
func (e *env) build() *certinv.Snapshot {
	e.t.Helper()
	s, err := e.builder.Build(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// appToken returns an application token with roles.
func (e *env) appToken(appID string, roles ...string) string {
	e.t.Helper()
	tok, err := e.issuer.Issue(auth.Claims{Audience: auth.AudienceDefender, AppID: appID, ObjectID: "sp-" + appID, Roles: roles})
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

func (e *env) userToken(oid string, scopes ...string) string {
	e.t.Helper()
	tok, err := e.issuer.Issue(auth.Claims{Audience: auth.AudienceCertinv, AppID: "portal", ObjectID: oid, UPN: oid + "@example.com", Scopes: scopes})
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

func (e *env) reader() string { return e.appToken("reader", certinv.RoleVulnerabilityReadAll) }

// do serves a request to target (a path, or an absolute URL under
// publicURL) with an optional bearer token.
func (e *env) do(method, target, token string, body io.Reader) *httptest.ResponseRecorder {
	e.t.Helper()
	target = strings.TrimPrefix(target, publicURL)
	r := httptest.NewRequest(method, target, body)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	e.srv.ServeHTTP(w, r)
	return w
}

// pageBody is a decoded JSON page.
type pageBody struct {
	Context  string            `json:"@odata.context"`
	Value    []json.RawMessage `json:"value"`
	NextLink string            `json:"@odata.nextLink"`
}

func decodePage(t testing.TB, w *httptest.ResponseRecorder) pageBody {
	t.Helper()
	if w.Code != http.StatusOK {
		t.Fatalf("status %d, want 200: %s", w.Code, w.Body)
	}
	var p pageBody
	dec := json.NewDecoder(w.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("decode page: %v", err)
	}
	return p
}

// traverse follows nextLinks from first and returns every record.
func (e *env) traverse(first, token string) []string {
	e.t.Helper()
	var out []string
	link := first
	for pages := 0; link != ""; pages++ {
		if pages > 10000 {
			e.t.Fatal("traversal does not end")
		}
		p := decodePage(e.t, e.do("GET", link, token, nil))
		for _, v := range p.Value {
			out = append(out, string(v))
		}
		link = p.NextLink
	}
	return out
}

// errBody is a decoded error answer.
type errBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Target  string `json:"target"`
	} `json:"error"`
	MissingCertificates []string `json:"missingCertificates"`
}

// wantError checks an error answer's status, code, message and target.
func wantError(t testing.TB, w *httptest.ResponseRecorder, status int, code, msgPart string) errBody {
	t.Helper()
	var b errBody
	if w.Code != status {
		t.Errorf("status = %d, want %d (body %s)", w.Code, status, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	dec := json.NewDecoder(bytes.NewReader(w.Body.Bytes()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		t.Fatalf("error body %s: %v", w.Body, err)
	}
	if b.Error.Code != code {
		t.Errorf("error code = %q, want %q", b.Error.Code, code)
	}
	if !strings.Contains(b.Error.Message, msgPart) {
		t.Errorf("error message = %q, want it to contain %q", b.Error.Message, msgPart)
	}
	if id := w.Header().Get("X-Request-Id"); id == "" || b.Error.Target != id {
		t.Errorf("error target = %q, X-Request-Id = %q, want the same non-empty id", b.Error.Target, id)
	}
	return b
}

// exportLines returns the records of the export's files, in order, read as
// a client would: signed URL, download, gunzip.
func (e *env) exportLines(token string) (lines []string, urls []string) {
	e.t.Helper()
	w := e.do("GET", PathExport, token, nil)
	if w.Code != http.StatusOK {
		e.t.Fatalf("export: %d %s", w.Code, w.Body)
	}
	var resp struct {
		Context       string   `json:"@odata.context"`
		ExportFiles   []string `json:"exportFiles"`
		GeneratedTime string   `json:"generatedTime"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
		e.t.Fatal(err)
	}
	for _, u := range resp.ExportFiles {
		d := e.do("GET", u, "", nil)
		if d.Code != http.StatusOK {
			e.t.Fatalf("download %s: %d %s", u, d.Code, d.Body)
		}
		zr, err := gzip.NewReader(d.Body)
		if err != nil {
			e.t.Fatal(err)
		}
		data, err := io.ReadAll(zr)
		if err != nil {
			e.t.Fatal(err)
		}
		for l := range strings.SplitSeq(strings.TrimSuffix(string(data), "\n"), "\n") {
			if l != "" {
				lines = append(lines, l)
			}
		}
	}
	return lines, resp.ExportFiles
}
