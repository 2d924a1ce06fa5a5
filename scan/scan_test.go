package scan

import (
	"context"
	"crypto/sha256"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/certinv/certinv/internal/openssltest"
)

// scanAll runs Scan and returns what it found and warned.
func scanAll(t *testing.T, opts Options) ([]Found, []Warning) {
	t.Helper()
	var found []Found
	var warns []Warning
	err := Scan(context.Background(), opts, func(f Found) error {
		f.DER = append([]byte(nil), f.DER...)
		found = append(found, f)
		return nil
	}, func(w Warning) { warns = append(warns, w) })
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	return found, warns
}

func readFixture(t *testing.T, name string) []byte { return readFixtureB(t, name) }

func readFixtureB(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata/formats", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func write(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// TestScanLinks: the hash-named links of a trust folder, a folder reached
// twice and loops of links yield each certificate once at its real path.
func TestScanLinks(t *testing.T) {
	dir := t.TempDir()
	certs := filepath.Join(dir, "certs")
	share := filepath.Join(dir, "share")
	for _, d := range []string{certs, share} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	real := filepath.Join(share, "root.crt")
	write(t, real, readFixture(t, "trusted.pem"))
	symlink(t, real, filepath.Join(certs, "root.pem"))         // Debian: name link to the shared file
	symlink(t, "root.pem", filepath.Join(certs, "9a5ba575.0")) // hash link to the name link
	symlink(t, share, filepath.Join(certs, "share-again"))     // a folder reached twice
	symlink(t, ".", filepath.Join(share, "self"))              // a loop through a folder link
	symlink(t, "loop-b", filepath.Join(certs, "loop-a"))       // a loop of file links
	symlink(t, "loop-a", filepath.Join(certs, "loop-b"))
	symlink(t, "missing.pem", filepath.Join(certs, "broken.pem")) // a broken link

	found, warns := scanAll(t, Options{Paths: []string{certs, share, real}})
	var paths []string
	for _, f := range found {
		paths = append(paths, f.Path)
	}
	if want := []string{real}; !reflect.DeepEqual(paths, want) {
		t.Errorf("Scan found at %v, want once at %v", paths, want)
	}
	wantWarn := map[string]string{
		filepath.Join(certs, "loop-a"):     "loop of symbolic links",
		filepath.Join(certs, "loop-b"):     "loop of symbolic links",
		filepath.Join(certs, "broken.pem"): "does not exist",
		filepath.Join(share, "self"):       "loop of links",
	}
	for _, w := range warns {
		sub, ok := wantWarn[w.Path]
		if !ok {
			t.Errorf("unexpected warning %v", w)
			continue
		}
		if !strings.Contains(w.Err.Error(), sub) {
			t.Errorf("warning for %s = %q, want it to say %q", w.Path, w.Err, sub)
		}
		delete(wantWarn, w.Path)
	}
	for p, sub := range wantWarn {
		t.Errorf("no warning for %s, want one saying %q", p, sub)
	}
}

// TestScanBadInput: each kind of bad input is a warning naming the file and
// the reason, and the scan goes on to find the good certificates.
func TestScanBadInput(t *testing.T) {
	good := readFixture(t, "leaf.cer")
	bundle := readFixture(t, "bundle.pem")
	// The bundle's second block, cut in the middle of its base64.
	second := strings.Index(string(bundle), "-----BEGIN CERTIFICATE-----\n"+strings.SplitN(strings.SplitN(string(bundle), "-----BEGIN CERTIFICATE-----\n", 3)[2], "\n", 2)[0])
	truncated := append([]byte(nil), bundle[:second+200]...)
	truncated = append(truncated, "\n"...)
	truncated = append(truncated, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: good})...)
	line := 1 + strings.Count(string(bundle[:second]), "\n")
	corrupt := append([]byte(nil), good...)
	corrupt[4] = 0x31 // the TBSCertificate is no longer a SEQUENCE
	tests := []struct {
		name, file string
		data       []byte
		opts       Options
		warn       string
		found      int
	}{
		{"truncated PEM block", "bundle.pem", truncated, Options{}, fmt.Sprintf("PEM block 2 (line %d): truncated or malformed", line), 2},
		{"corrupt certificate", "corrupt.cer", corrupt, Options{}, "corrupt certificate", 0},
		{"truncated DER", "short.cer", good[:len(good)-10], Options{}, "truncated or malformed", 0},
		{"huge file", "big.pem", bundle, Options{MaxFileBytes: 1000}, "larger than the limit of 1000", 0},
		{"wrong password", "secret.p12", readFixture(t, "secret.p12"), Options{Passwords: []string{"nope"}}, "wrong password (tried 2)", 0},
		{"wrong password, RC2", "legacy.pfx", readFixture(t, "legacy.pfx"), Options{}, "wrong password (tried 1)", 0},
		{"right password", "secret.p12", readFixture(t, "secret.p12"), Options{Passwords: []string{"nope", "secret"}}, "", 2},
		{"not a certificate", "notes.crt", []byte("hello"), Options{}, "not a certificate file", 0},
		{"truncated keystore", "store.jks", readFixture(t, "store.jks")[:100], Options{}, "truncated", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, tt.file)
			write(t, path, tt.data)
			write(t, filepath.Join(dir, "zz-good.cer"), good)
			tt.opts.Paths = []string{dir}
			found, warns := scanAll(t, tt.opts)
			n := 0
			for _, f := range found {
				if strings.HasPrefix(f.Path, path) {
					n++
				}
			}
			if n != tt.found {
				t.Errorf("Scan found %d certificate(s) in %s, want %d", n, tt.file, tt.found)
			}
			if last := found[len(found)-1]; last.Path != filepath.Join(dir, "zz-good.cer") {
				t.Errorf("Scan's last find = %s, want the good file after the bad one", last.Path)
			}
			if tt.warn == "" {
				if len(warns) != 0 {
					t.Errorf("Scan warned %v, want nothing", warns)
				}
				return
			}
			if len(warns) == 0 || warns[0].Path != path || !strings.Contains(warns[0].Err.Error(), tt.warn) {
				t.Errorf("Scan warned %v, want a warning for %s saying %q", warns, path, tt.warn)
			}
		})
	}
}

// TestScanGivenPaths: globs, a missing path and a file without certificates
// given by name.
func TestScanGivenPaths(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a.pem"), readFixture(t, "bundle.pem"))
	write(t, filepath.Join(dir, "b.conf"), []byte("listen 443;\n"))
	found, warns := scanAll(t, Options{Paths: []string{
		filepath.Join(dir, "*.pem"), filepath.Join(dir, "missing"), filepath.Join(dir, "b.conf"), filepath.Join(dir, "none-*"),
	}})
	if len(found) != 3 {
		t.Errorf("Scan found %d certificates, want the bundle's 3", len(found))
	}
	var got []string
	for _, w := range warns {
		got = append(got, filepath.Base(w.Path)+": "+w.Err.Error())
	}
	want := []string{"missing: does not exist (or is a broken link)", "b.conf: no certificate found", "none-*: no file matches"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Scan warned %q, want %q", got, want)
	}
}

// TestScanExcludeAndDepth: excluded paths are not read, folders below
// MaxDepth are not walked.
func TestScanExcludeAndDepth(t *testing.T) {
	dir := t.TempDir()
	deep := filepath.Join(dir, "a", "b")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "top.cer"), readFixture(t, "leaf.cer"))
	write(t, filepath.Join(dir, "skip.pem"), readFixture(t, "bundle.pem"))
	write(t, filepath.Join(deep, "deep.cer"), readFixture(t, "leaf.cer"))
	found, warns := scanAll(t, Options{Paths: []string{dir}, Exclude: []string{filepath.Join(dir, "skip.*")}, MaxDepth: 1})
	if len(found) != 1 || found[0].Path != filepath.Join(dir, "top.cer") {
		t.Errorf("Scan found %v, want only top.cer", found)
	}
	if len(warns) != 1 || warns[0].Path != deep {
		t.Errorf("Scan warned %v, want one for %s (too deep)", warns, deep)
	}
}

// TestScanStops: Scan returns found's error and ctx's end.
func TestScanStops(t *testing.T) {
	stop := errors.New("stop")
	calls := 0
	err := Scan(context.Background(), Options{Paths: []string{"testdata/formats"}}, func(Found) error {
		calls++
		return stop
	}, func(Warning) {})
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("Scan with a failing callback = %v after %d call(s), want %v after 1", err, calls, stop)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = Scan(ctx, Options{Paths: []string{"testdata/formats"}}, func(Found) error { return nil }, func(Warning) {})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Scan with an ended context = %v, want %v", err, context.Canceled)
	}
}

// TestScanDeterministic: two scans give the same finds in the same order.
func TestScanDeterministic(t *testing.T) {
	a, _ := scanAll(t, Options{Paths: []string{"testdata/formats"}, Passwords: []string{"secret"}})
	b, _ := scanAll(t, Options{Paths: []string{"testdata/formats"}, Passwords: []string{"secret"}})
	if !reflect.DeepEqual(a, b) {
		t.Errorf("two scans differ")
	}
	for _, f := range a {
		if f.SHA256 != sha256.Sum256(f.DER) {
			t.Errorf("Found{%s}.SHA256 is not the SHA-256 of its DER", f.Path)
		}
	}
}

// TestParseFileAliases: keystore entries are named by their aliases.
func TestParseFileAliases(t *testing.T) {
	tests := []struct {
		file      string
		passwords []string
		aliases   []string
	}{
		// Aliases as gen.sh gave them; keytool sorts JKS entries by alias hash.
		{"store.jks", nil, []string{"other", "test root", "intermediate"}},
		{"store.jceks", nil, []string{"other", "test root", "intermediate"}},
		{"store.truststore.p12", []string{"changeit"}, []string{"test root", "other", "server", "CN=certinv Test Intermediate,O=certinv test,C=FR"}},
		{"nopass.pfx", nil, []string{"leaf", ""}},
		{"legacy.pfx", []string{"secret"}, []string{"intermediate", ""}},
		{"des.pfx", []string{"secret"}, []string{"intermediate", ""}},
		{"clear.p12", nil, []string{"leaf"}},
		{"chain.p7b", nil, []string{"", "", ""}},
	}
	for _, tt := range tests {
		entries, errs := ParseFile(tt.file, readFixture(t, tt.file), tt.passwords)
		var got []string
		for _, e := range entries {
			got = append(got, e.Alias)
		}
		if !reflect.DeepEqual(got, tt.aliases) || len(errs) != 0 {
			t.Errorf("ParseFile(%q) aliases = %q, errors %v; want %q, no error", tt.file, got, errs, tt.aliases)
		}
	}
}

func TestStorePath(t *testing.T) {
	der := readFixture(t, "leaf.cer")
	// The fixture's SHA-1, as `openssl x509 -fingerprint -sha1` prints it.
	_, fp, _ := strings.Cut(strings.TrimSpace(openssltest.Run(t, "x509", "-inform", "DER", "-in", "testdata/formats/leaf.cer", "-noout", "-fingerprint", "-sha1")), "=")
	want := `LocalMachine\Root\` + strings.ReplaceAll(fp, ":", "")
	if got := StorePath("Root", der); got != want {
		t.Errorf("StorePath(Root, leaf) = %q, want %q", got, want)
	}
}

func TestStoresOf(t *testing.T) {
	tests := []struct {
		place      string
		enumerated []string
		want       []string
		isStore    bool
	}{
		{`LocalMachine\My`, nil, []string{"My"}, true},
		{`localmachine\Root`, []string{"CA"}, []string{"Root"}, true},
		{`C:\certs\a.pem`, nil, nil, false},
		{`LocalMachine\My\extra`, nil, nil, false},
		{"/etc/ssl/certs", nil, nil, false},
	}
	for _, tt := range tests {
		if got := isStorePlace(tt.place); got != tt.isStore {
			t.Errorf("isStorePlace(%q) = %v, want %v", tt.place, got, tt.isStore)
		}
		if tt.isStore {
			if got := storesOf(tt.place, tt.enumerated); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("storesOf(%q) = %q, want %q", tt.place, got, tt.want)
			}
		}
	}
	all := storesOf("LocalMachine", []string{"root", "Custom Store", ""})
	for _, s := range []string{"Root", "CA", "AuthRoot", "My", "TrustedPublisher", "TrustedPeople", "Disallowed", "Custom Store"} {
		if !contains(all, s) {
			t.Errorf("storesOf(LocalMachine) = %q, want it to hold %q", all, s)
		}
	}
	if contains(all, "root") || contains(all, "") {
		t.Errorf("storesOf(LocalMachine) = %q, want no repeat in another case and no empty name", all)
	}
}

func TestDefaultPlaces(t *testing.T) {
	tests := []struct {
		goos string
		want []string
	}{
		{"linux", []string{"/etc/ssl/certs", "/etc/pki/tls/certs", "/etc/pki/ca-trust/extracted", "/etc/pki/ca-trust/source",
			"/usr/local/share/ca-certificates", "/usr/share/ca-certificates", "/etc/ca-certificates", "/etc/ssl/cert.pem",
			"/var/lib/ca-certificates", "/usr/lib/jvm/*/lib/security/cacerts", "/etc/ssl/certs/java/cacerts"}},
		{"windows", []string{"LocalMachine"}},
		{"darwin", []string{"/Library/Keychains/System.keychain", "/System/Library/Keychains/SystemRootCertificates.keychain"}},
	}
	for _, tt := range tests {
		got := defaultPlaces(tt.goos)
		for _, w := range tt.want {
			if !contains(got, w) {
				t.Errorf("defaultPlaces(%q) = %q, want it to hold %q", tt.goos, got, w)
			}
		}
	}
}
