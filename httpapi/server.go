// Package httpapi serves the certificate export API of CONTRACT.md over
// HTTP: the JSON pages (CertificateAssessmentByMachine) streamed from the
// latest snapshot's files, the export file list (CertificateAssessmentExport)
// with signed URLs, the downloads of a local bucket, the agents' report
// upload, the issuer's keys and a health check. It authenticates callers with
// bearer tokens, applies their RBAC group scope, and maps every domain error
// kind to one HTTP status and contract error code.
package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/certinv/certinv"
	"github.com/certinv/certinv/blob"
	"github.com/certinv/certinv/snapshot"
)

// TokenVerifier turns a bearer token into a principal; *auth.Verifier is one.
// A refusal is an *certinv.Error of kind EUnauthorized.
type TokenVerifier interface {
	Verify(ctx context.Context, token string) (*certinv.Principal, error)
}

// Ingester stores an agent's report; *ingest.Service is one.
type Ingester interface {
	Ingest(ctx context.Context, r *certinv.Report) (*certinv.IngestResult, error)
}

// GroupsFunc returns the RBAC groups a caller may see: all of them, or those
// listed.
type GroupsFunc func(ctx context.Context, p *certinv.Principal) (all bool, groupIDs []int64, err error)

// DefaultGroups gives applications every group and delegated users none:
// assigning groups to users comes with a later change, and until then a
// user must see nothing rather than everything.
func DefaultGroups(_ context.Context, p *certinv.Principal) (bool, []int64, error) {
	if p.Delegated() {
		return false, nil, nil
	}
	return true, nil, nil
}

// Config configures a Server. Fields marked required must be set.
type Config struct {
	// PublicURL is the base URL clients reach the server at, without a
	// trailing slash ("https://certinv.example.com"): nextLinks and
	// @odata.context are built from it, never from the request's Host.
	// Required.
	PublicURL string

	// Registry says which snapshots are published. Required.
	Registry certinv.SnapshotRegistry
	// Bucket holds the snapshot files. Required.
	Bucket blob.Bucket
	// Signer makes the export's download URLs. Required.
	Signer blob.URLSigner
	// LocalFiles, when not nil, verifies the download URLs that the server
	// serves itself under /files/; nil when the bucket serves its own URLs.
	LocalFiles *blob.LocalSigner

	// Verifier checks bearer tokens of the export API. Required.
	Verifier TokenVerifier
	// Groups gives a caller's RBAC group scope; DefaultGroups when nil.
	Groups GroupsFunc

	// Ingest stores agents' reports; nil disables POST /api/agent/reports.
	Ingest Ingester
	// EnrollmentSecretHash is the SHA-256 of the secret agents present as
	// their bearer token. Required when Ingest is set (all zero is refused).
	EnrollmentSecretHash [32]byte
	// Devices keeps device credentials: when set, POST /api/agent/enroll
	// gives each device its own credential, a device credential may report
	// only for its device, and a revoked or enrolled device cannot report
	// with the bare enrollment secret. Needs Ingest.
	Devices certinv.DeviceCredentials
	// RequireDeviceCredentials refuses reports made with the bare
	// enrollment secret (403); by default agents that never enrolled may
	// still report with it.
	RequireDeviceCredentials bool

	// PagesLimit and ExportLimit limit the calls of each application and
	// tenant to the JSON pages and to the export (limits.go); nil does not
	// limit. Downloads of export files are never limited.
	PagesLimit, ExportLimit *RateLimit

	// Admin, when set, serves the admin API under /api/admin/ (admin.go)
	// to tokens with the role certinv.RoleAdmin.
	Admin AdminStore

	// SkiptokenKey signs the $skiptoken of nextLinks: at least 32 random
	// bytes, the same on every replica. Required.
	SkiptokenKey []byte

	// JWKS returns the embedded issuer's JSON Web Key Set, served at
	// /.well-known/jwks.json and /discovery/v2.0/keys; nil serves 404 there.
	JWKS func() []byte
	// Tokens, when set, serves the embedded issuer's client-credentials
	// token endpoints and its OpenID discovery document (token.go).
	Tokens *TokenConfig

	// Ready reports whether the server may take traffic (/healthz); when nil,
	// it is ready once a snapshot is published.
	Ready func() bool
	// Readiness are the dependencies GET /readyz checks (health.go); when
	// empty, it reports the latest snapshot alone.
	Readiness []ReadinessCheck

	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Log receives the access log and internal errors; slog.Default() when nil.
	Log *slog.Logger
}

// Server is the HTTP handler of the API. It is safe for concurrent use.
type Server struct {
	cfg        Config
	log        *slog.Logger
	now        func() time.Time
	groups     GroupsFunc
	pageCtx    []byte // `{"@odata.context":"...","value":[`
	exportCtx  string
	nextPrefix string // PublicURL + path + "?pagesize="
	manifests  manifestCache
	routes     map[string]route // by lower-case path
	adminMux   *http.ServeMux   // routes of /api/admin/, when cfg.Admin is set
}

type route struct {
	methods string // "GET", "POST": the allowed method (HEAD goes with GET)
	handle  func(w http.ResponseWriter, r *http.Request) error
}

// Paths of the API, in their canonical spelling.
const (
	PathPages   = "/api/machines/CertificateAssessmentByMachine"
	PathExport  = "/api/machines/CertificateAssessmentExport"
	PathReports = "/api/agent/reports"
	PathFiles   = "/files/"
)

// MinSkiptokenKeyBytes is the shortest SkiptokenKey New accepts.
const MinSkiptokenKeyBytes = 32

// New returns a Server for cfg.
func New(cfg Config) (*Server, error) {
	switch {
	case cfg.Registry == nil, cfg.Bucket == nil, cfg.Signer == nil, cfg.Verifier == nil:
		return nil, errors.New("httpapi: Registry, Bucket, Signer and Verifier are required")
	case len(cfg.SkiptokenKey) < MinSkiptokenKeyBytes:
		return nil, fmt.Errorf("httpapi: SkiptokenKey must be at least %d bytes", MinSkiptokenKeyBytes)
	case cfg.Ingest != nil && cfg.EnrollmentSecretHash == [32]byte{}:
		return nil, errors.New("httpapi: Ingest needs an EnrollmentSecretHash")
	}
	u, err := url.Parse(cfg.PublicURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("httpapi: PublicURL %q must be an absolute http(s) URL without query", cfg.PublicURL)
	}
	base := strings.TrimSuffix(cfg.PublicURL, "/")
	s := &Server{
		cfg:        cfg,
		log:        cfg.Log,
		now:        cfg.Now,
		groups:     cfg.Groups,
		nextPrefix: base + PathPages + "?pagesize=",
		exportCtx:  base + "/api/$metadata#microsoft.windowsDefenderATP.api.ExportFilesResponse",
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.groups == nil {
		s.groups = DefaultGroups
	}
	pageCtx, _ := json.Marshal(base + "/api/$metadata#Collection(microsoft.windowsDefenderATP.api.AssetCertificateAssessment)")
	s.pageCtx = append(append([]byte(`{"@odata.context":`), pageCtx...), `,"value":[`...)
	s.manifests.max = manifestCacheSize

	s.routes = map[string]route{
		strings.ToLower(PathPages):    {"GET", s.handlePages},
		strings.ToLower(PathExport):   {"GET", s.handleExport},
		"/healthz":                    {"GET", s.handleHealth},
		"/readyz":                     {"GET", s.handleReady},
		"/.well-known/jwks.json":      {"GET", s.handleJWKS},
		"/discovery/v2.0/keys":        {"GET", s.handleJWKS},
		strings.ToLower(PathMetadata): {"GET", s.handleMetadata},
	}
	if cfg.Ingest != nil {
		s.routes[strings.ToLower(PathReports)] = route{"POST", s.handleReport}
		if cfg.Devices != nil {
			s.routes[strings.ToLower(PathEnroll)] = route{"POST", s.handleEnroll}
		}
	}
	if cfg.PagesLimit != nil || cfg.ExportLimit != nil {
		// The limiter authenticates the caller first; the handler then
		// finds the principal in the request instead of verifying again.
		s.cfg.Verifier = memoVerifier{cfg.Verifier}
	}
	if cfg.Admin != nil {
		s.adminMux = s.newAdminMux()
	}
	if err := s.addTokenRoutes(); err != nil {
		return nil, err
	}
	return s, nil
}

// ServeHTTP implements http.Handler: it gives the request an id, routes it,
// answers errors with the contract's body and writes one access log line.
func (s *Server) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := certinv.NewGUID()
	ctx := context.WithValue(r.Context(), requestIDKey{}, id)
	r = r.WithContext(ctx)
	w := &responseRecorder{ResponseWriter: rw}
	w.Header().Set("X-Request-Id", id)
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				s.accessLog(ctx, r, w, start)
				panic(v)
			}
			s.log.ErrorContext(ctx, "panic serving request", "request_id", id, "panic", v)
			if !w.wroteHeader {
				s.writeError(ctx, w, fmt.Errorf("panic: %v", v))
			}
		}
		s.accessLog(ctx, r, w, start)
	}()

	if err := s.route(w, r); err != nil {
		if w.wroteHeader {
			// The status is sent: the body can only be cut short, which a
			// client sees as a broken response rather than a complete one.
			s.log.ErrorContext(ctx, "response failed after it started", "request_id", id, "err", err)
			panic(http.ErrAbortHandler)
		}
		s.writeError(ctx, w, err)
	}
}

func (s *Server) route(w http.ResponseWriter, r *http.Request) error {
	path := r.URL.Path
	if strings.HasPrefix(path, PathFiles) {
		// Object keys are case-sensitive: this route is not normalised.
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			s.methodNotAllowed(r.Context(), w, r, "GET, HEAD")
			return nil
		}
		return s.handleFile(w, r)
	}
	if s.adminMux != nil && strings.HasPrefix(path, PathAdmin) {
		return s.handleAdmin(w, r)
	}
	rt, ok := s.routes[strings.ToLower(path)]
	if !ok {
		return certinv.Errorf(certinv.ENotFound, "no resource at %s", truncate(path, 200))
	}
	if r.Method != rt.methods && !(rt.methods == http.MethodGet && r.Method == http.MethodHead) {
		allow := rt.methods
		if allow == http.MethodGet {
			allow = "GET, HEAD"
		}
		s.methodNotAllowed(r.Context(), w, r, allow)
		return nil
	}
	r, err := s.limit(r, strings.ToLower(path))
	if err != nil {
		return err
	}
	return rt.handle(w, r)
}

func (s *Server) accessLog(ctx context.Context, r *http.Request, w *responseRecorder, start time.Time) {
	status := w.status
	if status == 0 {
		status = http.StatusOK
	}
	// The path only: the query may hold a skiptoken or a SAS signature.
	s.log.LogAttrs(ctx, slog.LevelInfo, "http request",
		slog.String("method", r.Method),
		slog.String("path", truncate(r.URL.Path, 512)),
		slog.Int("status", status),
		slog.Int64("bytes", w.bytes),
		slog.Duration("duration", time.Since(start)),
		slog.String("request_id", requestID(ctx)),
	)
}

type requestIDKey struct{}

func requestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// responseRecorder remembers the status and counts the body bytes.
type responseRecorder struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
}

func (w *responseRecorder) WriteHeader(code int) {
	if !w.wroteHeader {
		w.status = code
		w.wroteHeader = true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseRecorder) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *responseRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// writeJSON writes v as the whole response.
func writeJSON(ctx context.Context, log *slog.Logger, w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		log.ErrorContext(ctx, "encode response", "request_id", requestID(ctx), "err", err)
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"InternalServerError","message":"An internal error occurred.","target":"` + requestID(ctx) + `"}}`)
	}
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
	}
	w.WriteHeader(status)
	if _, err := w.Write(b); err != nil {
		logWriteError(ctx, log, err)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// manifestCacheSize bounds the manifests kept in memory: the latest few
// snapshots are the ones traversals read.
const manifestCacheSize = 8

// manifestCache keeps the manifests of snapshots by id. Snapshots are
// immutable, so an entry never goes stale; it only goes out of use.
type manifestCache struct {
	mu    sync.Mutex
	max   int
	items map[string]*snapshot.Manifest
	order []string // oldest first
}

func (c *manifestCache) get(id string) *snapshot.Manifest {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.items[id]
}

func (c *manifestCache) put(id string, m *snapshot.Manifest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.items == nil {
		c.items = make(map[string]*snapshot.Manifest)
	}
	if _, ok := c.items[id]; ok {
		return
	}
	for len(c.order) >= c.max {
		delete(c.items, c.order[0])
		c.order = c.order[1:]
	}
	c.items[id] = m
	c.order = append(c.order, id)
}

// manifest returns the manifest of snap, read once per snapshot.
func (s *Server) manifest(ctx context.Context, snap *certinv.Snapshot) (*snapshot.Manifest, error) {
	if m := s.manifests.get(snap.ID); m != nil {
		return m, nil
	}
	m, err := snapshot.ReadManifest(ctx, s.cfg.Bucket, snap.ManifestKey)
	if err != nil {
		return nil, fmt.Errorf("read manifest of snapshot %s: %w", snap.ID, err)
	}
	s.manifests.put(snap.ID, m)
	return m, nil
}

// secretDigest is the SHA-256 that enrollment secrets are compared by.
func secretDigest(secret string) [32]byte { return sha256.Sum256([]byte(secret)) }
