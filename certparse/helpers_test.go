package certparse

import (
	"bytes"
	"encoding/pem"
	"os"
	"testing"

	"github.com/certinv/certinv/internal/cabundle"
)

// readPEM returns the DER of every CERTIFICATE block in a PEM file.
func readPEM(t testing.TB, path string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return pemCerts(t, path, data)
}

// pemCerts returns the DER of every CERTIFICATE block of data, named name.
func pemCerts(t testing.TB, name string, data []byte) [][]byte {
	t.Helper()
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
		t.Fatalf("%s: no certificates", name)
	}
	return out
}

// bundleCerts returns the certificates of a Debian CA bundle
// (internal/cabundle).
func bundleCerts(t testing.TB) [][]byte { return pemCerts(t, "ca-bundle.pem", cabundle.PEM) }

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
