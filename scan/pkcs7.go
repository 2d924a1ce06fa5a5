package scan

import (
	"bytes"
	"fmt"
)

// DER encodings of the content types read here.
var (
	oidSignedData    = []byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02} // 1.2.840.113549.1.7.2
	oidData          = []byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01} // 1.2.840.113549.1.7.1
	oidEncryptedData = []byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x06} // 1.2.840.113549.1.7.6
)

// pkcs7 reads the certificates of a PKCS#7 (CMS) ContentInfo holding
// SignedData: the certificates-only message of .p7b and .p7c files.
//
//	ContentInfo ::= SEQUENCE { contentType OID, content [0] EXPLICIT ANY }
//	SignedData ::= SEQUENCE { version INTEGER, digestAlgorithms SET,
//	    encapContentInfo SEQUENCE, certificates [0] IMPLICIT SET OF
//	    CertificateChoices OPTIONAL, crls [1] IMPLICIT ... OPTIONAL,
//	    signerInfos SET }
//
// Choices other than a plain certificate (attribute certificates) are
// skipped.
func (p *parser) pkcs7(data []byte, what string) {
	certs, err := pkcs7Certificates(data)
	if err != nil {
		p.errorf("%s: %v", what, err)
		return
	}
	for i, c := range certs {
		if p.full {
			return
		}
		p.addChecked(fmt.Sprintf("%s certificate %d", what, i+1), "", c)
	}
}

// pkcs7Certificates returns the certificate choices of a SignedData
// ContentInfo, framed as elements but not checked as certificates.
func pkcs7Certificates(data []byte) ([][]byte, error) {
	ci, _, err := readElement(data)
	if err != nil || ci.tag != tagSequence {
		return nil, fmt.Errorf("truncated or malformed ContentInfo")
	}
	oid, rest, err := readElement(ci.content)
	if err != nil || oid.tag != tagOID {
		return nil, fmt.Errorf("malformed content type")
	}
	if !bytes.Equal(oid.content, oidSignedData) {
		return nil, fmt.Errorf("content type is not SignedData")
	}
	explicit, _, err := readElement(rest)
	if err != nil || explicit.tag != tagContext0 {
		return nil, fmt.Errorf("SignedData content missing or malformed")
	}
	sd, _, err := readElement(explicit.content)
	if err != nil || sd.tag != tagSequence {
		return nil, fmt.Errorf("malformed SignedData")
	}
	b := sd.content
	for _, want := range []byte{tagInteger, tagSet, tagSequence} {
		var e element
		if e, b, err = readElement(b); err != nil || e.tag != want {
			return nil, fmt.Errorf("malformed SignedData")
		}
	}
	if len(b) == 0 || b[0] != tagContext0 {
		return nil, nil // no certificates
	}
	set, _, err := readElement(b)
	if err != nil {
		return nil, fmt.Errorf("malformed certificates field")
	}
	var certs [][]byte
	for c := set.content; len(c) > 0; {
		var e element
		if e, c, err = readElement(c); err != nil {
			return certs, fmt.Errorf("certificate %d: truncated or malformed", len(certs)+1)
		}
		if e.tag == tagSequence {
			certs = append(certs, e.full)
			if len(certs) > MaxEntriesPerFile { // add reports the excess
				break
			}
		}
	}
	return certs, nil
}
