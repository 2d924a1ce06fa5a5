// Package certparse derives every exported field of a certificate from its
// DER: the one parser behind the server's ingest and `certinv scan`, so that
// a field means the same wherever it is shown.
//
// Fields take the form Windows gives them (certutil, X509Certificate2),
// since the export imitates Microsoft Defender's: distinguished names with
// the last RDN first and crypt32's short names and quoting, signature
// algorithms and extended key usages by crypt32's names, serial numbers as
// their encoded octets. The parser reads the DER itself rather than through
// crypto/x509, which rejects certificates that real stores hold (negative
// serial numbers, MD2 signatures, explicit curve parameters).
//
// SelfSigned is proven, not guessed: the subject and issuer must be the same
// bytes and the certificate's own key must verify its signature. Parse
// checks RSA (PKCS #1 v1.5 with MD2, MD5, SHA-1 and SHA-2; PSS), DSA,
// ECDSA on the NIST curves, brainpool, secp256k1 and explicit prime-field
// parameters, Ed25519 and Ed448. The tests compare every field with what
// openssl derives from the same bytes.
package certparse

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"

	"github.com/certinv/certinv"
)

// Extension OIDs.
var (
	oidExtKeyUsage            = encodeOID("2.5.29.15")
	oidExtExtKeyUsage         = encodeOID("2.5.29.37")
	oidExtBasicConstraints    = encodeOID("2.5.29.19")
	oidExtBasicConstraintsOld = encodeOID("2.5.29.10") // X.509 1993 draft form, still in old roots
)

// invalid returns the client-safe error for input that is not a certificate.
func invalid(reason string) error {
	return certinv.Errorf(certinv.EInvalid, "not a DER certificate: %s", reason)
}

// Parse derives the exported fields of the certificate der. der must be
// exactly one DER-encoded X.509 certificate of at most
// certinv.MaxCertificateBytes bytes. An error is a *certinv.Error of kind
// certinv.EInvalid whose message may be shown to the client that sent der.
//
// Parse accepts what Windows certificate stores hold even where current
// rules forbid it: negative or zero serial numbers, non-minimal integers,
// version 1 certificates, MD2 and MD5 signatures. It never panics, and its
// work is bounded by the size limit: signature checks are skipped (and
// SelfSigned is false) for keys too large to check cheaply.
func Parse(der []byte) (*certinv.Certificate, error) {
	if len(der) == 0 {
		return nil, invalid("empty input")
	}
	if len(der) > certinv.MaxCertificateBytes {
		return nil, certinv.Errorf(certinv.EInvalid, "certificate larger than %d bytes", certinv.MaxCertificateBytes)
	}
	cert, rest, ok := readTagged(der, tagSequence)
	if !ok {
		return nil, invalid("malformed outer SEQUENCE")
	}
	if len(rest) != 0 {
		return nil, certinv.Errorf(certinv.EInvalid, "trailing data after certificate")
	}
	tbs, rest, ok := readTagged(cert.content, tagSequence)
	if !ok {
		return nil, invalid("malformed TBSCertificate")
	}
	outerAlg, rest, ok := readTagged(rest, tagSequence)
	if !ok {
		return nil, invalid("malformed signatureAlgorithm")
	}
	sigBits, rest, ok := readTagged(rest, tagBitString)
	if !ok || len(sigBits.content) == 0 || len(rest) != 0 {
		return nil, invalid("malformed signature")
	}
	sigOID, _, ok := readTagged(outerAlg.content, tagOID)
	if !ok || !validOID(sigOID.content) {
		return nil, invalid("malformed signatureAlgorithm")
	}

	t, err := parseTBS(tbs.content)
	if err != nil {
		return nil, err
	}

	c := &certinv.Certificate{
		SHA256:       sha256.Sum256(der),
		NotBefore:    t.notBefore,
		NotAfter:     t.notAfter,
		SubjectType:  certinv.SubjectEndEntity,
		SerialNumber: strings.ToUpper(hex.EncodeToString(t.serial)),
		IssuedTo:     t.subject.str,
		IssuedBy:     t.issuer.str,
		Subject:      t.subject.name,
		Issuer:       t.issuer.name,
		KeySize:      t.keySize,
	}
	sum1 := sha1.Sum(der)
	c.Thumbprint = strings.ToUpper(hex.EncodeToString(sum1[:]))
	alg, known := sigAlgs[string(sigOID.content)]
	if known {
		c.SignatureAlgorithm = alg.name
	} else {
		c.SignatureAlgorithm = oidString(sigOID.content)
	}
	if t.isCA {
		c.SubjectType = certinv.SubjectCA
	}
	c.KeyUsage = t.keyUsage
	c.ExtendedKeyUsage = t.extKeyUsage

	// A certificate is self-signed when it names itself as issuer and its
	// own key verifies its signature. The inner and outer algorithm must
	// agree, or the signature covers a different claim than the one shown.
	if known && string(t.issuerRaw) == string(t.subjectRaw) && string(t.sigAlgRaw) == string(outerAlg.full) {
		c.SelfSigned = verifySelf(alg, outerAlg.content, t.spki, tbs.full, sigBits.content)
	}
	return c, nil
}

// tbsFields holds what Parse takes from the TBSCertificate.
type tbsFields struct {
	serial                []byte
	sigAlgRaw             []byte
	issuerRaw, subjectRaw []byte
	issuer, subject       parsedName
	notBefore, notAfter   time.Time
	spki                  spkiFields
	keySize               int
	isCA                  bool
	keyUsage              []string
	extKeyUsage           []string
}

func parseTBS(b []byte) (*tbsFields, error) {
	var t tbsFields
	if peekTag(b, 0xa0) { // [0] EXPLICIT Version DEFAULT v1
		v, rest, ok := readElement(b)
		if !ok {
			return nil, invalid("malformed version")
		}
		ver, vrest, ok := readInteger(v.content)
		if !ok || len(vrest) != 0 || len(ver.content) == 0 {
			return nil, invalid("malformed version")
		}
		b = rest
	}
	serial, b, ok := readInteger(b)
	if !ok || len(serial.content) == 0 {
		return nil, invalid("malformed serial number")
	}
	t.serial = serial.content
	sigAlg, b, ok := readTagged(b, tagSequence)
	if !ok {
		return nil, invalid("malformed signature algorithm")
	}
	t.sigAlgRaw = sigAlg.full
	issuer, b, ok := readTagged(b, tagSequence)
	if !ok {
		return nil, invalid("malformed issuer")
	}
	t.issuerRaw = issuer.full
	if t.issuer, ok = parseName(issuer.content); !ok {
		return nil, invalid("malformed issuer")
	}
	validity, b, ok := readTagged(b, tagSequence)
	if !ok {
		return nil, invalid("malformed validity")
	}
	if t.notBefore, t.notAfter, ok = parseValidity(validity.content); !ok {
		return nil, invalid("malformed validity")
	}
	subject, b, ok := readTagged(b, tagSequence)
	if !ok {
		return nil, invalid("malformed subject")
	}
	t.subjectRaw = subject.full
	if t.subject, ok = parseName(subject.content); !ok {
		return nil, invalid("malformed subject")
	}
	spki, b, ok := readTagged(b, tagSequence)
	if !ok {
		return nil, invalid("malformed subject public key info")
	}
	if t.spki, ok = parseSPKI(spki); !ok {
		return nil, invalid("malformed subject public key info")
	}
	t.keySize = t.spki.bits
	// issuerUniqueID [1] and subjectUniqueID [2], IMPLICIT BIT STRING.
	for _, tag := range []byte{0x81, 0x82} {
		if peekTag(b, tag) {
			if _, b, ok = readElement(b); !ok {
				return nil, invalid("malformed unique identifier")
			}
		}
	}
	if peekTag(b, 0xa3) {
		exts, rest, ok := readElement(b)
		if !ok {
			return nil, invalid("malformed extensions")
		}
		b = rest
		if err := t.parseExtensions(exts.content); err != nil {
			return nil, err
		}
	}
	if len(b) != 0 {
		return nil, invalid("unexpected data in TBSCertificate")
	}
	return &t, nil
}

// parseExtensions reads the [3] Extensions wrapper's content. Of each
// extension the first occurrence counts, as with crypt32's CertFindExtension.
func (t *tbsFields) parseExtensions(b []byte) error {
	seq, rest, ok := readTagged(b, tagSequence)
	if !ok || len(rest) != 0 {
		return invalid("malformed extensions")
	}
	var seenKU, seenEKU, seenBC bool
	for b := seq.content; len(b) > 0; {
		ext, rest, ok := readTagged(b, tagSequence)
		if !ok {
			return invalid("malformed extensions")
		}
		b = rest
		oid, er, ok := readTagged(ext.content, tagOID)
		if !ok || !validOID(oid.content) {
			return invalid("malformed extensions")
		}
		if peekTag(er, tagBoolean) {
			if _, er, ok = readElement(er); !ok {
				return invalid("malformed extensions")
			}
		}
		val, er, ok := readTagged(er, tagOctetString)
		if !ok || len(er) != 0 {
			return invalid("malformed extensions")
		}
		switch string(oid.content) {
		case oidExtKeyUsage:
			if seenKU {
				continue
			}
			seenKU = true
			if t.keyUsage, ok = parseKeyUsage(val.content); !ok {
				return invalid("malformed key usage extension")
			}
		case oidExtExtKeyUsage:
			if seenEKU {
				continue
			}
			seenEKU = true
			if t.extKeyUsage, ok = parseExtKeyUsage(val.content); !ok {
				return invalid("malformed extended key usage extension")
			}
		case oidExtBasicConstraints:
			if seenBC {
				continue
			}
			seenBC = true
			if t.isCA, ok = parseBasicConstraints(val.content); !ok {
				return invalid("malformed basic constraints extension")
			}
		}
	}
	if !seenBC {
		// Without the current extension, crypt32 reads the old one
		// (2.5.29.10): its subjectType bit string's first bit is cA.
		for b := seq.content; len(b) > 0; {
			ext, rest, _ := readElement(b)
			b = rest
			oid, er, _ := readElement(ext.content)
			if string(oid.content) != oidExtBasicConstraintsOld {
				continue
			}
			if peekTag(er, tagBoolean) {
				_, er, _ = readElement(er)
			}
			val, _, _ := readElement(er)
			isCA, ok := parseOldBasicConstraints(val.content)
			if !ok {
				return invalid("malformed basic constraints extension")
			}
			t.isCA = isCA
			break
		}
	}
	return nil
}

// parseKeyUsage reads a KeyUsage BIT STRING. A present extension with no
// bit set gives an empty, non-nil slice.
func parseKeyUsage(b []byte) ([]string, bool) {
	bs, rest, ok := readTagged(b, tagBitString)
	if !ok || len(rest) != 0 || len(bs.content) == 0 {
		return nil, false
	}
	unused := int(bs.content[0])
	bits := bs.content[1:]
	if unused > 7 || len(bits) == 0 && unused != 0 {
		return nil, false
	}
	n := len(bits)*8 - unused
	out := []string{}
	for i := 0; i < n && i < len(keyUsageNames); i++ {
		if bits[i/8]&(0x80>>(i%8)) != 0 {
			out = append(out, keyUsageNames[i]...)
		}
	}
	return out, true
}

// parseExtKeyUsage reads an ExtKeyUsageSyntax, SEQUENCE OF OID, keeping
// the order of the encoding.
func parseExtKeyUsage(b []byte) ([]string, bool) {
	seq, rest, ok := readTagged(b, tagSequence)
	if !ok || len(rest) != 0 {
		return nil, false
	}
	out := []string{}
	for b := seq.content; len(b) > 0; {
		oid, rest, ok := readTagged(b, tagOID)
		if !ok || !validOID(oid.content) {
			return nil, false
		}
		b = rest
		if name, ok := ekuNames[string(oid.content)]; ok {
			out = append(out, name)
		} else {
			out = append(out, oidString(oid.content))
		}
	}
	return out, true
}

// parseBasicConstraints reads BasicConstraints ::= SEQUENCE { cA BOOLEAN
// DEFAULT FALSE, pathLenConstraint INTEGER OPTIONAL }.
func parseBasicConstraints(b []byte) (isCA, ok bool) {
	seq, rest, ok := readTagged(b, tagSequence)
	if !ok || len(rest) != 0 {
		return false, false
	}
	if !peekTag(seq.content, tagBoolean) {
		return false, true
	}
	v, _, ok := readElement(seq.content)
	if !ok || len(v.content) != 1 {
		return false, false
	}
	return v.content[0] != 0, true // BER's any non-zero is TRUE; crypt32 agrees
}

// parseOldBasicConstraints reads the subjectType of the 2.5.29.10 form:
// SEQUENCE { subjectType BIT STRING, ... }, bit 0 being cA.
func parseOldBasicConstraints(b []byte) (isCA, ok bool) {
	seq, rest, ok := readTagged(b, tagSequence)
	if !ok || len(rest) != 0 {
		return false, false
	}
	bs, _, ok := readTagged(seq.content, tagBitString)
	if !ok || len(bs.content) == 0 {
		return false, false
	}
	return len(bs.content) > 1 && bs.content[1]&0x80 != 0, true
}
