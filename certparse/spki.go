package certparse

// keyKind is the family of a subject public key.
type keyKind int

const (
	keyUnknown keyKind = iota
	keyRSA             // rsaEncryption: PKCS #1 v1.5 or PSS signatures
	keyRSAPSS          // id-RSASSA-PSS: PSS signatures only
	keyEC
	keyDSA
	keyEd25519
	keyEd448
)

// spkiFields is what the parser needs of a SubjectPublicKeyInfo.
type spkiFields struct {
	full   []byte  // the whole encoding, for crypto/x509.ParsePKIXPublicKey
	kind   keyKind // family
	params element // algorithm parameters; tag 0 when absent
	key    []byte  // subjectPublicKey BIT STRING content after the unused-bits octet
	bits   int     // key size; 0 when unknown

	rsaN, rsaE             []byte // INTEGER contents, for RSA keys
	dsaP, dsaQ, dsaG, dsaY []byte // INTEGER contents, for DSA keys
}

// parseSPKI reads SubjectPublicKeyInfo ::= SEQUENCE { algorithm
// AlgorithmIdentifier, subjectPublicKey BIT STRING }. Only its outer shape
// is required; a key whose inside cannot be read has size 0 and no
// self-signature, as crypt32 would fail to import it, but its certificate
// is still inventoried.
func parseSPKI(e element) (spkiFields, bool) {
	k := spkiFields{full: e.full}
	alg, rest, ok := readTagged(e.content, tagSequence)
	if !ok {
		return k, false
	}
	bs, rest, ok := readTagged(rest, tagBitString)
	if !ok || len(rest) != 0 || len(bs.content) == 0 {
		return k, false
	}
	oid, prest, ok := readTagged(alg.content, tagOID)
	if !ok || !validOID(oid.content) {
		return k, false
	}
	if len(prest) > 0 {
		p, prest2, ok := readElement(prest)
		if !ok || len(prest2) != 0 {
			return k, false
		}
		k.params = p
	}
	if bs.content[0] != 0 { // a key is whole octets
		return k, true
	}
	k.key = bs.content[1:]

	switch string(oid.content) {
	case oidKeyRSA, oidKeyRSAPSS:
		k.kind = keyRSA
		if string(oid.content) == oidKeyRSAPSS {
			k.kind = keyRSAPSS
		}
		seq, r, ok := readTagged(k.key, tagSequence)
		if !ok || len(r) != 0 {
			k.kind = keyUnknown
			break
		}
		n, r, ok1 := readInteger(seq.content)
		ex, r, ok2 := readInteger(r)
		if !ok1 || !ok2 || len(r) != 0 || len(n.content) == 0 || len(ex.content) == 0 {
			k.kind = keyUnknown
			break
		}
		k.rsaN, k.rsaE = n.content, ex.content
		k.bits = unsignedBits(n.content)
	case oidKeyEC:
		k.kind = keyEC
		switch k.params.tag {
		case tagOID:
			k.bits = curveBits[string(k.params.content)]
		case tagSequence:
			if c, ok := parseECParameters(k.params.content); ok {
				k.bits = c.orderBits()
			}
		}
	case oidKeyDSA, oidKeyDSAOIW:
		k.kind = keyDSA
		if k.params.tag == tagSequence {
			p, r, ok1 := readInteger(k.params.content)
			q, r, ok2 := readInteger(r)
			g, r, ok3 := readInteger(r)
			if ok1 && ok2 && ok3 && len(r) == 0 {
				k.dsaP, k.dsaQ, k.dsaG = p.content, q.content, g.content
				k.bits = unsignedBits(p.content)
			}
		}
		if y, r, ok := readInteger(k.key); ok && len(r) == 0 {
			k.dsaY = y.content
		}
	case oidKeyEd25519:
		k.kind = keyEd25519
		k.bits = 256
	case oidKeyEd448:
		k.kind = keyEd448
		k.bits = 456
	case oidKeyX25519:
		k.bits = 256
	case oidKeyX448:
		k.bits = 448
	}
	return k, true
}
