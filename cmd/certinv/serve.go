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
	data              string
	addr              string
	publicURL         string
	snapshotInterval  time.Duration
	snapshotRetention time.Duration
	logLevel          string
	trustIssuers      specList // --trust-issuer, repeatable (app.go)
	trustConfig       string   // --trust-config FILE

	access accessOptions // rate limits, device credentials (admin.go)
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
	fs.StringVar(&o.data, "data", envOr("CERTINV_DATA", o.data), "data folder (env CERTINV_DATA)")
	fs.StringVar(&o.addr, "addr", envOr("CERTINV_ADDR", "127.0.0.1:8080"), "address to listen on (env CERTINV_ADDR)")
	fs.StringVar(&o.publicURL, "public-url", envOr("CERTINV_PUBLIC_URL", ""), "base URL clients reach the server at, for nextLinks and download URLs (env CERTINV_PUBLIC_URL; default http://ADDR)")
	fs.DurationVar(&o.snapshotInterval, "snapshot-interval", 15*time.Minute, "how often to build a snapshot when the inventory changed")
	fs.DurationVar(&o.snapshotRetention, "snapshot-retention", minRetention, "how long a superseded snapshot is kept (at least 25h)")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.Var(&o.trustIssuers, "trust-issuer", "trust an identity provider's tokens (repeatable): discovery=URL or jwks=URL, audience=AUD (repeatable), issuer=ISS (repeatable); see docs/AUTH.md")
	fs.StringVar(&o.trustConfig, "trust-config", envOr("CERTINV_TRUST_CONFIG", ""), "JSON file of trusted identity providers (env CERTINV_TRUST_CONFIG); see docs/AUTH.md")
}

func (o *serveOptions) check(cmd string) error {
	if o.data == "" {
		return &usageError{cmd + ": --data DIR is required"}
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
	if o.publicURL != "" {
		u, err := url.Parse(o.publicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return &usageError{fmt.Sprintf("%s: --public-url %q: want an absolute http or https URL without query, such as https://certinv.example.com", cmd, o.publicURL)}
		}
		o.publicURL = strings.TrimRight(o.publicURL, "/")
	}
	return nil
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", stderr)
	var o serveOptions
	o.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := o.check("serve"); err != nil {
		return err
	}
	log, err := newLogger(stderr, o.logLevel)
	if err != nil {
		return err
	}
	e, err := openEnv(ctx, o.data, log)
	if err != nil {
		return err
	}
	defer e.Close()
	return serve(ctx, e, &o, func(publicURL string) {
		fmt.Fprintf(stdout, "certinv is serving %s at %s\n", e.dir.Root, publicURL)
	})
}

// serve runs the HTTP server and the snapshot schedule on an opened data
// folder until ctx ends. listening is called with the public URL once the
// listener is open.
func serve(ctx context.Context, e *env, o *serveOptions, listening func(publicURL string)) error {
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

	ea, err := newEmbeddedAuth(ctx, e, o, publicURL, log)
	if err != nil {
		return err
	}
	skipKey, err := e.dir.SkiptokenKey()
	if err != nil {
		return err
	}
	urlKey, err := e.dir.URLSigningKey()
	if err != nil {
		return err
	}
	secret, err := e.dir.EnrollmentSecret()
	if err != nil {
		return err
	}
	files := &blob.LocalSigner{BaseURL: publicURL + "/files", Key: urlKey}
	api, err := httpapi.New(httpapi.Config{
		PublicURL:            publicURL,
		Registry:             e.db,
		Bucket:               e.bucket,
		Signer:               files,
		LocalFiles:           files,
		Verifier:             ea.verifier,
		Tokens:               ea.tokens,
		Ingest:               &ingest.Service{Store: e.db, Now: time.Now, Log: log},
		EnrollmentSecretHash: sha256.Sum256([]byte(secret)),
		SkiptokenKey:         skipKey,
		JWKS:                 ea.issuer.JWKS,
		Log:                  log,

		// Delegated access by group, the admin API, device credentials and
		// rate limits (admin.go).
		Groups:                   httpapi.UserGroupsFunc(e.db),
		Admin:                    e.db,
		Devices:                  e.db,
		RequireDeviceCredentials: o.access.requireDeviceCredentials,
		PagesLimit:               o.access.pages,
		ExportLimit:              o.access.export,
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
		runSchedule(ctx, e, o.snapshotInterval, o.snapshotRetention)
	}()

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("serving", "addr", ln.Addr().String(), "public_url", publicURL, "data", e.dir.Root)
	listening(publicURL)

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

// runSchedule builds a snapshot at once when the inventory changed since the
// last one, then every interval when it changed again, and retires
// snapshots superseded longer than retention ago. It returns when ctx ends.
func runSchedule(ctx context.Context, e *env, interval, retention time.Duration) {
	b := e.builder()
	tick := func() {
		// The builder logs its progress and what it published.
		if _, _, err := b.BuildIfChanged(ctx); err != nil && ctx.Err() == nil {
			e.log.Error("snapshot build failed; the previous snapshot keeps serving", "err", err)
		}
		if n, err := b.Retire(ctx, retention); err != nil && ctx.Err() == nil {
			e.log.Error("retiring old snapshots failed", "err", err)
		} else if n > 0 {
			e.log.Info("snapshots retired", "count", n)
		}
	}
	tick()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			tick()
		}
	}
}
