package scan

import (
	"bytes"
	"errors"
	"fmt"
	"unicode/utf16"

	"software.sslmate.com/src/go-pkcs12"
)

// DER encodings of the PKCS#12 object identifiers read here.
var (
	oidCertBag         = []byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x0a, 0x01, 0x03} // 1.2.840.113549.1.12.10.1.3
	oidSafeContentsBag = []byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x0a, 0x01, 0x06} // 1.2.840.113549.1.12.10.1.6
	oidX509Certificate = []byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x16, 0x01}       // 1.2.840.113549.1.9.22.1
	oidFriendlyName    = []byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x14}             // 1.2.840.113549.1.9.20
)

// pkcs12 reads the certificates of a PKCS#12 PFX (.pfx, .p12, and the
// PKCS12 keystores of Java 9 and later), each named by its friendlyName
// when it has one.
//
//	PFX ::= SEQUENCE { version INTEGER (3), authSafe ContentInfo, macData OPTIONAL }
//	AuthenticatedSafe ::= SEQUENCE OF ContentInfo  -- data or encryptedData
//	SafeContents ::= SEQUENCE OF SafeBag
//	SafeBag ::= SEQUENCE { bagId OID, bagValue [0] EXPLICIT ANY, bagAttributes SET OF Attribute OPTIONAL }
//	CertBag ::= SEQUENCE { certId OID, certValue [0] EXPLICIT OCTET STRING }
//
// Certificates in clear need no password. Encrypted parts are opened with
// the empty password, then each configured one; the integrity MAC is not
// checked (the certificates are inventoried, not trusted), and private keys
// are never decrypted. Parts encrypted with RC2 (OpenSSL 1.x's default) are
// handed to go-pkcs12, which implements that cipher.
func (p *parser) pkcs12(data []byte, depth int) {
	auth, err := pfxAuthenticatedSafe(data)
	if err != nil {
		p.errorf("PKCS#12: %v", err)
		return
	}
	for i, rest := 1, auth; len(rest) > 0 && !p.full; i++ {
		var ci element
		if ci, rest, err = readElement(rest); err != nil || ci.tag != tagSequence {
			p.errorf("PKCS#12: part %d: truncated or malformed", i)
			return
		}
		oid, body, err := readElement(ci.content)
		if err != nil || oid.tag != tagOID {
			p.errorf("PKCS#12: part %d: malformed content type", i)
			continue
		}
		content, _, err := readElement(body)
		if err != nil || content.tag != tagContext0 {
			p.errorf("PKCS#12: part %d: content missing or malformed", i)
			continue
		}
		switch {
		case bytes.Equal(oid.content, oidData):
			os, _, err := readElement(content.content)
			if err != nil || os.tag != tagOctetString {
				p.errorf("PKCS#12: part %d: malformed data", i)
				continue
			}
			p.safeContents(os.content, depth+1, fmt.Sprintf("PKCS#12 part %d", i))
		case bytes.Equal(oid.content, oidEncryptedData):
			plain, err := p.decryptPart(content.content)
			if errors.Is(err, errRC2) {
				p.pkcs12Fallback(data)
				return
			}
			if err != nil {
				p.errorf("PKCS#12: part %d: %v", i, err)
				continue
			}
			p.safeContents(plain, depth+1, fmt.Sprintf("PKCS#12 part %d", i))
		default:
			p.errorf("PKCS#12: part %d: public-key encrypted content is not supported", i)
		}
	}
}

// pfxAuthenticatedSafe returns the content of a PFX's AuthenticatedSafe
// SEQUENCE: the ContentInfos, one after another.
func pfxAuthenticatedSafe(data []byte) ([]byte, error) {
	pfx, _, err := readElement(data)
	if err != nil || pfx.tag != tagSequence {
		return nil, errors.New("truncated or malformed")
	}
	version, rest, err := readElement(pfx.content)
	if err != nil || version.tag != tagInteger || !bytes.Equal(version.content, []byte{3}) {
		return nil, errors.New("not a version 3 PFX")
	}
	ci, _, err := readElement(rest)
	if err != nil || ci.tag != tagSequence {
		return nil, errors.New("malformed authSafe")
	}
	oid, body, err := readElement(ci.content)
	if err != nil || oid.tag != tagOID || !bytes.Equal(oid.content, oidData) {
		return nil, errors.New("authSafe is not data (public-key integrity mode is not supported)")
	}
	explicit, _, err := readElement(body)
	if err != nil || explicit.tag != tagContext0 {
		return nil, errors.New("malformed authSafe content")
	}
	os, _, err := readElement(explicit.content)
	if err != nil || os.tag != tagOctetString {
		return nil, errors.New("malformed authSafe content (BER constructed strings are not supported)")
	}
	seq, _, err := readElement(os.content)
	if err != nil || seq.tag != tagSequence {
		return nil, errors.New("malformed AuthenticatedSafe")
	}
	return seq.content, nil
}

// safeContents reads a SafeContents SEQUENCE's bags.
func (p *parser) safeContents(data []byte, depth int, what string) {
	if depth > maxNesting {
		p.errorf("%s: safe contents nested too deep", what)
		return
	}
	seq, _, err := readElement(data)
	if err != nil || seq.tag != tagSequence {
		p.errorf("%s: malformed safe contents", what)
		return
	}
	for i, rest := 1, seq.content; len(rest) > 0 && !p.full; i++ {
		var bag element
		if bag, rest, err = readElement(rest); err != nil || bag.tag != tagSequence {
			p.errorf("%s: bag %d: truncated or malformed", what, i)
			return
		}
		bagWhat := fmt.Sprintf("%s bag %d", what, i)
		id, b, err := readElement(bag.content)
		if err != nil || id.tag != tagOID {
			p.errorf("%s: malformed bag id", bagWhat)
			continue
		}
		value, attrs, err := readElement(b)
		if err != nil || value.tag != tagContext0 {
			p.errorf("%s: malformed bag value", bagWhat)
			continue
		}
		switch {
		case bytes.Equal(id.content, oidCertBag):
			der, err := certBagValue(value.content)
			if err != nil {
				p.errorf("%s: %v", bagWhat, err)
				continue
			}
			if der != nil {
				p.addChecked(bagWhat, friendlyName(attrs), der)
			}
		case bytes.Equal(id.content, oidSafeContentsBag):
			p.safeContents(value.content, depth+1, bagWhat)
		}
		// Key bags, CRL bags and secret bags hold no certificate.
	}
}

// certBagValue returns the DER of an X.509 CertBag, or nil for another kind
// of certificate (SDSI).
func certBagValue(b []byte) ([]byte, error) {
	seq, _, err := readElement(b)
	if err != nil || seq.tag != tagSequence {
		return nil, errors.New("malformed certificate bag")
	}
	id, rest, err := readElement(seq.content)
	if err != nil || id.tag != tagOID {
		return nil, errors.New("malformed certificate bag")
	}
	if !bytes.Equal(id.content, oidX509Certificate) {
		return nil, nil
	}
	explicit, _, err := readElement(rest)
	if err != nil || explicit.tag != tagContext0 {
		return nil, errors.New("malformed certificate bag")
	}
	os, _, err := readElement(explicit.content)
	if err != nil || os.tag != tagOctetString {
		return nil, errors.New("malformed certificate bag")
	}
	return os.content, nil
}

// friendlyName returns a bag's friendlyName attribute, or "".
//
//	Attribute ::= SEQUENCE { type OID, values SET OF BMPString }
func friendlyName(attrs []byte) string {
	set, _, err := readElement(attrs)
	if err != nil || set.tag != tagSet {
		return ""
	}
	for rest := set.content; len(rest) > 0; {
		var attr element
		if attr, rest, err = readElement(rest); err != nil {
			return ""
		}
		id, vals, err := readElement(attr.content)
		if err != nil || !bytes.Equal(id.content, oidFriendlyName) {
			continue
		}
		vs, _, err := readElement(vals)
		if err != nil {
			return ""
		}
		v, _, err := readElement(vs.content)
		if err != nil {
			return ""
		}
		switch v.tag {
		case tagBMPString:
			return decodeBMP(v.content)
		case tagUTF8String:
			return string(v.content)
		}
	}
	return ""
}

// decodeBMP decodes a BMPString (UTF-16 big-endian), dropping a trailing NUL.
func decodeBMP(b []byte) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		u = append(u, uint16(b[i])<<8|uint16(b[i+1]))
	}
	for len(u) > 0 && u[len(u)-1] == 0 {
		u = u[:len(u)-1]
	}
	return string(utf16.Decode(u))
}

// pkcs12Fallback reads a PFX whose certificates are encrypted with RC2
// through go-pkcs12, with each candidate password. Its functions are
// narrower than this reader: ToPEM keeps friendly names but refuses Java's
// trust attribute and unknown keys; DecodeTrustStore reads Java trust
// stores; DecodeChain reads one key and its chain.
func (p *parser) pkcs12Fallback(data []byte) {
	var lastErr error
	for _, pw := range p.candidates() {
		if blocks, err := pkcs12.ToPEM(data, pw); err == nil {
			for i, b := range blocks {
				if b.Type == "CERTIFICATE" {
					p.addChecked(fmt.Sprintf("PKCS#12 bag %d", i+1), b.Headers["friendlyName"], b.Bytes)
				}
			}
			return
		} else if lastErr = err; errors.Is(err, pkcs12.ErrIncorrectPassword) {
			continue
		}
		if certs, err := pkcs12.DecodeTrustStore(data, pw); err == nil {
			for i, c := range certs {
				p.addChecked(fmt.Sprintf("PKCS#12 certificate %d", i+1), "", c.Raw)
			}
			return
		}
		if _, leaf, cas, err := pkcs12.DecodeChain(data, pw); err == nil {
			p.addChecked("PKCS#12 certificate 1", "", leaf.Raw)
			for i, c := range cas {
				p.addChecked(fmt.Sprintf("PKCS#12 certificate %d", i+2), "", c.Raw)
			}
			return
		}
	}
	if errors.Is(lastErr, pkcs12.ErrIncorrectPassword) {
		p.errorf("PKCS#12: encrypted certificates: wrong password (tried %d)", len(p.candidates()))
		return
	}
	p.errorf("PKCS#12: RC2-encrypted certificates: %v", lastErr)
}
