package synth

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"
)

func TestIssue(t *testing.T) {
	keys, err := loadPool()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		alg  sigAlg
		key  crypto.Signer
		want x509.SignatureAlgorithm
	}{
		{sha256RSA, keys.rsa2048[0], x509.SHA256WithRSA},
		{sha384RSA, keys.rsa2048[0], x509.SHA384WithRSA},
		{sha512RSA, keys.rsa2048[0], x509.SHA512WithRSA},
		{sha1RSA, keys.rsa1024[0], x509.SHA1WithRSA},
		{md5RSA, keys.rsa1024[0], x509.MD5WithRSA},
		{pssSHA256, keys.rsa2048[0], x509.SHA256WithRSAPSS},
		{sha256ECDSA, keys.p256[0], x509.ECDSAWithSHA256},
		{sha384ECDSA, keys.p384[0], x509.ECDSAWithSHA384},
		{sha1ECDSA, keys.p256[0], x509.ECDSAWithSHA1},
		{pureEd25519, keys.ed[0], x509.PureEd25519},
	}
	for _, tt := range tests {
		t.Run(tt.alg.String(), func(t *testing.T) {
			issuer := &x509.Certificate{Subject: pkix.Name{CommonName: "Test CA"}, SubjectKeyId: []byte{1, 2, 3, 4}}
			tmpl := &x509.Certificate{
				SerialNumber: big.NewInt(4242),
				Subject:      pkix.Name{CommonName: "leaf.example"},
				NotBefore:    testNow,
				NotAfter:     testNow.Add(90 * 24 * time.Hour),
				DNSNames:     []string{"leaf.example"},
			}
			leafKey := keys.p256[5]
			make := func() []byte {
				der, err := issue(tmpl, issuer, leafKey.Public(), tt.key, tt.alg, newRNG(1, "salt", 0))
				if err != nil {
					t.Fatalf("issue(%v) = %v", tt.alg, err)
				}
				return der
			}
			der := make()
			if again := make(); !bytes.Equal(der, again) {
				t.Errorf("issue(%v) twice gives different bytes", tt.alg)
			}
			c, err := x509.ParseCertificate(der)
			if err != nil {
				t.Fatalf("ParseCertificate(issue(%v)) = %v", tt.alg, err)
			}
			if c.SignatureAlgorithm != tt.want {
				t.Errorf("issue(%v).SignatureAlgorithm = %v, want %v", tt.alg, c.SignatureAlgorithm, tt.want)
			}
			if err := checkSignature(c, tt.key.Public()); err != nil {
				t.Errorf("issue(%v): signature does not verify: %v", tt.alg, err)
			}
			if !bytes.Equal(c.AuthorityKeyId, issuer.SubjectKeyId) || c.Issuer.CommonName != "Test CA" || c.SerialNumber.Cmp(tmpl.SerialNumber) != 0 {
				t.Errorf("issue(%v): issuer %q, authority key id %x, serial %v", tt.alg, c.Issuer, c.AuthorityKeyId, c.SerialNumber)
			}
		})
	}
}
