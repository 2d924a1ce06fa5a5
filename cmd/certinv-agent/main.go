// Command certinv-agent reports a device's certificates to a certinv server:
// at start, then every 6 hours with jitter, or once with --once. It runs as
// a systemd service, a Windows service or a launchd daemon (docs/AGENT.md).
// Wiring only: package agent does the work. It links no SQL driver and no
// cloud SDK; a test checks its dependency list.
package main

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/certinv/certinv/agent"
	"github.com/certinv/certinv/client"
	"github.com/certinv/certinv/scan"
)

// version is set at build time: go build -ldflags "-X main.version=1.2.3".
var version = ""

func main() {
	if handled, code := runService(); handled {
		os.Exit(code)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(os.Stderr, "certinv-agent: %v\n", err)
		}
		os.Exit(exitCode(err))
	}
}

// usageError is a mistake in the command line: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func exitCode(err error) int {
	var u *usageError
	if errors.As(err, &u) || errors.Is(err, flag.ErrHelp) {
		return 2
	}
	return 1
}

const usage = `certinv-agent: report this device's certificates to a certinv server.

Usage:
  certinv-agent run --server URL --secret-file FILE [--interval 6h] [--once]
                    [--path P ...] [--exclude P ...] [--password-file F]
                    [--state DIR] [--group NAME] [--device-name FQDN]
  certinv-agent identity [--state DIR]     print the device's id, name and OS
  certinv-agent version

Run 'certinv-agent run -h' for every flag. Flags default to environment
variables: CERTINV_SERVER, CERTINV_SECRET_FILE, CERTINV_INTERVAL, CERTINV_PATHS
(separated by the system's list separator), CERTINV_PASSWORD_FILE,
CERTINV_STATE_DIR, CERTINV_GROUP, CERTINV_DEVICE_NAME, CERTINV_CA_FILE,
CERTINV_LOG_LEVEL. Under systemd, the secret defaults to the credential
$CREDENTIALS_DIRECTORY/enrollment-secret and the state to $STATE_DIRECTORY.
`

// hooks replace the agent's clock, sleep and collector in tests.
type hooks struct {
	now     func() time.Time
	sleep   func(context.Context, time.Duration) error
	collect agent.Collector
}

// run is the whole program, testable: it parses args, does the work and
// returns when done or when ctx ends.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runWith(ctx, args, stdout, stderr, hooks{})
}

func runWith(ctx context.Context, args []string, stdout, stderr io.Writer, h hooks) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return &usageError{"no command given"}
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "run":
		return runAgent(ctx, rest, stderr, h)
	case "identity":
		return runIdentity(ctx, rest, stdout, stderr)
	case "version":
		fmt.Fprintf(stdout, "certinv-agent %s %s/%s %s\n", agentVersion(), runtime.GOOS, runtime.GOARCH, runtime.Version())
		return nil
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return &usageError{fmt.Sprintf("unknown command %q", cmd)}
	}
}

// agentVersion is the build's version: set by -ldflags, else the module's
// version when built with go install, else "dev".
func agentVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

type runConfig struct {
	server, secretFile, passwordFile, state, group, deviceName, caFile string
	logLevel, logFormat, logFile                                       string
	interval                                                           time.Duration
	once, allowHTTP                                                    bool
	paths, exclude                                                     stringList
	maxFileBytes                                                       int64
	maxDepth, maxProcs                                                 int
	memoryLimit                                                        int64
}

func runAgent(ctx context.Context, args []string, stderr io.Writer, h hooks) error {
	var c runConfig
	fs := flag.NewFlagSet("certinv-agent run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.server, "server", os.Getenv("CERTINV_SERVER"), "`URL` of the certinv server (https://certinv.example.com)")
	fs.StringVar(&c.secretFile, "secret-file", defaultSecretFile(), "`file` holding the enrollment secret")
	interval, err := envDuration("CERTINV_INTERVAL", agent.DefaultInterval)
	if err != nil {
		return err
	}
	fs.DurationVar(&c.interval, "interval", interval, "time between reports (each shifted at random by up to 10%, at most 30m)")
	fs.BoolVar(&c.once, "once", false, "report once and exit; non-zero exit status if the report failed")
	fs.Var(&c.paths, "path", "file, folder or glob to scan, repeatable (default: the system's places)")
	fs.Var(&c.exclude, "exclude", "pattern of paths not to read, repeatable")
	fs.StringVar(&c.passwordFile, "password-file", os.Getenv("CERTINV_PASSWORD_FILE"), "`file` of PKCS#12 passwords to try, one per line")
	fs.StringVar(&c.state, "state", envOr("CERTINV_STATE_DIR", agent.DefaultStateDir()), "`folder` keeping the device id")
	fs.StringVar(&c.group, "group", os.Getenv("CERTINV_GROUP"), "RBAC device group to place the device in")
	fs.StringVar(&c.deviceName, "device-name", os.Getenv("CERTINV_DEVICE_NAME"), "device name to report (default: the FQDN)")
	fs.StringVar(&c.caFile, "ca-file", os.Getenv("CERTINV_CA_FILE"), "PEM `file` of CA certificates to trust for the server instead of the system's")
	fs.BoolVar(&c.allowHTTP, "allow-http", false, "allow a plain http:// server URL to another host (the secret then crosses the network in clear text)")
	fs.Int64Var(&c.maxFileBytes, "max-file-bytes", scan.DefaultMaxFileBytes, "skip larger files")
	fs.IntVar(&c.maxDepth, "max-depth", 32, "how deep to walk folders")
	fs.IntVar(&c.maxProcs, "max-procs", 1, "CPU cores the agent may use at once")
	fs.Int64Var(&c.memoryLimit, "memory-limit", 256<<20, "soft memory limit in bytes (the garbage collector works harder near it)")
	fs.StringVar(&c.logLevel, "log-level", envOr("CERTINV_LOG_LEVEL", "info"), "debug, info, warn or error")
	fs.StringVar(&c.logFormat, "log-format", "text", "text or json")
	fs.StringVar(&c.logFile, "log-file", "", "append the log to this `file` instead of standard error")
	if err := parse(fs, args); err != nil {
		return err
	}
	if len(c.paths) == 0 {
		if env := os.Getenv("CERTINV_PATHS"); env != "" {
			c.paths = filepath.SplitList(env)
		}
	}
	switch {
	case c.server == "":
		return &usageError{"--server is required (or CERTINV_SERVER)"}
	case c.secretFile == "":
		return &usageError{"--secret-file is required (or CERTINV_SECRET_FILE)"}
	case c.interval < time.Minute:
		return &usageError{fmt.Sprintf("--interval %v is too short: at least 1m", c.interval)}
	case c.maxProcs < 1:
		return &usageError{"--max-procs must be at least 1"}
	}

	logOut := stderr
	if c.logFile != "" {
		f, err := os.OpenFile(c.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("open log file: %w", err)
		}
		defer f.Close()
		logOut = f
	}
	log, err := newLogger(logOut, c.logLevel, c.logFormat)
	if err != nil {
		return err
	}

	// Stay out of the device's way: one core, a soft memory limit, low
	// CPU and I/O priority.
	runtime.GOMAXPROCS(c.maxProcs)
	if c.memoryLimit > 0 {
		debug.SetMemoryLimit(c.memoryLimit)
	}
	if err := agent.LowerPriority(); err != nil {
		log.Warn("could not lower the agent's priority", "err", err)
	}

	secret, err := readSecret(c.secretFile, log)
	if err != nil {
		return err
	}
	var passwords []string
	if c.passwordFile != "" {
		if passwords, err = readPasswords(c.passwordFile); err != nil {
			return err
		}
	}
	opts := []client.Option{client.WithUserAgent("certinv-agent/" + agentVersion())}
	if c.allowHTTP {
		opts = append(opts, client.WithAllowHTTP())
	}
	if c.caFile != "" {
		pem, err := os.ReadFile(c.caFile)
		if err != nil {
			return fmt.Errorf("read --ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("--ca-file %s holds no PEM certificate", c.caFile)
		}
		opts = append(opts, client.WithRootCAs(pool))
	}
	cl, err := client.New(c.server, opts...)
	if err != nil {
		return &usageError{err.Error()}
	}
	id, err := agent.LoadIdentity(ctx, c.state, c.deviceName, log)
	if err != nil {
		return err
	}
	collect := h.collect
	if collect == nil {
		collect = agent.ScanCollector(scan.Options{Paths: c.paths, Passwords: passwords, MaxFileBytes: c.maxFileBytes, MaxDepth: c.maxDepth, Exclude: c.exclude})
	}
	a := &agent.Agent{
		Client:   cl,
		Secret:   secret,
		Collect:  collect,
		Device:   id,
		Group:    c.group,
		Interval: c.interval,
		StateDir: c.state,
		Now:      h.now,
		Sleep:    h.sleep,
		Log:      log,
	}
	log.Info("certinv-agent starting", "version", agentVersion(), "server", cl.BaseURL(), "device_id", id.ID,
		"device_name", id.Name, "os", id.OS, "group", c.group, "interval", c.interval, "once", c.once, "paths", len(c.paths))
	if c.once {
		_, err := a.ReportOnce(ctx)
		return err
	}
	return a.Run(ctx)
}

func runIdentity(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("certinv-agent identity", flag.ContinueOnError)
	fs.SetOutput(stderr)
	state := fs.String("state", envOr("CERTINV_STATE_DIR", agent.DefaultStateDir()), "`folder` keeping the device id")
	name := fs.String("device-name", os.Getenv("CERTINV_DEVICE_NAME"), "device name (default: the FQDN)")
	if err := parse(fs, args); err != nil {
		return err
	}
	id, err := agent.LoadIdentity(ctx, *state, *name, nil)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "deviceId:   %s\ndeviceName: %s\nosPlatform: %s\n", id.ID, id.Name, id.OS)
	return nil
}

// parse parses args and turns flag errors and stray arguments into usage errors.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return &usageError{fmt.Sprintf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))}
	}
	return nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func envDuration(name string, def time.Duration) (time.Duration, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, &usageError{fmt.Sprintf("%s=%q: want a duration such as 6h", name, v)}
	}
	return d, nil
}

// defaultSecretFile is CERTINV_SECRET_FILE, else systemd's credential
// (LoadCredential=enrollment-secret:...).
func defaultSecretFile() string {
	if v := os.Getenv("CERTINV_SECRET_FILE"); v != "" {
		return v
	}
	if d := os.Getenv("CREDENTIALS_DIRECTORY"); d != "" {
		return filepath.Join(d, "enrollment-secret")
	}
	return ""
}

// maxSecretBytes bounds the secret file: a secret is a line, not a file.
const maxSecretBytes = 4096

// readSecret reads the enrollment secret: the file's content without
// surrounding white space. It warns when others may read the file.
func readSecret(path string, log *slog.Logger) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("read the enrollment secret: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		log.Warn("the enrollment secret file may be read by others: make it readable by the agent only (chmod 600)", "file", path, "mode", fi.Mode().Perm().String())
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSecretBytes+1))
	if err != nil {
		return "", fmt.Errorf("read the enrollment secret: %w", err)
	}
	if len(b) > maxSecretBytes {
		return "", fmt.Errorf("the enrollment secret file %s is larger than %d bytes: is it the right file?", path, maxSecretBytes)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("the enrollment secret file %s is empty", path)
	}
	return s, nil
}

// readPasswords reads PKCS#12 passwords, one a line (a line may be empty:
// the empty password is always tried).
func readPasswords(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the password file: %w", err)
	}
	var out []string
	for _, line := range strings.Split(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n") {
		if line != "" {
			out = append(out, line)
		}
	}
	return out, nil
}

// newLogger returns a logger on w at the named level and format.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(level))); err != nil {
		return nil, &usageError{fmt.Sprintf("--log-level %q: want debug, info, warn or error", level)}
	}
	o := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, o)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, o)), nil
	}
	return nil, &usageError{fmt.Sprintf("--log-format %q: want text or json", format)}
}
