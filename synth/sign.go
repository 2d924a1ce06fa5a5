package synth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/md5" // registers crypto.MD5 for md5RSA signatures
	"crypto/rsa"
	"crypto/sha1" // registers crypto.SHA1 for sha1RSA and sha1ECDSA signatures
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/big"
)

// sigAlg is a certificate signature algorithm, named as Windows names it.
type sigAlg int

const (
	sha256RSA sigAlg = iota + 1
	sha384RSA
	sha512RSA
	sha1RSA
	md5RSA
	pssSHA256 // RSASSA-PSS with SHA-256, MGF1-SHA-256, 32-byte salt
	sha256ECDSA
	sha384ECDSA
	sha1ECDSA
	pureEd25519
)

func (a sigAlg) String() string {
	switch a {
	case sha256RSA:
		return "sha256RSA"
	case sha384RSA:
		return "sha384RSA"
	case sha512RSA:
		return "sha512RSA"
	case sha1RSA:
		return "sha1RSA"
	case md5RSA:
		return "md5RSA"
	case pssSHA256:
		return "RSASSA-PSS"
	case sha256ECDSA:
		return "sha256ECDSA"
	case sha384ECDSA:
		return "sha384ECDSA"
	case sha1ECDSA:
		return "sha1ECDSA"
	case pureEd25519:
		return "Ed25519"
	}
	return fmt.Sprintf("sigAlg(%d)", int(a))
}

func (a sigAlg) hash() crypto.Hash {
	switch a {
	case sha256RSA, pssSHA256, sha256ECDSA:
		return crypto.SHA256
	case sha384RSA, sha384ECDSA:
		return crypto.SHA384
	case sha512RSA:
		return crypto.SHA512
	case sha1RSA, sha1ECDSA:
		return crypto.SHA1
	case md5RSA:
		return crypto.MD5
	}
	return 0
}

func (a sigAlg) newHash() hash.Hash {
	switch a.hash() {
	case crypto.SHA256:
		return sha256.New()
	case crypto.SHA384:
		return sha512.New384()
	case crypto.SHA512:
		return sha512.New()
	case crypto.SHA1:
		return sha1.New()
	case crypto.MD5:
		return md5.New()
	}
	return nil
}

// The DER of each algorithm's AlgorithmIdentifier, as RFC 3279, 4055, 5758
// and 8410 give them: RSA ones with NULL parameters, ECDSA and Ed25519 ones
// without.
var algorithmIdentifiers = func() map[sigAlg][]byte {
	withNull := func(oid ...int) []byte {
		b, err := asn1.Marshal(pkix.AlgorithmIdentifier{Algorithm: oid, Parameters: asn1.NullRawValue})
		if err != nil {
			panic(err)
		}
		return b
	}
	bare := func(oid ...int) []byte {
		b, err := asn1.Marshal(pkix.AlgorithmIdentifier{Algorithm: oid})
		if err != nil {
			panic(err)
		}
		return b
	}
	sha256AI := pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}, Parameters: asn1.NullRawValue}
	mgf1, err := asn1.Marshal(sha256AI)
	if err != nil {
		panic(err)
	}
	pss, err := asn1.Marshal(struct {
		Algorithm  asn1.ObjectIdentifier
		Parameters struct {
			Hash       pkix.AlgorithmIdentifier `asn1:"explicit,tag:0"`
			MGF        pkix.AlgorithmIdentifier `asn1:"explicit,tag:1"`
			SaltLength int                      `asn1:"explicit,tag:2"`
		}
	}{
		Algorithm: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 10},
		Parameters: struct {
			Hash       pkix.AlgorithmIdentifier `asn1:"explicit,tag:0"`
			MGF        pkix.AlgorithmIdentifier `asn1:"explicit,tag:1"`
			SaltLength int                      `asn1:"explicit,tag:2"`
		}{
			Hash:       sha256AI,
			MGF:        pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 8}, Parameters: asn1.RawValue{FullBytes: mgf1}},
			SaltLength: 32,
		},
	})
	if err != nil {
		panic(err)
	}
	return map[sigAlg][]byte{
		sha256RSA:   withNull(1, 2, 840, 113549, 1, 1, 11),
		sha384RSA:   withNull(1, 2, 840, 113549, 1, 1, 12),
		sha512RSA:   withNull(1, 2, 840, 113549, 1, 1, 13),
		sha1RSA:     withNull(1, 2, 840, 113549, 1, 1, 5),
		md5RSA:      withNull(1, 2, 840, 113549, 1, 1, 4),
		pssSHA256:   pss,
		sha256ECDSA: bare(1, 2, 840, 10045, 4, 3, 2),
		sha384ECDSA: bare(1, 2, 840, 10045, 4, 3, 3),
		sha1ECDSA:   bare(1, 2, 840, 10045, 4, 1),
		pureEd25519: bare(1, 3, 101, 112),
	}
}()

// defaultAlg is the usual signature algorithm of a key.
func defaultAlg(k crypto.Signer) sigAlg {
	switch k := k.(type) {
	case *rsa.PrivateKey:
		return sha256RSA
	case *ecdsa.PrivateKey:
		if k.Curve.Params().BitSize > 256 {
			return sha384ECDSA
		}
		return sha256ECDSA
	case ed25519.PrivateKey:
		return pureEd25519
	}
	return 0
}

// captureKey is a crypto.Signer that x509.CreateCertificate takes for an
// Ed25519 key. With Ed25519 it is handed the whole TBSCertificate to sign; it
// keeps it and stops the creation. That is how issue gets a TBSCertificate
// that crypto/x509 encoded, for any signature algorithm (x509 refuses MD5),
// without paying for the signature check that CreateCertificate makes after
// signing.
type captureKey struct{ tbs []byte }

var captureEd25519Public = ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)).Public()

var errCaptured = errors.New("synth: tbs captured")

func (c *captureKey) Public() crypto.PublicKey { return captureEd25519Public }

func (c *captureKey) Sign(_ io.Reader, msg []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts.HashFunc() != 0 {
		return nil, fmt.Errorf("synth: capture signer called with hash %v", opts.HashFunc())
	}
	c.tbs = append([]byte(nil), msg...)
	return nil, errCaptured
}

// issue makes the DER of a certificate for pub from template, signed by
// signer with alg. parent names the issuer (its Subject and SubjectKeyId);
// for a self-signed certificate it is template itself. Every signature is
// deterministic: PKCS #1 v1.5, RFC 6979 ECDSA, Ed25519, and PSS with a salt
// taken from saltSource.
func issue(template, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer, alg sigAlg, saltSource io.Reader) ([]byte, error) {
	// parent.PublicKey must be nil for the capture key to be taken.
	p := *parent
	p.PublicKey = nil
	t := *template
	t.SignatureAlgorithm = x509.UnknownSignatureAlgorithm
	if parent == template {
		p = t
	}
	var capture captureKey
	_, err := x509.CreateCertificate(nil, &t, &p, pub, &capture)
	if !errors.Is(err, errCaptured) {
		if err == nil {
			err = errors.New("signer was not called")
		}
		return nil, fmt.Errorf("encode tbs certificate: %w", err)
	}
	tbs, err := replaceTBSSignatureAlgorithm(capture.tbs, algorithmIdentifiers[alg])
	if err != nil {
		return nil, err
	}
	sig, err := signTBS(tbs, signer, alg, saltSource)
	if err != nil {
		return nil, fmt.Errorf("sign %v: %w", alg, err)
	}
	return asn1.Marshal(struct {
		TBS       asn1.RawValue
		Algorithm asn1.RawValue
		Signature asn1.BitString
	}{
		TBS:       asn1.RawValue{FullBytes: tbs},
		Algorithm: asn1.RawValue{FullBytes: algorithmIdentifiers[alg]},
		Signature: asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)},
	})
}

// replaceTBSSignatureAlgorithm returns tbs with its signature field (the
// third element, after version and serialNumber) replaced by ai.
func replaceTBSSignatureAlgorithm(tbs, ai []byte) ([]byte, error) {
	var seq asn1.RawValue
	if rest, err := asn1.Unmarshal(tbs, &seq); err != nil || len(rest) > 0 || seq.Tag != asn1.TagSequence {
		return nil, fmt.Errorf("parse tbs certificate: not one sequence (%v)", err)
	}
	rest := seq.Bytes
	var head []byte
	for i := range 3 {
		var elem asn1.RawValue
		var err error
		if rest, err = asn1.Unmarshal(rest, &elem); err != nil {
			return nil, fmt.Errorf("parse tbs certificate: %w", err)
		}
		if i < 2 {
			head = append(head, elem.FullBytes...)
		}
	}
	body := make([]byte, 0, len(head)+len(ai)+len(rest))
	body = append(append(append(body, head...), ai...), rest...)
	return asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: body})
}

func signTBS(tbs []byte, signer crypto.Signer, alg sigAlg, saltSource io.Reader) ([]byte, error) {
	if alg == pureEd25519 {
		k, ok := signer.(ed25519.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("key %T cannot sign Ed25519", signer)
		}
		return ed25519.Sign(k, tbs), nil
	}
	h := alg.newHash()
	h.Write(tbs)
	digest := h.Sum(nil)
	switch k := signer.(type) {
	case *rsa.PrivateKey:
		switch alg {
		case sha256RSA, sha384RSA, sha512RSA, sha1RSA, md5RSA:
			return rsa.SignPKCS1v15(nil, k, alg.hash(), digest)
		case pssSHA256:
			return signPSS(k, digest, saltSource)
		}
	case *ecdsa.PrivateKey:
		switch alg {
		case sha256ECDSA, sha384ECDSA, sha1ECDSA:
			// A nil random source asks for an RFC 6979 deterministic signature.
			return k.Sign(nil, digest, alg.hash())
		}
	}
	return nil, fmt.Errorf("key %T cannot sign %v", signer, alg)
}

// signPSS makes an RSASSA-PSS signature (RFC 8017, 8.1.1) with SHA-256,
// MGF1-SHA-256 and a 32-byte salt read from saltSource. crypto/rsa draws
// the salt itself and, since Go 1.26, ignores the caller's randomness; a
// synthetic fleet needs the same bytes on every run, so the encoding and the
// private-key operation are done here.
func signPSS(k *rsa.PrivateKey, digest []byte, saltSource io.Reader) ([]byte, error) {
	const hLen, sLen = sha256.Size, sha256.Size
	if saltSource == nil {
		return nil, errors.New("pss needs a salt source")
	}
	salt := make([]byte, sLen)
	if _, err := io.ReadFull(saltSource, salt); err != nil {
		return nil, fmt.Errorf("read pss salt: %w", err)
	}
	emBits := k.N.BitLen() - 1
	emLen := (emBits + 7) / 8
	if emLen < hLen+sLen+2 {
		return nil, errors.New("key too small for pss")
	}
	mh := sha256.New()
	mh.Write(make([]byte, 8))
	mh.Write(digest)
	mh.Write(salt)
	hv := mh.Sum(nil)
	db := make([]byte, emLen-hLen-1)
	db[len(db)-sLen-1] = 0x01
	copy(db[len(db)-sLen:], salt)
	mask := mgf1SHA256(hv, len(db))
	for i := range db {
		db[i] ^= mask[i]
	}
	db[0] &= 0xff >> (8*emLen - emBits)
	em := append(append(db, hv...), 0xbc)

	// m^d mod n by the Chinese remainder theorem.
	m := new(big.Int).SetBytes(em)
	p, q := k.Primes[0], k.Primes[1]
	m1 := new(big.Int).Exp(m, k.Precomputed.Dp, p)
	m2 := new(big.Int).Exp(m, k.Precomputed.Dq, q)
	h := new(big.Int).Sub(m1, m2)
	h.Mul(h, k.Precomputed.Qinv)
	h.Mod(h, p)
	h.Mul(h, q)
	h.Add(h, m2)
	sig := make([]byte, k.Size())
	return h.FillBytes(sig), nil
}

func mgf1SHA256(seed []byte, n int) []byte {
	out := make([]byte, 0, n+sha256.Size)
	for counter := uint32(0); len(out) < n; counter++ {
		h := sha256.New()
		h.Write(seed)
		h.Write([]byte{byte(counter >> 24), byte(counter >> 16), byte(counter >> 8), byte(counter)})
		out = h.Sum(out)
	}
	return out[:n]
}
