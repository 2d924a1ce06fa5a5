package synth

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"strings"
	"sync"
	"unicode"

	"github.com/certinv/certinv/internal/cabundle"
)

// caBundle is the Mozilla root store of a real CA bundle, the same on
// every machine, so that a seed makes the same fleet everywhere.
var caBundle = cabundle.PEM

// certificate is one DER certificate with what paths need of it.
type certificate struct {
	der    []byte
	thumb  string // SHA-1 of der, 40 uppercase hex characters
	sha256 [32]byte
}

func newCertificate(der []byte) *certificate {
	s1 := sha1.Sum(der)
	return &certificate{der: der, thumb: strings.ToUpper(hex.EncodeToString(s1[:])), sha256: sha256.Sum256(der)}
}

// rootCert is a public root of the bundle.
type rootCert struct {
	*certificate
	alias string // a Java keystore alias made from the common name, as the JDK names them
}

var loadRoots = sync.OnceValues(func() ([]*rootCert, error) { return parseBundle(caBundle) })

// parseBundle returns the distinct certificates of a PEM bundle, in order.
func parseBundle(bundle []byte) ([]*rootCert, error) {
	var roots []*rootCert
	seen := make(map[[32]byte]bool)
	for rest := bundle; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse embedded ca bundle certificate %d: %w", len(roots), err)
		}
		cert := newCertificate(bytes.Clone(block.Bytes))
		if seen[cert.sha256] {
			continue
		}
		seen[cert.sha256] = true
		name := c.Subject.CommonName
		if name == "" && len(c.Subject.OrganizationalUnit) > 0 {
			name = c.Subject.OrganizationalUnit[0]
		}
		if name == "" && len(c.Subject.Organization) > 0 {
			name = c.Subject.Organization[0]
		}
		roots = append(roots, &rootCert{certificate: cert, alias: javaAlias(name)})
	}
	if len(roots) == 0 {
		return nil, fmt.Errorf("embedded ca bundle holds no certificate")
	}
	return roots, nil
}

// javaAlias makes a JDK-style cacerts alias ("digicertglobalrootg2 [jdk]")
// from a common name.
func javaAlias(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		if r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		b.WriteString("root")
	}
	b.WriteString(" [jdk]")
	return b.String()
}
