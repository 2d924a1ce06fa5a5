package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/certinv/certinv/blob"
	"github.com/certinv/certinv/httpapi"
	"github.com/certinv/certinv/ingest"
)

// serveOptions are the settings of `certinv serve` (and `certinv demo`).
type serveOptions struct {
	store             storeOptions
	addr              string
	publicURL         string
	snapshotInterval  time.Duration
	snapshotRetention time.Duration
	logLevel          string
	trustIssuers      specList // --trust-issuer, repeatable (app.go)
	trustConfig       string   // --trust-config FILE
	redis             string
	redisTimeout      time.Duration
	rateLimitFailOpen bool

	access accessOptions // rate limits, device credentials (admin.go)

	// now is the API's clock (rate limits, download URLs' times, snapshot
	// age); time.Now when nil. Tests set it.
	now func() time.Time
}

// minRetention is how long a superseded snapshot stays: long enough for
// every nextLink and download URL (valid 24 hours at most) made while it was
// the latest.
const minRetention = 25 * time.Hour

func (o *serveOptions) register(fs interface {
	StringVar(*string, string, string, string)
	DurationVar(*time.Duration, string, time.Duration, string)
	Var(flag.Value, string, string)
	IntVar(*int, string, int, string)
	BoolVar(*bool, string, bool, string)
}) {
	o.access.register(fs)
	o.store.register(fs)
	fs.StringVar(&o.addr, "addr", envOr("CERTINV_ADDR", "127.0.0.1:8080"), "address to listen on (env CERTINV_ADDR)")
	fs.StringVar(&o.publicURL, "public-url", envOr("CERTINV_PUBLIC_URL", ""), "base URL clients reach the server at, for nextLinks and download URLs (env CERTINV_PUBLIC_URL; default http://ADDR); behind a load balancer, its URL, the same on every replica")
	fs.DurationVar(&o.snapshotInterval, "snapshot-interval", 15*time.Minute, "how often to build a snapshot when the inventory changed")
	fs.DurationVar(&o.snapshotRetention, "snapshot-retention", minRetention, "how long a superseded snapshot is kept (at least 25h)")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.Var(&o.trustIssuers, "trust-issuer", "trust an identity provider's tokens (repeatable): discovery=URL or jwks=URL, audience=AUD (repeatable), issuer=ISS (repeatable); see docs/AUTH.md")
	fs.StringVar(&o.trustConfig, "trust-config", envOr("CERTINV_TRUST_CONFIG", ""), "JSON file of trusted identity providers (env CERTINV_TRUST_CONFIG); see docs/AUTH.md")
	fs.StringVar(&o.redis, "redis", envOr("CERTINV_REDIS", ""), "Redis URL (redis://[:password@]host:6379/0, rediss:// for TLS) that counts the rate limits of every replica together; default: in this process's memory (env CERTINV_REDIS)")
	fs.DurationVar(&o.redisTimeout, "redis-timeout", 500*time.Millisecond, "how long a rate limit check waits for Redis before it fails")
	fs.BoolVar(&o.rateLimitFailOpen, "rate-limit-fail-open", false, "when Redis does not answer, serve without rate limits instead of answering 503 (not recommended)")
}

func (o *serveOptions) check(cmd string) error {
	if err := o.store.check(cmd, needs{bucket: true, keys: true}); err != nil {
		return err
	}
	if err := o.access.check(cmd); err != nil {
		return err
	}
	if o.snapshotInterval < 10*time.Second {
		return &usageError{cmd + ": --snapshot-interval must be at least 10s"}
	}
	if o.snapshotRetention < minRetention {
		return &usageError{fmt.Sprintf("%s: --snapshot-retention must be at least %v, so that nextLinks and download URLs stay valid", cmd, minRetention)}
	}
	if o.redisTimeout <= 0 {
		return &usageError{cmd + ": --redis-timeout must be more than 0"}
	}
	if o.redis == "" && o.rateLimitFailOpen {
		return &usageError{cmd + ": --rate-limit-fail-open needs --redis (limits in memory cannot fail)"}
	}
	if o.publicURL != "" {
		u, err := url.Parse(o.publicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return &usageError{fmt.Sprintf("%s: --public-url %q: want an absolute http or https URL without query, such as https://certinv.example.com", cmd, o.publicURL)}
		}
		o.publicURL = strings.TrimRight(o.publicURL, "/")
	}
	return nil
}

// parseServe parses and checks the flags of `certinv serve`.
func parseServe(args []string, stderr io.Writer) (*serveOptions, error) {
	fs := newFlagSet("serve", stderr)
	o := &serveOptions{}
	o.register(fs)
	if err := parse(fs, args); err != nil {
		return nil, err
	}
	if err := o.check("serve"); err != nil {
		return nil, err
	}
	return o, nil
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseServe(args, stderr)
	if err != nil {
		return err
	}
	return serveOptionsRun(ctx, o, stdout, stderr)
}

// serveOptionsRun opens the state o names and serves it until ctx ends.
func serveOptionsRun(ctx context.Context, o *serveOptions, stdout, stderr io.Writer) error {
	log, err := newLogger(stderr, o.logLevel)
	if err != nil {
		return err
	}
	e, err := openEnv(ctx, &o.store, needs{bucket: true, keys: true}, log)
	if err != nil {
		return err
	}
	defer e.Close()
	return serve(ctx, e, o, func(addr, publicURL string) {
		fmt.Fprintf(stdout, "certinv is serving %s at %s (listening on %s)\n", e.where, publicURL, addr)
	})
}

// serve runs the HTTP server and the snapshot schedule on an opened state
// until ctx ends. listening is called with the listener's address and the
// public URL once the listener is open.
func serve(ctx context.Context, e *env, o *serveOptions, listening func(addr, publicURL string)) error {
	log := e.log
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.addr, err)
	}
	defer ln.Close()
	publicURL := o.publicURL
	if publicURL == "" {
		publicURL = "http://" + ln.Addr().String()
	}
	now := o.now
	if now == nil {
		now = time.Now
	}

	ea, err := newEmbeddedAuth(ctx, e, o, publicURL, log)
	if err != nil {
		return err
	}
	skipKey, err := e.keys.SkiptokenKey()
	if err != nil {
		return err
	}
	secret, err := e.keys.EnrollmentSecret()
	if err != nil {
		return err
	}
	// Download URLs: signed by the server and served under /files/ for the
	// data folder's files; real SAS URLs of the storage account otherwise.
	var (
		signer blob.URLSigner
		local  *blob.LocalSigner
	)
	if e.azure != nil {
		signer = e.azure
	} else {
		urlKey, err := e.keys.URLSigningKey()
		if err != nil {
			return err
		}
		local = &blob.LocalSigner{BaseURL: publicURL + "/files", Key: urlKey}
		signer = local
	}

	limits, closeLimits, err := newLimits(ctx, o, log)
	if err != nil {
		return err
	}
	defer closeLimits()

	// Replicas on a shared store take turns building (schedule.go).
	lock, _ := e.store.(buildLocker)
	sched := newSchedule(e.builder(), lock, o.snapshotInterval, o.snapshotRetention, log)

	api, err := httpapi.New(httpapi.Config{
		PublicURL:            publicURL,
		Registry:             e.store,
		Bucket:               e.bucket,
		Signer:               signer,
		LocalFiles:           local,
		Verifier:             ea.verifier,
		Tokens:               ea.tokens,
		Ingest:               &ingest.Service{Store: e.store, Now: time.Now, Log: log},
		EnrollmentSecretHash: sha256.Sum256([]byte(secret)),
		SkiptokenKey:         skipKey,
		JWKS:                 ea.issuer.JWKS,
		Readiness:            readinessChecks(e, limits, sched, now),
		Now:                  now,
		Log:                  log,

		// Delegated access by group, the admin API, device credentials and
		// rate limits (admin.go).
		Groups:                   httpapi.UserGroupsFunc(e.store),
		Admin:                    e.store,
		Devices:                  e.store,
		RequireDeviceCredentials: o.access.requireDeviceCredentials,
		PagesLimit:               limits.pages,
		ExportLimit:              limits.export,
	})
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           api,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       5 * time.Minute, // a report of 64 MiB on a slow link
		IdleTimeout:       2 * time.Minute,
		// No WriteTimeout: a page of 200,000 records streams for as long as
		// the client reads it.
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	scheduleDone := make(chan struct{})
	go func() {
		defer close(scheduleDone)
		sched.run(ctx)
	}()

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("serving", "addr", ln.Addr().String(), "public_url", publicURL, "state", e.where,
		"database", e.dbKind, "blob", e.blobKind, "rate_limits", limits.where, "build_lock", sched.lock != nil)
	listening(ln.Addr().String(), publicURL)

	select {
	case err = <-serveErr:
	case <-ctx.Done():
		log.Info("shutting down")
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = srv.Shutdown(sctx)
		scancel()
	}
	cancel()
	<-scheduleDone
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
