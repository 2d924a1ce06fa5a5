package certparse

import (
	"crypto"
	//lint:ignore SA1019 DSA certificates exist in real stores; they are only verified here, never used to sign
	"crypto/dsa"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/fips140"
	_ "crypto/md5" // registers crypto.MD5 for md5RSA
	"crypto/rsa"
	_ "crypto/sha1" // registers crypto.SHA1
	_ "crypto/sha256"
	_ "crypto/sha512"
	"crypto/x509"
	"math/big"
)

// Bounds on the keys whose signatures are checked, so that a hostile
// certificate cannot make Parse slow: within them a check costs a few
// milliseconds at most (BenchmarkParseHostile); beyond them SelfSigned is
// false.
const (
	maxRSABits      = 16384
	maxRSAExpBits   = 64 // for the math/big path; crypto/rsa takes at most 31
	maxDSAPBits     = 4096
	maxDSAQBits     = 256  // FIPS 186 tops at 256
	minCryptoRSABit = 1024 // crypto/rsa refuses smaller keys
)

// Digest algorithm OIDs in RSASSA-PSS parameters.
var pssHashes = func() map[string]crypto.Hash {
	t := map[string]crypto.Hash{}
	t[encodeOID("1.3.14.3.2.26")] = crypto.SHA1
	t[encodeOID("2.16.840.1.101.3.4.2.4")] = crypto.SHA224
	t[encodeOID("2.16.840.1.101.3.4.2.1")] = crypto.SHA256
	t[encodeOID("2.16.840.1.101.3.4.2.2")] = crypto.SHA384
	t[encodeOID("2.16.840.1.101.3.4.2.3")] = crypto.SHA512
	return t
}()

var oidMGF1 = encodeOID("1.2.840.113549.1.1.8")

// digestInfoPrefix is the DER of DigestInfo up to the digest, per hash
// (RFC 8017 section 9.2, note 1; RFC 2313 for MD2).
var digestInfoPrefix = map[crypto.Hash][]byte{
	hashMD2:       {0x30, 0x20, 0x30, 0x0c, 0x06, 0x08, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x02, 0x05, 0x00, 0x04, 0x10},
	crypto.MD5:    {0x30, 0x20, 0x30, 0x0c, 0x06, 0x08, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x05, 0x05, 0x00, 0x04, 0x10},
	crypto.SHA1:   {0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14},
	crypto.SHA256: {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20},
	crypto.SHA384: {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30},
	crypto.SHA512: {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40},
}

// digest hashes msg with h, including MD2.
func digest(h crypto.Hash, msg []byte) []byte {
	if h == hashMD2 {
		d := md2(msg)
		return d[:]
	}
	w := h.New()
	w.Write(msg)
	return w.Sum(nil)
}

// verifySelf reports whether sigBits (a BIT STRING's content) is alg's
// signature over tbs by the key k. algParams is the content of the
// signature AlgorithmIdentifier (OID first). Legacy algorithms (MD5, SHA-1,
// DSA) are checked outside FIPS 140-only enforcement: the answer describes
// a certificate; nothing is trusted because of it.
func verifySelf(alg sigAlg, algContent []byte, k spkiFields, tbs, sigBits []byte) (ok bool) {
	if sigBits[0] != 0 {
		return false
	}
	sig := sigBits[1:]
	fips140.WithoutEnforcement(func() {
		switch alg.kind {
		case sigRSA:
			ok = alg.hash != 0 && k.kind == keyRSA && verifyPKCS1v15(k, alg.hash, digest(alg.hash, tbs), sig)
		case sigPSS:
			ok = (k.kind == keyRSA || k.kind == keyRSAPSS) && verifyPSS(k, algContent, tbs, sig)
		case sigECDSA:
			ok = k.kind == keyEC && verifyECDSA(k, digest(alg.hash, tbs), sig)
		case sigDSA:
			ok = alg.hash != 0 && k.kind == keyDSA && verifyDSA(k, digest(alg.hash, tbs), sig)
		case sigEd448:
			ok = k.kind == keyEd448 && ed448Verify(k.key, tbs, sig)
		case sigEd25519:
			ok = k.kind == keyEd25519 && len(k.key) == ed25519.PublicKeySize &&
				ed25519.Verify(ed25519.PublicKey(k.key), tbs, sig)
		}
	})
	return ok
}

// rsaKey returns k as an *rsa.PublicKey for crypto/rsa, the modulus and
// exponent as numbers, and whether crypto/rsa can take the key at all.
func rsaKey(k spkiFields) (n, e *big.Int, std, ok bool) {
	if k.rsaN[0]&0x80 != 0 || k.rsaE[0]&0x80 != 0 { // negative
		return nil, nil, false, false
	}
	nBits, eBits := unsignedBits(k.rsaN), unsignedBits(k.rsaE)
	if nBits == 0 || nBits > maxRSABits || eBits == 0 || eBits > maxRSAExpBits {
		return nil, nil, false, false
	}
	n = new(big.Int).SetBytes(k.rsaN)
	e = new(big.Int).SetBytes(k.rsaE)
	return n, e, nBits >= minCryptoRSABit && eBits <= 31, true
}

// verifyPKCS1v15 checks an RSASSA-PKCS1-v1_5 signature over a digest. Keys
// that crypto/rsa refuses (under 1024 bits, exponents over 2^31) are
// checked with math/big; that is plain arithmetic on public values.
func verifyPKCS1v15(k spkiFields, h crypto.Hash, d, sig []byte) bool {
	prefix, ok := digestInfoPrefix[h]
	if !ok {
		return false
	}
	t := append(append(make([]byte, 0, len(prefix)+len(d)), prefix...), d...)
	n, e, std, ok := rsaKey(k)
	if !ok {
		return false
	}
	if std {
		// Hash 0: t is compared as given, which lets MD2 use the same path.
		return rsa.VerifyPKCS1v15(&rsa.PublicKey{N: n, E: int(e.Int64())}, 0, t, sig) == nil
	}
	size := (n.BitLen() + 7) / 8
	if len(sig) != size || size < len(t)+11 {
		return false
	}
	s := new(big.Int).SetBytes(sig)
	if s.Cmp(n) >= 0 {
		return false
	}
	em := s.Exp(s, e, n).FillBytes(make([]byte, size))
	want := make([]byte, size)
	want[1] = 0x01
	for i := 2; i < size-len(t)-1; i++ {
		want[i] = 0xff
	}
	copy(want[size-len(t):], t)
	return string(em) == string(want)
}

// verifyPSS checks an RSASSA-PSS signature with the hash and salt length
// of its parameters. crypto/rsa uses the message hash for MGF1 as well, so
// a signature whose MGF1 hash differs is reported as not verified.
func verifyPSS(k spkiFields, algContent, tbs, sig []byte) bool {
	h, salt, ok := parsePSSParams(algContent)
	if !ok {
		return false
	}
	n, e, std, ok := rsaKey(k)
	if !ok || !std {
		return false
	}
	opts := &rsa.PSSOptions{SaltLength: salt, Hash: h}
	if salt == 0 {
		opts.SaltLength = rsa.PSSSaltLengthAuto // 0 means "auto" to crypto/rsa
	}
	return rsa.VerifyPSS(&rsa.PublicKey{N: n, E: int(e.Int64())}, h, digest(h, tbs), sig, opts) == nil
}

// parsePSSParams reads RSASSA-PSS-params (RFC 4055) after the OID in an
// AlgorithmIdentifier's content, with their defaults: SHA-1, MGF1 with
// SHA-1, salt 20, trailer 1.
func parsePSSParams(algContent []byte) (h crypto.Hash, salt int, ok bool) {
	_, rest, ok := readTagged(algContent, tagOID)
	if !ok {
		return 0, 0, false
	}
	seq, rest, ok := readTagged(rest, tagSequence)
	if !ok || len(rest) != 0 {
		return 0, 0, false
	}
	h, mgfHash, salt := crypto.SHA1, crypto.SHA1, 20
	b := seq.content
	if peekTag(b, 0xa0) {
		var e element
		if e, b, ok = readElement(b); !ok {
			return 0, 0, false
		}
		if h, ok = hashAlgorithm(e.content); !ok {
			return 0, 0, false
		}
	}
	if peekTag(b, 0xa1) {
		var e element
		if e, b, ok = readElement(b); !ok {
			return 0, 0, false
		}
		mgf, r, ok := readTagged(e.content, tagSequence)
		if !ok || len(r) != 0 {
			return 0, 0, false
		}
		oid, r, ok := readTagged(mgf.content, tagOID)
		if !ok || string(oid.content) != oidMGF1 {
			return 0, 0, false
		}
		if mgfHash, ok = hashAlgorithm(r); !ok {
			return 0, 0, false
		}
	}
	if peekTag(b, 0xa2) {
		var e element
		if e, b, ok = readElement(b); !ok {
			return 0, 0, false
		}
		v, r, ok := readInteger(e.content)
		if !ok || len(r) != 0 || v.content[0]&0x80 != 0 || unsignedBits(v.content) > 16 {
			return 0, 0, false
		}
		salt = int(new(big.Int).SetBytes(v.content).Int64())
	}
	if peekTag(b, 0xa3) {
		var e element
		if e, b, ok = readElement(b); !ok {
			return 0, 0, false
		}
		v, r, ok := readInteger(e.content)
		if !ok || len(r) != 0 || string(v.content) != "\x01" {
			return 0, 0, false
		}
	}
	if len(b) != 0 || mgfHash != h {
		return 0, 0, false
	}
	return h, salt, true
}

// hashAlgorithm reads an AlgorithmIdentifier of a digest (parameters NULL
// or absent).
func hashAlgorithm(b []byte) (crypto.Hash, bool) {
	seq, r, ok := readTagged(b, tagSequence)
	if !ok || len(r) != 0 {
		return 0, false
	}
	oid, _, ok := readTagged(seq.content, tagOID)
	if !ok {
		return 0, false
	}
	h, ok := pssHashes[string(oid.content)]
	return h, ok
}

// verifyECDSA checks an ECDSA signature: with crypto/ecdsa on the curves
// it has (P-224, P-256, P-384, P-521), with the package's own arithmetic on
// the other named curves it knows and on explicit parameters.
func verifyECDSA(k spkiFields, d, sig []byte) bool {
	if k.params.tag == tagOID {
		if c, ok := oidNamedCurves[string(k.params.content)]; ok {
			return c.verify(k.key, d, sig)
		}
		pub, err := x509.ParsePKIXPublicKey(k.full)
		if err != nil {
			return false
		}
		ec, ok := pub.(*ecdsa.PublicKey)
		return ok && ecdsa.VerifyASN1(ec, d, sig)
	}
	if k.params.tag == tagSequence {
		if c, ok := parseECParameters(k.params.content); ok {
			return c.verify(k.key, d, sig)
		}
	}
	return false
}

// verifyDSA checks a DSA signature, Dss-Sig-Value ::= SEQUENCE { r, s }.
func verifyDSA(k spkiFields, d, sig []byte) bool {
	if k.dsaP == nil || k.dsaY == nil {
		return false // parameters inherited from an issuer: not self-contained
	}
	for _, v := range [][]byte{k.dsaP, k.dsaQ, k.dsaG, k.dsaY} {
		if v[0]&0x80 != 0 {
			return false
		}
	}
	if unsignedBits(k.dsaP) > maxDSAPBits || unsignedBits(k.dsaQ) > maxDSAQBits {
		return false
	}
	seq, rest, ok := readTagged(sig, tagSequence)
	if !ok || len(rest) != 0 {
		return false
	}
	r, rest, ok1 := readInteger(seq.content)
	s, rest, ok2 := readInteger(rest)
	if !ok1 || !ok2 || len(rest) != 0 || r.content[0]&0x80 != 0 || s.content[0]&0x80 != 0 {
		return false
	}
	pub := &dsa.PublicKey{
		Parameters: dsa.Parameters{
			P: new(big.Int).SetBytes(k.dsaP),
			Q: new(big.Int).SetBytes(k.dsaQ),
			G: new(big.Int).SetBytes(k.dsaG),
		},
		Y: new(big.Int).SetBytes(k.dsaY),
	}
	if pub.Q.Sign() == 0 {
		return false
	}
	return dsa.Verify(pub, d, new(big.Int).SetBytes(r.content), new(big.Int).SetBytes(s.content))
}
