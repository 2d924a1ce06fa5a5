package certparse

import (
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/certinv/certinv/internal/openssltest"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/*.json from openssl's output")

// labeled is a certificate and where it came from.
type labeled struct {
	label string
	der   []byte
}

// certSet is a group of test certificates with one golden file.
type certSet struct {
	name string
	load func(t testing.TB) []labeled
}

var certSets = []certSet{
	// Unusual shapes made by testdata/gen.sh.
	{"fixtures", func(t testing.TB) []labeled { return loadDir(t, "testdata/fixtures") }},
	// Go's crypto/x509 test certificates and a selection of NIST PKITS.
	{"goroot", func(t testing.TB) []labeled { return loadDir(t, "testdata/goroot") }},
	// A copy of Debian's CA bundle (/etc/ssl/certs/ca-certificates.crt).
	{"ca-bundle", func(t testing.TB) []labeled {
		var out []labeled
		for i, der := range bundleCerts(t) {
			out = append(out, labeled{fmt.Sprintf("ca-bundle.pem#%d", i), der})
		}
		return out
	}},
}

// loadDir reads every certificate file (PEM or DER) in dir, sorted by name.
func loadDir(t testing.TB, dir string) []labeled {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []labeled
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := pem.Decode(data); b != nil {
			data = b.Bytes
		}
		out = append(out, labeled{e.Name(), data})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].label < out[j].label })
	if len(out) == 0 {
		t.Fatalf("%s: no certificates", dir)
	}
	return out
}

func goldenPath(set string) string { return filepath.Join("testdata", "golden", set+".json") }

// TestGolden compares Parse with the fields openssl gives each test
// certificate, converted to Windows' forms by openssl_test.go. The
// expectations are committed under testdata/golden so that machines
// without openssl check the same; `go test -run TestGolden -update`
// rewrites them from openssl.
func TestGolden(t *testing.T) {
	for _, set := range certSets {
		t.Run(set.name, func(t *testing.T) {
			certs := set.load(t)
			var want []openssltest.Expected
			if *update {
				if !openssltest.HaveOpenSSL() {
					t.Fatal("-update needs openssl on PATH")
				}
				for _, c := range certs {
					e := openssltest.FromOpenSSL(t, c.der)
					e.File = c.label
					want = append(want, e)
				}
				data, err := json.MarshalIndent(want, "", "\t")
				if err != nil {
					t.Fatal(err)
				}
				if err := os.MkdirAll(filepath.Dir(goldenPath(set.name)), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(goldenPath(set.name), append(data, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			} else {
				data, err := os.ReadFile(goldenPath(set.name))
				if err != nil {
					t.Fatalf("%v (run go test -run TestGolden -update with openssl)", err)
				}
				if err := json.Unmarshal(data, &want); err != nil {
					t.Fatal(err)
				}
			}
			if len(want) != len(certs) {
				t.Fatalf("%s holds %d expectations for %d certificates; run -update", goldenPath(set.name), len(want), len(certs))
			}
			for i, c := range certs {
				if want[i].File != c.label {
					t.Fatalf("expectation %d is for %s, certificate is %s; run -update", i, want[i].File, c.label)
				}
				compare(t, c.label, c.der, want[i])
			}
		})
	}
}

// TestOpenSSLLive derives the expectations of the CA bundle and the
// fixtures from the openssl on this machine, rather than from the committed
// goldens, so that a stale golden cannot hide a difference. Without
// openssl it falls back to the goldens and says so.
func TestOpenSSLLive(t *testing.T) {
	if !openssltest.HaveOpenSSL() {
		t.Log("openssl is not on PATH: TestGolden's committed expectations stand in")
		return
	}
	if testing.Short() {
		t.Log("-short: live openssl check limited to the fixtures")
	}
	for _, set := range certSets {
		if testing.Short() && set.name != "fixtures" {
			continue
		}
		t.Run(set.name, func(t *testing.T) {
			for _, c := range set.load(t) {
				compare(t, c.label, c.der, openssltest.FromOpenSSL(t, c.der))
			}
		})
	}
}

// compare checks every field of Parse(der) against want.
func compare(t *testing.T, label string, der []byte, want openssltest.Expected) {
	t.Helper()
	got, err := Parse(der)
	if err != nil {
		t.Errorf("Parse(%s) error: %v", label, err)
		return
	}
	for _, d := range want.Diff(got) {
		t.Errorf("Parse(%s).%s", label, d)
	}
}
