package certparse

import (
	"bytes"
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

// alterIssuer returns a copy of der with the last byte of its issuer
// name's last value changed, or nil if der has no such byte.
func alterIssuer(der []byte) []byte {
	cert, _, _ := readElement(der)
	tbs, _, _ := readElement(cert.content)
	b := tbs.content
	if peekTag(b, 0xa0) {
		_, b, _ = readElement(b)
	}
	_, b, _ = readElement(b) // serial
	_, b, _ = readElement(b) // signature algorithm
	issuer, _, ok := readElement(b)
	if !ok || len(issuer.content) == 0 {
		return nil
	}
	out := append([]byte(nil), der...)
	off := bytes.Index(der, issuer.full) + len(issuer.full) - 1 // the issuer comes before the subject
	out[off] ^= 0x01
	return out
}
