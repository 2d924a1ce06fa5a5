// Package servertest runs a real certinv server for the tests of clients and
// agents: httpapi over SQLite in a temporary folder with the ingest service,
// on a loopback listener. It counts the requests and the bytes that cross
// the connection, and can play a server that is down or overloaded.
//
// It links the server's packages; import it from tests only, never from the
// agent (cmd/certinv-agent's dependency test checks this).
package servertest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certinv/certinv"
	"github.com/certinv/certinv/blob"
	"github.com/certinv/certinv/httpapi"
	"github.com/certinv/certinv/ingest"
	"github.com/certinv/certinv/sqlite"
)

// Secret is the enrollment secret the server takes.
const Secret = "servertest-enrollment-secret-0123456789"

// Server is a running certinv server.
type Server struct {
	URL string        // base URL, http://127.0.0.1:port
	DB  *sqlite.DB    // the store behind it
	Log *bytes.Buffer // the server's log (debug level)

	srv      *httptest.Server
	requests atomic.Int64
	reports  atomic.Int64
	written  atomic.Int64 // bytes the server received
	read     atomic.Int64 // bytes the server sent

	mu         sync.Mutex
	mode       Mode
	retryAfter int
	onRequest  func(r *http.Request)
}

// Mode is how the server answers.
type Mode int

// The modes of a Server.
const (
	Up          Mode = iota // the real API answers
	Unavailable             // every request gets 503 with Retry-After
	Cut                     // every connection is closed without an answer
)

// New starts a server on real SQLite in t.TempDir, with the clock now (nil
// for time.Now). It stops when the test ends.
func New(t testing.TB, now func() time.Time) *Server {
	t.Helper()
	s := &Server{Log: new(bytes.Buffer)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Start(t, ln, now)
	return s
}

// Start serves on ln: New uses it, and a test that plays a server that was
// down comes up with it on the address it reserved.
func (s *Server) Start(t testing.TB, ln net.Listener, now func() time.Time) {
	t.Helper()
	ctx := context.Background()
	if s.Log == nil {
		s.Log = new(bytes.Buffer)
	}
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "certinv.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	bucket, err := blob.NewDir(filepath.Join(dir, "files"))
	if err != nil {
		t.Fatal(err)
	}
	signer := &blob.LocalSigner{BaseURL: "http://" + ln.Addr().String() + "/files", Key: bytes.Repeat([]byte("k"), 32)}
	log := slog.New(slog.NewTextHandler(&lockedWriter{w: s.Log}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	api, err := httpapi.New(httpapi.Config{
		PublicURL:            "http://" + ln.Addr().String(),
		Registry:             db,
		Bucket:               bucket,
		Signer:               signer,
		LocalFiles:           signer,
		Verifier:             refuseTokens{},
		Ingest:               &ingest.Service{Store: db, Now: now, Log: log},
		EnrollmentSecretHash: sha256.Sum256([]byte(Secret)),
		Devices:              db,
		SkiptokenKey:         bytes.Repeat([]byte("s"), 32),
		Now:                  now,
		Log:                  log,
	})
	if err != nil {
		t.Fatal(err)
	}
	s.DB = db
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		if r.URL.Path == httpapi.PathReports {
			s.reports.Add(1)
		}
		s.mu.Lock()
		mode, ra, hook := s.mode, s.retryAfter, s.onRequest
		s.mu.Unlock()
		if hook != nil {
			hook(r)
		}
		switch mode {
		case Unavailable:
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Retry-After", strconv.Itoa(ra))
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"error":{"code":"ServiceUnavailable","message":"down for a test","target":"t"}}`)
		case Cut:
			panic(http.ErrAbortHandler)
		default:
			api.ServeHTTP(w, r)
		}
	}))
	s.srv.Listener = &countingListener{Listener: ln, s: s}
	s.srv.Config.ErrorLog = nil
	s.srv.Start()
	s.URL = s.srv.URL
	t.Cleanup(s.srv.Close)
}

// SetMode changes how the server answers; retryAfter is the Retry-After, in
// seconds, of Unavailable.
func (s *Server) SetMode(m Mode, retryAfter int) {
	s.mu.Lock()
	s.mode, s.retryAfter = m, retryAfter
	s.mu.Unlock()
}

// OnRequest calls fn with every request before it is answered.
func (s *Server) OnRequest(fn func(r *http.Request)) {
	s.mu.Lock()
	s.onRequest = fn
	s.mu.Unlock()
}

// Requests returns the requests served so far, and those of them to the
// report endpoint.
func (s *Server) Requests() (all, reports int64) { return s.requests.Load(), s.reports.Load() }

// Bytes returns the bytes received from clients and sent to them so far,
// counted on the connections: headers and bodies, as on the wire.
func (s *Server) Bytes() (received, sent int64) { return s.written.Load(), s.read.Load() }

// ResetCounters sets the request and byte counters to zero.
func (s *Server) ResetCounters() {
	s.requests.Store(0)
	s.reports.Store(0)
	s.written.Store(0)
	s.read.Store(0)
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Paths returns the paths of the certificates the store holds for a
// device, each with how many certificates it holds there.
func (s *Server) Paths(ctx context.Context, deviceID string) (map[string]int, error) {
	out := map[string]int{}
	_, err := s.DB.ReadInventory(ctx, func(r *certinv.InventoryRow) error {
		if r.DeviceID == deviceID {
			out[r.Path]++
		}
		return nil
	})
	return out, err
}

type refuseTokens struct{}

func (refuseTokens) Verify(context.Context, string) (*certinv.Principal, error) {
	return nil, certinv.Errorf(certinv.EUnauthorized, "servertest takes no tokens")
}

type countingListener struct {
	net.Listener
	s *Server
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, s: l.s}, nil
}

type countingConn struct {
	net.Conn
	s *Server
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.s.written.Add(int64(n))
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.s.read.Add(int64(n))
	return n, err
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

var (
	certsMu sync.Mutex
	certKey *rsa.PrivateKey
	certs   [][]byte
)

// Certificates returns n distinct DER certificates, made once per test
// binary: RSA 2048 CA certificates of the size of a typical root.
func Certificates(t testing.TB, n int) [][]byte {
	t.Helper()
	certsMu.Lock()
	defer certsMu.Unlock()
	if certKey == nil {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		certKey = k
	}
	for len(certs) < n {
		i := len(certs)
		tmpl := &x509.Certificate{
			SerialNumber:          big.NewInt(int64(7000 + i)),
			Subject:               pkix.Name{CommonName: fmt.Sprintf("Servertest Root CA %d", i), Organization: []string{"Certinv Tests"}, Country: []string{"DE"}},
			NotBefore:             time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
			NotAfter:              time.Date(2035, 1, 1, 0, 0, 0, 0, time.UTC),
			KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
			BasicConstraintsValid: true,
			IsCA:                  true,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &certKey.PublicKey, certKey)
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, der)
	}
	return certs[:n]
}
