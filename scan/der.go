package scan

import "errors"

// A minimal reader of DER's tag-length-value elements: enough to walk the
// containers that carry certificates (PKCS#7, PKCS#12) and to check that a
// certificate is well framed, without allocating. Only definite lengths and
// single-byte tags are accepted, which is what DER allows for these types.

// element is one DER element inside a larger buffer.
type element struct {
	tag     byte
	full    []byte // tag, length and content
	content []byte
}

var errDER = errors.New("malformed DER")

// readElement splits the first element off b.
func readElement(b []byte) (e element, rest []byte, err error) {
	if len(b) < 2 {
		return e, nil, errDER
	}
	tag := b[0]
	if tag&0x1f == 0x1f { // multi-byte tag: none of the types read here
		return e, nil, errDER
	}
	n := int(b[1])
	hdr := 2
	if n&0x80 != 0 {
		k := n & 0x7f
		if k == 0 || k > 4 || len(b) < 2+k { // indefinite (BER) or absurd
			return e, nil, errDER
		}
		n = 0
		for _, c := range b[2 : 2+k] {
			n = n<<8 | int(c)
		}
		if n < 0 || n < 0x80 && k == 1 { // not minimal
			return e, nil, errDER
		}
		hdr += k
	}
	if n > len(b)-hdr {
		return e, nil, errDER
	}
	end := hdr + n
	return element{tag: tag, full: b[:end], content: b[hdr:end]}, b[end:], nil
}

// DER tags (universal class, with the constructed bit where it applies).
const (
	tagInteger     = 0x02
	tagBitString   = 0x03
	tagOctetString = 0x04
	tagOID         = 0x06
	tagUTF8String  = 0x0c
	tagBMPString   = 0x1e
	tagSequence    = 0x30
	tagSet         = 0x31
	tagContext0    = 0xa0 // [0] EXPLICIT or constructed IMPLICIT
	tagContext1    = 0xa1
)

// certificateLength returns the length of the certificate framed at the
// start of b: Certificate ::= SEQUENCE { tbsCertificate SEQUENCE,
// signatureAlgorithm SEQUENCE, signatureValue BIT STRING }. It checks the
// frame only; the server's parser checks the rest.
func certificateLength(b []byte) (int, error) {
	cert, _, err := readElement(b)
	if err != nil {
		return 0, err
	}
	if cert.tag != tagSequence {
		return 0, errors.New("not a certificate: no outer SEQUENCE")
	}
	rest := cert.content
	for _, want := range []byte{tagSequence, tagSequence, tagBitString} {
		var e element
		if e, rest, err = readElement(rest); err != nil {
			return 0, errors.New("not a certificate: truncated or malformed")
		}
		if e.tag != want {
			return 0, errors.New("not a certificate: unexpected element")
		}
	}
	if len(rest) != 0 {
		return 0, errors.New("not a certificate: trailing data inside")
	}
	return len(cert.full), nil
}
