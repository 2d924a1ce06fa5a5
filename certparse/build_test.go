package certparse

// A small DER builder for certificates the fixtures cannot hold: shapes
// openssl will not make (MD2, the old basic constraints extension, values
// that are not strings) and hostile ones.

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"testing"
)

func tlv(tag byte, parts ...[]byte) []byte {
	var content []byte
	for _, p := range parts {
		content = append(content, p...)
	}
	n := len(content)
	out := []byte{tag}
	switch {
	case n < 0x80:
		out = append(out, byte(n))
	case n < 0x100:
		out = append(out, 0x81, byte(n))
	case n < 0x10000:
		out = append(out, 0x82, byte(n>>8), byte(n))
	default:
		out = append(out, 0x83, byte(n>>16), byte(n>>8), byte(n))
	}
	return append(out, content...)
}

func seq(parts ...[]byte) []byte { return tlv(tagSequence, parts...) }
func oid(dotted string) []byte   { return tlv(tagOID, []byte(encodeOID(dotted))) }
func utf8Str(s string) []byte    { return tlv(tagUTF8String, []byte(s)) }

// rdnName is a Name of one single-valued RDN per pair of OID and value.
func rdnName(pairs ...[]byte) []byte {
	var rdns [][]byte
	for i := 0; i < len(pairs); i += 2 {
		rdns = append(rdns, tlv(tagSet, seq(pairs[i], pairs[i+1])))
	}
	return seq(rdns...)
}

func ext(id string, value []byte) []byte {
	return seq(oid(id), tlv(tagOctetString, value))
}

// certSpec describes a certificate to build.
type certSpec struct {
	serial     []byte // INTEGER content
	sigAlg     []byte // AlgorithmIdentifier, inner and outer
	outerAlg   []byte // outer AlgorithmIdentifier when it differs
	issuer     []byte
	subject    []byte
	notBefore  []byte
	notAfter   []byte
	spki       []byte
	extensions [][]byte
	sign       func(tbs []byte) []byte // signature octets
}

func (s certSpec) build() []byte {
	if s.serial == nil {
		s.serial = []byte{1}
	}
	if s.notBefore == nil {
		s.notBefore = tlv(tagUTCTime, []byte("200101000000Z"))
	}
	if s.notAfter == nil {
		s.notAfter = tlv(tagUTCTime, []byte("300101000000Z"))
	}
	parts := [][]byte{
		tlv(0xa0, tlv(tagInteger, []byte{2})),
		tlv(tagInteger, s.serial),
		s.sigAlg,
		s.issuer,
		seq(s.notBefore, s.notAfter),
		s.subject,
		s.spki,
	}
	if len(s.extensions) > 0 {
		parts = append(parts, tlv(0xa3, seq(s.extensions...)))
	}
	tbs := seq(parts...)
	var sig []byte
	if s.sign != nil {
		sig = s.sign(tbs)
	}
	outer := s.sigAlg
	if s.outerAlg != nil {
		outer = s.outerAlg
	}
	return seq(tbs, outer, tlv(tagBitString, append([]byte{0}, sig...)))
}

var testRSAKey = func() func(t testing.TB) *rsa.PrivateKey {
	var key *rsa.PrivateKey
	return func(t testing.TB) *rsa.PrivateKey {
		if key == nil {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				t.Fatal(err)
			}
			key = k
		}
		return key
	}
}()

func rsaSPKI(t testing.TB, key *rsa.PrivateKey) []byte {
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return spki
}

// signPKCS1 signs tbs with key, hashing with h; MD2 through its DigestInfo.
func signPKCS1(t testing.TB, key *rsa.PrivateKey, h crypto.Hash) func([]byte) []byte {
	return func(tbs []byte) []byte {
		var sig []byte
		var err error
		if h == hashMD2 {
			d := md2(tbs) // md2 itself is checked against RFC 1319 in TestMD2
			prefix := []byte{0x30, 0x20, 0x30, 0x0c, 0x06, 0x08, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x02, 0x05, 0x00, 0x04, 0x10}
			sig, err = rsa.SignPKCS1v15(nil, key, 0, append(prefix, d[:]...))
		} else {
			w := h.New()
			w.Write(tbs)
			sig, err = rsa.SignPKCS1v15(nil, key, h, w.Sum(nil))
		}
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
}
