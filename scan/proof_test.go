package scan

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/certinv/certinv/certparse"
	"github.com/certinv/certinv/internal/openssltest"
)

// systemBundle returns this machine's CA bundle, wherever its distribution
// keeps it.
func systemBundle(t testing.TB) string {
	t.Helper()
	for _, p := range []string{
		"/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt",
		"/etc/ssl/ca-bundle.pem", "/etc/ssl/cert.pem",
	} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatal("no CA bundle on this machine")
	return ""
}

// fixturePasswords are the passwords gen.sh gave the fixtures.
var fixturePasswords = map[string]string{
	"nopass.pfx": "", "clear.p12": "", "secret.p12": "secret", "des.pfx": "secret",
	"legacy.pfx": "secret", "store.truststore.p12": "changeit",
	"store.jks": "changeit", "store.jceks": "changeit",
}

// TestProof scans a folder holding every format (the committed fixtures
// and a copy of this machine's CA bundle) and checks it against openssl
// and keytool: the same certificates at the same paths (keystore aliases
// included), and for each certificate every field of the export record as
// openssl derives it.
func TestProof(t *testing.T) {
	for _, tool := range []string{"openssl", "keytool"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the proof needs %s on PATH: %v", tool, err)
		}
	}
	dir := t.TempDir()
	names := copyFixtures(t, dir)
	bundle, err := os.ReadFile(systemBundle(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca-bundle.crt"), bundle, 0o644); err != nil {
		t.Fatal(err)
	}
	names = append(names, "ca-bundle.crt")

	got := map[string][]string{} // path -> SHA-256s, in order
	ders := map[string][]byte{}
	var warnings []Warning
	err = Scan(context.Background(), Options{Paths: []string{dir}, Passwords: []string{"secret", "changeit"}},
		func(f Found) error {
			if sum := sha256.Sum256(f.DER); sum != f.SHA256 {
				t.Errorf("Found{%s}.SHA256 = %x, want %x", f.Path, f.SHA256, sum)
			}
			h := hex.EncodeToString(f.SHA256[:])
			got[f.Path] = append(got[f.Path], h)
			ders[h] = bytes.Clone(f.DER)
			return nil
		},
		func(w Warning) { warnings = append(warnings, w) })
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	for _, w := range warnings {
		t.Errorf("Scan warned: %v", w)
	}

	want := map[string][]string{}
	for _, name := range names {
		for _, c := range toolCertificates(t, filepath.Join(dir, name)) {
			sum := sha256.Sum256(c.der)
			path := filepath.Join(dir, name)
			if c.alias != "" {
				path += ":" + c.alias
			}
			want[path] = append(want[path], hex.EncodeToString(sum[:]))
		}
	}
	for _, m := range []map[string][]string{got, want} {
		for _, v := range m {
			sort.Strings(v)
		}
	}
	if !reflect.DeepEqual(got, want) {
		for p, w := range want {
			if !reflect.DeepEqual(got[p], w) {
				t.Errorf("Scan found at %s %d certificate(s) %v, openssl/keytool %d %v", p, len(got[p]), got[p], len(w), w)
			}
		}
		for p, g := range got {
			if _, ok := want[p]; !ok {
				t.Errorf("Scan found at %s %v, openssl/keytool nothing", p, g)
			}
		}
	}
	if len(ders) < 100 {
		t.Errorf("Scan found %d distinct certificates, want the CA bundle's and the fixtures'", len(ders))
	}
	for h, der := range ders {
		compareFields(t, h, der, openssltest.FromOpenSSL(t, der))
	}
}

func copyFixtures(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir("testdata/formats")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("testdata/formats", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
		names = append(names, e.Name())
	}
	return names
}

type toolCert struct {
	alias string
	der   []byte
}

// toolCertificates asks openssl (or keytool, for Java keystores) which
// certificates a file holds, and under which alias.
func toolCertificates(t *testing.T, path string) []toolCert {
	t.Helper()
	name := filepath.Base(path)
	pw := fixturePasswords[name]
	switch filepath.Ext(name) {
	case ".conf":
		return nil
	case ".p7b":
		return pemCerts(t, openssltest.Run(t, "pkcs7", "-inform", "DER", "-in", path, "-print_certs"), "")
	case ".p7c":
		return pemCerts(t, openssltest.Run(t, "pkcs7", "-inform", "PEM", "-in", path, "-print_certs"), "")
	case ".pfx", ".p12":
		return pemCerts(t, openssltest.Run(t, "pkcs12", "-legacy", "-in", path, "-nokeys", "-passin", "pass:"+pw), "friendlyName: ")
	case ".jks", ".jceks":
		out, err := exec.Command("keytool", "-list", "-rfc", "-keystore", path, "-storepass", pw).Output()
		if err != nil {
			t.Fatalf("keytool -list %s: %v", path, err)
		}
		return pemCerts(t, string(out), "Alias name: ")
	}
	return pemCerts(t, openssltest.Run(t, "storeutl", "-certs", path), "")
}

// pemCerts returns the certificates of a tool's PEM output, each with the
// alias of the last line before it that starts with aliasPrefix (after
// trimming spaces); a "Bag Attributes" line without one resets it.
func pemCerts(t *testing.T, out, aliasPrefix string) []toolCert {
	t.Helper()
	var certs []toolCert
	alias := ""
	lines := strings.Split(out, "\n")
	for i := 0; i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		switch {
		case aliasPrefix != "" && strings.HasPrefix(l, aliasPrefix):
			alias = strings.TrimPrefix(l, aliasPrefix)
		case strings.HasPrefix(l, "Bag Attributes"):
			alias = ""
		case l == "-----BEGIN CERTIFICATE-----":
			j := i
			for j < len(lines) && strings.TrimSpace(lines[j]) != "-----END CERTIFICATE-----" {
				j++
			}
			b, _ := pem.Decode([]byte(strings.Join(lines[i:j+1], "\n")))
			if b == nil {
				t.Fatalf("tool output has a bad PEM block at line %d", i+1)
			}
			certs = append(certs, toolCert{alias, b.Bytes})
			i = j
		}
	}
	return certs
}

// compareFields checks every field certparse derives from der, as `certinv
// scan` prints it, against openssl's.
func compareFields(t *testing.T, label string, der []byte, want openssltest.Expected) {
	t.Helper()
	got, err := certparse.Parse(der)
	if err != nil {
		t.Errorf("certparse.Parse(%s): %v", label, err)
		return
	}
	for _, d := range want.Diff(got) {
		t.Errorf("certificate %s: %s (from openssl)", label, d)
	}
}
