package scan

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"
	"math/big"
	"unicode/utf16"
)

// Password-based decryption of PKCS#12 parts: PBES2 (PBKDF2 with AES or
// 3DES, the default of OpenSSL 3, Java 12+ and Windows 10+) and PKCS#12's
// own SHA-1 3DES scheme. RC2 is left to go-pkcs12.

// maxIterations bounds the key derivation's work per password, so that a
// hostile file cannot make the scan spin. Real files use 2,000 to 10,000.
const maxIterations = 1 << 20

var (
	errWrongPassword = errors.New("wrong password")
	errRC2           = errors.New("RC2 encryption")
)

// Algorithm identifiers (DER of the OID's content).
var (
	oidPBES2         = []byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0d}       // 1.2.840.113549.1.5.13
	oidPBKDF2        = []byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0c}       // 1.2.840.113549.1.5.12
	oidPBE3DES3Key   = []byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x01, 0x03} // pbeWithSHAAnd3-KeyTripleDES-CBC
	oidPBE3DES2Key   = []byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x01, 0x04} // pbeWithSHAAnd2-KeyTripleDES-CBC
	oidPBERC2128     = []byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x01, 0x05} // pbeWithSHAAnd128BitRC2-CBC
	oidPBERC240      = []byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x01, 0x06} // pbewithSHAAnd40BitRC2-CBC
	oidHMACSHA1      = []byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x07}
	oidHMACSHA224    = []byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x08}
	oidHMACSHA256    = []byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x09}
	oidHMACSHA384    = []byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x0a}
	oidHMACSHA512    = []byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x0b}
	oidAES128CBC     = []byte{0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x02}
	oidAES192CBC     = []byte{0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x16}
	oidAES256CBC     = []byte{0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2a}
	oidDESEDE3CBC    = []byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x03, 0x07}
	tagImplicit0Prim = byte(0x80)
)

// candidates returns the passwords to try: the empty one, then the
// configured ones, without repeats.
func (p *parser) candidates() []string {
	out := []string{""}
	for _, pw := range p.passwords {
		if pw != "" && !contains(out, pw) {
			out = append(out, pw)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// decryptPart opens an EncryptedData with the candidate passwords, the one
// that opened the previous part first.
//
//	EncryptedData ::= SEQUENCE { version INTEGER, encryptedContentInfo
//	    SEQUENCE { contentType OID, contentEncryptionAlgorithm
//	    AlgorithmIdentifier, encryptedContent [0] IMPLICIT OCTET STRING } }
func (p *parser) decryptPart(b []byte) ([]byte, error) {
	ed, _, err := readElement(b)
	if err != nil || ed.tag != tagSequence {
		return nil, errors.New("malformed encrypted data")
	}
	_, rest, err := readElement(ed.content) // version
	if err != nil {
		return nil, errors.New("malformed encrypted data")
	}
	eci, _, err := readElement(rest)
	if err != nil || eci.tag != tagSequence {
		return nil, errors.New("malformed encrypted content info")
	}
	_, rest, err = readElement(eci.content) // content type
	if err != nil {
		return nil, errors.New("malformed encrypted content info")
	}
	alg, rest, err := readElement(rest)
	if err != nil || alg.tag != tagSequence {
		return nil, errors.New("malformed encryption algorithm")
	}
	ct, _, err := readElement(rest)
	if err != nil || ct.tag != tagImplicit0Prim {
		return nil, errors.New("encrypted content missing or not DER")
	}
	cands := p.candidates()
	order := make([]int, 0, len(cands))
	if p.goodPassword > 0 {
		order = append(order, p.goodPassword-1)
	}
	for i := range cands {
		if i != p.goodPassword-1 {
			order = append(order, i)
		}
	}
	for _, i := range order {
		plain, err := decrypt(alg.content, ct.content, cands[i])
		if err == nil {
			p.goodPassword = i + 1
			return plain, nil
		}
		if !errors.Is(err, errWrongPassword) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("encrypted certificates: wrong password (tried %d)", len(cands))
}

// decrypt decrypts ciphertext under the algorithm whose AlgorithmIdentifier
// content is alg. A wrong password shows as bad padding or plaintext that is
// not a DER SEQUENCE: errWrongPassword.
func decrypt(alg, ciphertext []byte, password string) ([]byte, error) {
	oid, params, err := readElement(alg)
	if err != nil || oid.tag != tagOID {
		return nil, errors.New("malformed encryption algorithm")
	}
	var block cipher.Block
	var iv []byte
	switch {
	case bytes.Equal(oid.content, oidPBES2):
		block, iv, err = pbes2(params, password)
	case bytes.Equal(oid.content, oidPBE3DES3Key), bytes.Equal(oid.content, oidPBE3DES2Key):
		salt, iter, perr := pbeParams(params)
		if perr != nil {
			return nil, perr
		}
		// Both forms of the empty password are in use: two NUL bytes
		// (the standard) and no bytes at all.
		pws := [][]byte{bmpPassword(password)}
		if password == "" {
			pws = append(pws, nil)
		}
		for _, pw := range pws {
			keyLen := 24
			if bytes.Equal(oid.content, oidPBE3DES2Key) {
				keyLen = 16
			}
			key := pkcs12KDF(pw, salt, iter, 1, keyLen)
			if keyLen == 16 {
				key = append(key, key[:8]...)
			}
			block, err = des.NewTripleDESCipher(key)
			if err != nil {
				return nil, err
			}
			plain, derr := cbcDecrypt(block, pkcs12KDF(pw, salt, iter, 2, 8), ciphertext)
			if derr == nil || !errors.Is(derr, errWrongPassword) {
				return plain, derr
			}
			err = derr
		}
		return nil, err
	case bytes.Equal(oid.content, oidPBERC240), bytes.Equal(oid.content, oidPBERC2128):
		return nil, errRC2
	default:
		return nil, fmt.Errorf("unsupported encryption algorithm %x", oid.content)
	}
	if err != nil {
		return nil, err
	}
	return cbcDecrypt(block, iv, ciphertext)
}

// pbeParams reads PKCS#12 PBE parameters: SEQUENCE { salt OCTET STRING,
// iterations INTEGER }.
func pbeParams(b []byte) (salt []byte, iter int, err error) {
	seq, _, err := readElement(b)
	if err != nil || seq.tag != tagSequence {
		return nil, 0, errors.New("malformed PBE parameters")
	}
	s, rest, err := readElement(seq.content)
	if err != nil || s.tag != tagOctetString {
		return nil, 0, errors.New("malformed PBE salt")
	}
	it, _, err := readElement(rest)
	if err != nil || it.tag != tagInteger {
		return nil, 0, errors.New("malformed PBE iteration count")
	}
	iter, err = smallInt(it.content)
	return s.content, iter, err
}

// smallInt reads a positive INTEGER's content up to maxIterations.
func smallInt(b []byte) (int, error) {
	if len(b) == 0 || len(b) > 4 || b[0]&0x80 != 0 {
		return 0, errors.New("iteration count out of range")
	}
	n := 0
	for _, c := range b {
		n = n<<8 | int(c)
	}
	if n < 1 || n > maxIterations {
		return 0, fmt.Errorf("iteration count %d out of range (1 to %d)", n, maxIterations)
	}
	return n, nil
}

// pbes2 derives the cipher and IV of PBES2 parameters.
//
//	PBES2-params ::= SEQUENCE { keyDerivationFunc AlgorithmIdentifier (PBKDF2),
//	    encryptionScheme AlgorithmIdentifier }
//	PBKDF2-params ::= SEQUENCE { salt OCTET STRING, iterationCount INTEGER,
//	    keyLength INTEGER OPTIONAL, prf AlgorithmIdentifier DEFAULT hmacWithSHA1 }
func pbes2(params []byte, password string) (cipher.Block, []byte, error) {
	bad := errors.New("malformed PBES2 parameters")
	seq, _, err := readElement(params)
	if err != nil || seq.tag != tagSequence {
		return nil, nil, bad
	}
	kdf, rest, err := readElement(seq.content)
	if err != nil || kdf.tag != tagSequence {
		return nil, nil, bad
	}
	enc, _, err := readElement(rest)
	if err != nil || enc.tag != tagSequence {
		return nil, nil, bad
	}
	kdfOID, kdfRest, err := readElement(kdf.content)
	if err != nil || !bytes.Equal(kdfOID.content, oidPBKDF2) {
		return nil, nil, errors.New("PBES2: unsupported key derivation function")
	}
	kp, _, err := readElement(kdfRest)
	if err != nil || kp.tag != tagSequence {
		return nil, nil, bad
	}
	salt, rest, err := readElement(kp.content)
	if err != nil || salt.tag != tagOctetString {
		return nil, nil, errors.New("PBES2: unsupported salt")
	}
	itEl, rest, err := readElement(rest)
	if err != nil || itEl.tag != tagInteger {
		return nil, nil, bad
	}
	iter, err := smallInt(itEl.content)
	if err != nil {
		return nil, nil, err
	}
	if len(rest) > 0 && rest[0] == tagInteger { // keyLength: implied by the cipher
		_, rest, _ = readElement(rest)
	}
	prf := sha1.New
	if len(rest) > 0 {
		prfAlg, _, err := readElement(rest)
		if err != nil {
			return nil, nil, bad
		}
		prfOID, _, err := readElement(prfAlg.content)
		if err != nil {
			return nil, nil, bad
		}
		switch {
		case bytes.Equal(prfOID.content, oidHMACSHA1):
		case bytes.Equal(prfOID.content, oidHMACSHA224):
			prf = sha256.New224
		case bytes.Equal(prfOID.content, oidHMACSHA256):
			prf = sha256.New
		case bytes.Equal(prfOID.content, oidHMACSHA384):
			prf = sha512.New384
		case bytes.Equal(prfOID.content, oidHMACSHA512):
			prf = sha512.New
		default:
			return nil, nil, errors.New("PBES2: unsupported pseudo-random function")
		}
	}
	encOID, encRest, err := readElement(enc.content)
	if err != nil {
		return nil, nil, bad
	}
	ivEl, _, err := readElement(encRest)
	if err != nil || ivEl.tag != tagOctetString {
		return nil, nil, bad
	}
	var keyLen int
	newCipher := aes.NewCipher
	switch {
	case bytes.Equal(encOID.content, oidAES128CBC):
		keyLen = 16
	case bytes.Equal(encOID.content, oidAES192CBC):
		keyLen = 24
	case bytes.Equal(encOID.content, oidAES256CBC):
		keyLen = 32
	case bytes.Equal(encOID.content, oidDESEDE3CBC):
		keyLen, newCipher = 24, des.NewTripleDESCipher
	default:
		return nil, nil, errors.New("PBES2: unsupported cipher")
	}
	key, err := pbkdf2.Key(func() hash.Hash { return prf() }, password, salt.content, iter, keyLen)
	if err != nil {
		return nil, nil, err
	}
	block, err := newCipher(key)
	if err != nil {
		return nil, nil, err
	}
	if len(ivEl.content) != block.BlockSize() {
		return nil, nil, errors.New("PBES2: IV of the wrong size")
	}
	return block, ivEl.content, nil
}

// cbcDecrypt decrypts and unpads; bad padding or plaintext that is not one
// DER SEQUENCE means a wrong password.
func cbcDecrypt(block cipher.Block, iv, ciphertext []byte) ([]byte, error) {
	bs := block.BlockSize()
	if len(ciphertext) == 0 || len(ciphertext)%bs != 0 {
		return nil, errors.New("encrypted content is not a whole number of blocks")
	}
	if len(iv) != bs {
		return nil, errors.New("IV of the wrong size")
	}
	plain := make([]byte, len(ciphertext))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(plain, ciphertext)
	n := int(plain[len(plain)-1])
	if n == 0 || n > bs {
		return nil, errWrongPassword
	}
	for _, c := range plain[len(plain)-n:] {
		if int(c) != n {
			return nil, errWrongPassword
		}
	}
	plain = plain[:len(plain)-n]
	if e, rest, err := readElement(plain); err != nil || e.tag != tagSequence || len(rest) != 0 {
		return nil, errWrongPassword
	}
	return plain, nil
}

// bmpPassword encodes a password as PKCS#12 wants it: UTF-16 big-endian
// with a terminating NUL.
func bmpPassword(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 0, 2*len(u)+2)
	for _, c := range u {
		b = append(b, byte(c>>8), byte(c))
	}
	return append(b, 0, 0)
}

// pkcs12KDF is the key derivation of RFC 7292 appendix B.2 with SHA-1:
// id 1 derives a key, id 2 an IV.
func pkcs12KDF(password, salt []byte, iter int, id byte, size int) []byte {
	const u, v = sha1.Size, 64
	fill := func(b []byte) []byte {
		if len(b) == 0 {
			return nil
		}
		out := make([]byte, v*((len(b)+v-1)/v))
		for i := range out {
			out[i] = b[i%len(b)]
		}
		return out
	}
	d := bytes.Repeat([]byte{id}, v)
	in := append(fill(salt), fill(password)...)
	var out []byte
	one := big.NewInt(1)
	for len(out) < size {
		h := sha1.New()
		h.Write(d)
		h.Write(in)
		a := h.Sum(nil)
		for j := 1; j < iter; j++ {
			s := sha1.Sum(a)
			a = s[:]
		}
		out = append(out, a...)
		if len(out) >= size {
			break
		}
		// I_j = (I_j + B + 1) mod 2^(8v) for each v-byte block of I.
		bb := new(big.Int).SetBytes(fill(a)[:v])
		bb.Add(bb, one)
		for j := 0; j < len(in); j += v {
			ij := new(big.Int).SetBytes(in[j : j+v])
			ij.Add(ij, bb)
			s := ij.Bytes()
			blk := in[j : j+v]
			clear(blk)
			if len(s) > v {
				s = s[len(s)-v:]
			}
			copy(blk[v-len(s):], s)
		}
	}
	return out[:size]
}
