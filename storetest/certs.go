package storetest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/certinv/certinv"
)

// Certificate is a real X.509 certificate made for tests, with the fields a
// store keeps. Its Fields are derived with crypto/x509, not with the
// server's parser: they are plausible and consistent with the DER, which is
// all a store needs.
type Certificate struct {
	DER        []byte
	SHA256     [32]byte
	Thumbprint string // SHA-1 of DER, uppercase hex
	Fields     *certinv.Certificate
	JSON       []byte // certinv.AppendCertificateJSON(nil, Fields)
}

// Stored returns c as a store keeps it.
func (c *Certificate) Stored() certinv.StoredCertificate {
	return certinv.StoredCertificate{SHA256: c.SHA256, DER: c.DER, JSON: c.JSON}
}

// NewCertificates returns n distinct self-signed certificates. Half are CAs,
// so that fixtures differ in more than their names.
func NewCertificates(tb testing.TB, n int) []*Certificate {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatalf("generate key: %v", err)
	}
	notBefore := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cs := make([]*Certificate, n)
	for i := range cs {
		serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
		if err != nil {
			tb.Fatalf("serial: %v", err)
		}
		name := pkix.Name{CommonName: fmt.Sprintf("storetest %d", i), Organization: []string{"certinv tests"}}
		tmpl := &x509.Certificate{
			SerialNumber:          serial,
			Subject:               name,
			Issuer:                name,
			NotBefore:             notBefore,
			NotAfter:              notBefore.AddDate(1, 0, i),
			KeyUsage:              x509.KeyUsageDigitalSignature,
			ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			BasicConstraintsValid: true,
			IsCA:                  i%2 == 1,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			tb.Fatalf("create certificate: %v", err)
		}
		cs[i] = fromDER(der, tmpl)
	}
	return cs
}

func fromDER(der []byte, tmpl *x509.Certificate) *Certificate {
	s1 := sha1.Sum(der)
	c := &Certificate{DER: der, SHA256: sha256.Sum256(der), Thumbprint: strings.ToUpper(hex.EncodeToString(s1[:]))}
	subjectType := certinv.SubjectEndEntity
	if tmpl.IsCA {
		subjectType = certinv.SubjectCA
	}
	dn := "CN=" + tmpl.Subject.CommonName + ", O=" + tmpl.Subject.Organization[0]
	n := certinv.Name{CommonName: tmpl.Subject.CommonName, Organization: tmpl.Subject.Organization[0]}
	c.Fields = &certinv.Certificate{
		SHA256:             c.SHA256,
		Thumbprint:         c.Thumbprint,
		SignatureAlgorithm: "sha256ECDSA",
		KeySize:            256,
		NotBefore:          tmpl.NotBefore.UTC(),
		NotAfter:           tmpl.NotAfter.UTC(),
		SubjectType:        subjectType,
		SerialNumber:       strings.ToUpper(tmpl.SerialNumber.Text(16)),
		IssuedTo:           dn,
		IssuedBy:           dn,
		Subject:            n,
		Issuer:             n,
		KeyUsage:           []string{"Digital Signature"},
		ExtendedKeyUsage:   []string{"Server Authentication"},
		SelfSigned:         true,
	}
	c.JSON = certinv.AppendCertificateJSON(nil, c.Fields)
	return c
}
