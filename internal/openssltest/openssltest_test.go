package openssltest

import (
	"strings"
	"testing"
	"time"

	"github.com/certinv/certinv"
)

// TestDiff makes sure the comparison every golden test relies on reports a
// difference in any field, and nothing for equal fields.
func TestDiff(t *testing.T) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	c := &certinv.Certificate{SHA256: [32]byte{1}, Thumbprint: "AB", SignatureAlgorithm: "sha256RSA", KeySize: 2048,
		NotBefore: at, NotAfter: at, SubjectType: certinv.SubjectCA, SerialNumber: "01", IssuedTo: "CN=a", IssuedBy: "CN=a",
		Subject: certinv.Name{CommonName: "a"}, Issuer: certinv.Name{CommonName: "a"}, KeyUsage: []string{"CRL Signing"}, SelfSigned: true}
	e := Expected{SHA256: "01" + strings.Repeat("00", 31), Thumbprint: "AB", SignatureAlgorithm: "sha256RSA", KeySize: 2048,
		NotBefore: at, NotAfter: at, SubjectType: certinv.SubjectCA, SerialNumber: "01", IssuedTo: "CN=a", IssuedBy: "CN=a",
		Subject: certinv.Name{CommonName: "a"}, Issuer: certinv.Name{CommonName: "a"}, KeyUsage: []string{"CRL Signing"}, SelfSigned: true}
	if d := e.Diff(c); len(d) != 0 {
		t.Fatalf("Diff of equal fields = %q, want none", d)
	}
	changes := map[string]func(*certinv.Certificate){
		"Thumbprint":       func(c *certinv.Certificate) { c.Thumbprint = "CD" },
		"KeySize":          func(c *certinv.Certificate) { c.KeySize = 1024 },
		"NotAfter":         func(c *certinv.Certificate) { c.NotAfter = at.Add(time.Second) },
		"IssuedBy":         func(c *certinv.Certificate) { c.IssuedBy = "CN=b" },
		"KeyUsage":         func(c *certinv.Certificate) { c.KeyUsage = nil },
		"ExtendedKeyUsage": func(c *certinv.Certificate) { c.ExtendedKeyUsage = []string{"Code Signing"} },
		"SelfSigned":       func(c *certinv.Certificate) { c.SelfSigned = false },
		"NotBefore.Location": func(c *certinv.Certificate) {
			c.NotBefore = at.In(time.FixedZone("X", 0))
		},
	}
	for field, change := range changes {
		cc := *c
		change(&cc)
		d := e.Diff(&cc)
		if len(d) != 1 || !strings.HasPrefix(d[0], field+" = ") {
			t.Errorf("Diff with %s changed = %q, want one line about %s", field, d, field)
		}
	}
}
