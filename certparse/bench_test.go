package certparse

import (
	"crypto/sha256"
	"crypto/x509"
	"testing"
)

// BenchmarkParse parses every certificate of the CA bundle; ns/op is per
// certificate. The bundle's roots are all self-signed, so every one pays
// for a signature check.
func BenchmarkParse(b *testing.B) {
	certs := bundleCerts(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := Parse(certs[i%len(certs)]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFloor is the least any parser could do with the same
// certificates: crypto/x509's parse (no signature check) and a SHA-256.
// BenchmarkParse's ratio to it is the cost of the Windows fields and the
// self-signature check.
func BenchmarkFloor(b *testing.B) {
	certs := bundleCerts(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		der := certs[i%len(certs)]
		if _, err := x509.ParseCertificate(der); err != nil {
			b.Fatal(err)
		}
		_ = sha256.Sum256(der)
	}
}

// BenchmarkParseNoVerify parses the bundle's certificates with their
// issuer name changed by one byte, so that none is self-issued and no
// signature is checked: the cost of the fields alone.
func BenchmarkParseNoVerify(b *testing.B) {
	certs := bundleCerts(b)
	var altered [][]byte
	for _, der := range certs {
		if d := alterIssuer(der); d != nil {
			altered = append(altered, d)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		c, err := Parse(altered[i%len(altered)])
		if err != nil {
			b.Fatal(err)
		}
		if c.SelfSigned {
			b.Fatal("altered certificate reported self-signed")
		}
	}
}

// BenchmarkParseHostile parses certificates built to be slow: the largest
// keys whose signatures Parse still checks, and a name of thousands of
// attributes. Their cost is the bound on what one upload can make the
// server do.
func BenchmarkParseHostile(b *testing.B) {
	big := func(n int, top byte) []byte {
		v := make([]byte, n)
		for i := range v {
			v[i] = byte(i*7 + 1)
		}
		v[0] = top
		v[n-1] |= 1
		return v
	}
	integer := func(v []byte) []byte { return tlv(tagInteger, append([]byte{0}, v...)) }
	rsaSPKI := func(n, e []byte) []byte {
		key := seq(integer(n), integer(e))
		return seq(seq(oid("1.2.840.113549.1.1.1"), tlv(tagNull)), tlv(tagBitString, append([]byte{0}, key...)))
	}
	sig := func(n int) func([]byte) []byte { return func([]byte) []byte { return big(n, 0x7f) } }
	var manyCNs [][]byte
	for i := 0; i < 2500; i++ {
		manyCNs = append(manyCNs, oid("2.5.4.3"), utf8Str("x"))
	}
	dsaP, dsaQ := big(maxDSAPBits/8, 0xff), big(maxDSAQBits/8, 0xff)
	dsaSPKI := seq(seq(oid("1.2.840.10040.4.1"), seq(integer(dsaP), integer(dsaQ), integer(dsaP[:len(dsaP)-1]))),
		tlv(tagBitString, append([]byte{0}, integer(dsaP[1:])...)))
	dsaSig := func([]byte) []byte { return seq(integer(dsaQ[1:]), integer(dsaQ[2:])) }
	cases := []struct {
		name string
		spec certSpec
	}{
		{"rsa-16384-bit", certSpec{sigAlg: algSHA256RSA, issuer: nameRoot, subject: nameRoot,
			spki: rsaSPKI(big(maxRSABits/8, 0xff), []byte{1, 0, 1}), sign: sig(maxRSABits / 8)}},
		{"rsa-1016-bit-64-bit-exponent", certSpec{sigAlg: algSHA256RSA, issuer: nameRoot, subject: nameRoot,
			spki: rsaSPKI(big(127, 0xff), big(8, 0xff)), sign: sig(127)}},
		{"dsa-4096-bit-p-256-bit-q", certSpec{sigAlg: seq(oid("2.16.840.1.101.3.4.3.2")), issuer: nameRoot, subject: nameRoot,
			spki: dsaSPKI, sign: dsaSig}},
		{"2500-attribute-name", certSpec{sigAlg: algSHA256RSA, issuer: rdnName(manyCNs...), subject: rdnName(manyCNs...),
			spki: rsaSPKI(big(256, 0xff), []byte{1, 0, 1}), sign: sig(256)}},
	}
	for _, c := range cases {
		der := c.spec.build()
		b.Run(c.name, func(b *testing.B) {
			if len(der) > 64<<10 {
				b.Fatalf("%d bytes: over the size limit", len(der))
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Parse(der); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
