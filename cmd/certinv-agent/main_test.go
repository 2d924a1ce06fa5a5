package main

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certinv/certinv/client/servertest"
)

// TestDependencies keeps the agent small and its attack surface low: no
// SQL driver, no cloud SDK, none of the server's packages, on any system.
func TestDependencies(t *testing.T) {
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		if goBin, err = exec.LookPath("go"); err != nil {
			t.Fatalf("no go command to list dependencies with: %v", err)
		}
	}
	forbidden := []string{
		"modernc.org/sqlite", "database/sql", "github.com/jackc/pgx", "github.com/lib/pq",
		"github.com/Azure/", "github.com/aws/", "cloud.google.com/", "github.com/redis/",
		"github.com/certinv/certinv/sqlite", "github.com/certinv/certinv/httpapi",
		"github.com/certinv/certinv/snapshot", "github.com/certinv/certinv/ingest",
		"github.com/certinv/certinv/postgres", "github.com/certinv/certinv/blob",
		"github.com/certinv/certinv/auth", "github.com/certinv/certinv/client/servertest",
	}
	for _, goos := range []string{"linux", "windows", "darwin"} {
		t.Run(goos, func(t *testing.T) {
			cmd := exec.Command(goBin, "list", "-deps", ".")
			cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH=amd64", "CGO_ENABLED=0")
			out, err := cmd.Output()
			if err != nil {
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					t.Fatalf("go list -deps: %v\n%s", err, ee.Stderr)
				}
				t.Fatal(err)
			}
			deps := strings.Fields(string(out))
			if len(deps) < 10 || !contains(deps, "github.com/certinv/certinv/agent") {
				t.Fatalf("go list -deps printed %d packages without the agent: %q", len(deps), out)
			}
			for _, d := range deps {
				for _, f := range forbidden {
					if d == f || strings.HasPrefix(d, strings.TrimSuffix(f, "/")+"/") || (strings.HasSuffix(f, "/") && strings.HasPrefix(d, f)) {
						t.Errorf("certinv-agent (GOOS=%s) depends on %s, which it must not link", goos, d)
					}
				}
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// fixtures writes PEM files of n certificates into a folder: a bundle of
// the first two and one file for each of the others.
func fixtures(t *testing.T, n int) string {
	dir := t.TempDir()
	ders := servertest.Certificates(t, n)
	var bundle []byte
	for i, der := range ders {
		p := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
		if i < 2 {
			bundle = append(bundle, p...)
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, "cert"+string(rune('a'+i))+".pem"), p, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "bundle.pem"), bundle, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func secretFile(t *testing.T, secret string) string {
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// syncBuffer is a log both the agent and the test touch.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestOnceEndToEnd runs `certinv-agent run --once` twice against the real
// server, scanning real files: the first run sends hashes, is told which
// certificates the server lacks and sends their DER (2 requests); the
// second sends hashes only and is taken unchanged (1 request).
func TestOnceEndToEnd(t *testing.T) {
	ctx := context.Background()
	srv := servertest.New(t, nil)
	dir := fixtures(t, 4)
	state := filepath.Join(t.TempDir(), "state")
	args := []string{"run", "--once", "--server", srv.URL, "--secret-file", secretFile(t, servertest.Secret),
		"--state", state, "--path", dir, "--group", "Servers", "--device-name", "web1.corp.example", "--log-level", "debug"}

	var log1 syncBuffer
	if err := run(ctx, args, new(bytes.Buffer), &log1); err != nil {
		t.Fatalf("first run --once = %v\n%s", err, log1.String())
	}
	if _, reports := srv.Requests(); reports != 2 {
		t.Errorf("first run: the server got %d reports, want 2 (hashes, then DER)", reports)
	}
	if !strings.Contains(log1.String(), "new=4") {
		t.Errorf("first run's log does not say 4 new certificates:\n%s", log1.String())
	}
	id, err := os.ReadFile(filepath.Join(state, "device-id"))
	if err != nil {
		t.Fatal(err)
	}
	paths, err := srv.Paths(ctx, strings.TrimSpace(string(id)))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 3 || paths[filepath.Join(dir, "bundle.pem")] != 2 {
		t.Errorf("server holds %v for the device, want 3 files, 2 certificates in bundle.pem", paths)
	}

	srv.ResetCounters()
	var log2 syncBuffer
	if err := run(ctx, args, new(bytes.Buffer), &log2); err != nil {
		t.Fatalf("second run --once = %v\n%s", err, log2.String())
	}
	if _, reports := srv.Requests(); reports != 1 {
		t.Errorf("second run: the server got %d reports, want 1 (hashes only)", reports)
	}
	if !strings.Contains(log2.String(), "unchanged=true") || !strings.Contains(log2.String(), "sent_der=0") {
		t.Errorf("second run's log does not say unchanged with no DER sent:\n%s", log2.String())
	}
	for _, l := range []string{log1.String(), log2.String()} {
		if strings.Contains(l, servertest.Secret) {
			t.Errorf("the agent's log holds the secret")
		}
	}
}

// TestOnceServerDownThenUp: nothing listens at first; the agent waits (on
// an injected clock: no real sleep) and tries again, and the server is up.
func TestOnceServerDownThenUp(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	srv := &servertest.Server{}
	var waits []time.Duration
	h := hooks{sleep: func(ctx context.Context, d time.Duration) error {
		waits = append(waits, d)
		if len(waits) == 1 {
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return err
			}
			srv.Start(t, ln, nil)
		}
		return ctx.Err()
	}}
	args := []string{"run", "--once", "--server", "http://" + addr, "--secret-file", secretFile(t, servertest.Secret),
		"--state", t.TempDir(), "--path", fixtures(t, 2)}
	var log syncBuffer
	if err := runWith(context.Background(), args, new(bytes.Buffer), &log, h); err != nil {
		t.Fatalf("run --once against a server down, then up = %v\n%s", err, log.String())
	}
	if len(waits) != 1 || waits[0] <= 0 {
		t.Errorf("waits = %v, want one backoff wait", waits)
	}
	if _, reports := srv.Requests(); reports != 2 {
		t.Errorf("the server got %d reports once up, want 2", reports)
	}
	if !strings.Contains(log.String(), "retrying") {
		t.Errorf("log does not say the agent retried:\n%s", log.String())
	}
}

func TestRunErrors(t *testing.T) {
	srv := servertest.New(t, nil)
	good := secretFile(t, servertest.Secret)
	empty := secretFile(t, "")
	for _, tc := range []struct {
		name     string
		args     []string
		wantCode int
		wantText string
	}{
		{"no command", nil, 2, "no command"},
		{"unknown command", []string{"explode"}, 2, "unknown command"},
		{"no server", []string{"run", "--once", "--secret-file", good}, 2, "--server"},
		{"no secret", []string{"run", "--once", "--server", srv.URL, "--secret-file", ""}, 2, "--secret-file"},
		{"short interval", []string{"run", "--server", srv.URL, "--secret-file", good, "--interval", "1s"}, 2, "too short"},
		{"plain http elsewhere", []string{"run", "--once", "--server", "http://certinv.example.com", "--secret-file", good, "--state", t.TempDir()}, 2, "clear text"},
		{"empty secret", []string{"run", "--once", "--server", srv.URL, "--secret-file", empty, "--state", t.TempDir()}, 1, "empty"},
		{"wrong secret", []string{"run", "--once", "--server", srv.URL, "--secret-file", secretFile(t, "wrong"), "--state", t.TempDir(), "--path", fixtures(t, 1)}, 1, "401"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr syncBuffer
			err := run(context.Background(), tc.args, new(bytes.Buffer), &stderr)
			if err == nil || exitCode(err) != tc.wantCode || !strings.Contains(err.Error()+stderr.String(), tc.wantText) {
				t.Errorf("run(%q) = %v (exit %d); want exit %d mentioning %q", tc.args, err, exitCode(err), tc.wantCode, tc.wantText)
			}
		})
	}
}

func TestVersionAndIdentity(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"version"}, &out, new(bytes.Buffer)); err != nil || !strings.HasPrefix(out.String(), "certinv-agent ") {
		t.Errorf("version = %q, %v; want a line starting with certinv-agent", out.String(), err)
	}
	out.Reset()
	state := t.TempDir()
	if err := run(context.Background(), []string{"identity", "--state", state, "--device-name", "h.example"}, &out, new(bytes.Buffer)); err != nil {
		t.Fatal(err)
	}
	id, _ := os.ReadFile(filepath.Join(state, "device-id"))
	if !strings.Contains(out.String(), "deviceId:   "+strings.TrimSpace(string(id))) || !strings.Contains(out.String(), "deviceName: h.example") {
		t.Errorf("identity printed %q, want the id kept in the state folder and the name", out.String())
	}
}
