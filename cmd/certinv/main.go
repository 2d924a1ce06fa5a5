// Command certinv is the certificate inventory server and its tools: serve
// the export API, seed a demo fleet, build a snapshot, issue a token, manage
// RBAC device groups. Wiring only: the work is done by the packages it
// imports.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(os.Stderr, "certinv: %v\n", err)
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

const usage = `certinv: the certificate inventory of a fleet, served through the export API
of Microsoft Defender Vulnerability Management.

Usage:
  certinv demo     [--data DIR] [--devices N] [--addr HOST:PORT]   seed a demo fleet if empty, then serve it
  certinv serve    --data DIR [--addr HOST:PORT] [--public-url URL] [--snapshot-interval 15m]
  certinv serve    --db postgres://... --blob AZURE --redis redis://... --keys DIR ...   one replica of many (docs/DEPLOY.md)
  certinv seed     --data DIR --devices N [--certs-per-device M] [--groups K] [--seed S]
  certinv snapshot --data DIR                                        build and publish a snapshot now
  certinv token    --data DIR [--role Vulnerability.Read.All] [--scope Vulnerability.Read]
  certinv app      create|list|rotate|delete --data DIR ...         applications of the embedded token issuer
  certinv group    list|set --data DIR ...                          RBAC device groups
  certinv group    grant|revoke|grants --data DIR --user OID|UPN [--group NAME]   users' groups (delegated access)
  certinv group    rule add|list|delete --data DIR ...              rules that place devices in groups
  certinv device   tag|revoke|reset|show --data DIR --id ID          device tags and credentials
  certinv audit    --data DIR [--after ID] [--limit N] [--json]      the audit log of admin actions
  certinv stats    --data DIR                                        what the store holds
  certinv scan     [--format table|json|ndjson] [--password P] [PATH ...]   the certificates of this machine
  certinv keys     --keys DIR                                        make the keys that replicas share

Every command that reads the store takes --db URL (PostgreSQL) instead of
--data DIR; serve, demo and snapshot take --blob (Azure Blob Storage) too.
Run 'certinv COMMAND -h' for the flags of a command. Flags default to the
environment variables CERTINV_DATA, CERTINV_DB, CERTINV_BLOB, CERTINV_BLOB_KEY,
CERTINV_KEYS, CERTINV_REDIS, CERTINV_ADDR and CERTINV_PUBLIC_URL.
`

// run is the whole program, testable: it parses args, does the work and
// returns when done or when ctx ends.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return &usageError{"no command given"}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return runServe(ctx, rest, stdout, stderr)
	case "demo":
		return runDemo(ctx, rest, stdout, stderr)
	case "seed":
		return runSeed(ctx, rest, stdout, stderr)
	case "snapshot":
		return runSnapshot(ctx, rest, stdout, stderr)
	case "token":
		return runToken(ctx, rest, stdout, stderr)
	case "app":
		return runApp(ctx, rest, stdout, stderr)
	case "group":
		return runGroup(ctx, rest, stdout, stderr)
	case "device":
		return runDevice(ctx, rest, stdout, stderr)
	case "audit":
		return runAudit(ctx, rest, stdout, stderr)
	case "stats":
		return runStats(ctx, rest, stdout, stderr)
	case "scan":
		return runScan(ctx, rest, stdout, stderr)
	case "keys":
		return runKeys(ctx, rest, stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return &usageError{fmt.Sprintf("unknown command %q", cmd)}
	}
}

// newFlagSet returns a FlagSet for a subcommand that reports errors instead
// of exiting, writing its usage to stderr.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("certinv "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
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

// newLogger returns a text logger on w at the named level.
func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(level))); err != nil {
		return nil, &usageError{fmt.Sprintf("--log-level %q: want debug, info, warn or error", level)}
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}
