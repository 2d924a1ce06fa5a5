package certparse

import (
	"encoding/pem"
	"os"
	"testing"
)

// readPEM returns the DER of every CERTIFICATE block in a PEM file.
func readPEM(t testing.TB, path string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			out = append(out, b.Bytes)
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s: no certificates", path)
	}
	return out
}

// bundleCerts returns the certificates of testdata/ca-bundle.pem, a copy
// of a Debian CA bundle.
func bundleCerts(t testing.TB) [][]byte { return readPEM(t, "testdata/ca-bundle.pem") }
