package certparse

import (
	"encoding/hex"
	"math/big"
)

// weierstrass is a prime-field curve y² = x³ + ax + b with base point G of
// order n: what explicit ECParameters carry. It exists to check the
// self-signatures of certificates on curves that crypto/ecdsa lacks
// (brainpool, secp256k1, explicit parameters). It works on public values
// only, so plain math/big arithmetic, which is not constant-time, is fine.
type weierstrass struct {
	p, a, b, n *big.Int
	base       []byte // encoded base point, decoded when a signature is checked
	named      bool   // from namedCurveParams: p and n are known primes
}

// Bounds on explicit curves, so that a hostile certificate cannot make a
// check slow: the largest standard curve is 521 bits.
const maxCurveBits = 521

var oidNamedCurves = func() map[string]*weierstrass {
	t := map[string]*weierstrass{}
	for dotted, h := range namedCurveParams {
		der, err := hex.DecodeString(h)
		if err != nil {
			panic("certparse: bad curve constant " + dotted)
		}
		e, _, ok := readTagged(der, tagSequence)
		if !ok {
			panic("certparse: bad curve constant " + dotted)
		}
		c, ok := parseECParameters(e.content)
		if !ok {
			panic("certparse: bad curve constant " + dotted)
		}
		c.named = true
		t[encodeOID(dotted)] = c
	}
	return t
}()

// parseECParameters reads the content of ECParameters ::= SEQUENCE {
// version INTEGER, fieldID SEQUENCE { prime-field OID, p INTEGER }, curve
// SEQUENCE { a OCTET STRING, b OCTET STRING, seed BIT STRING OPTIONAL },
// base OCTET STRING, order INTEGER, cofactor INTEGER OPTIONAL }.
func parseECParameters(b []byte) (*weierstrass, bool) {
	_, b, ok := readInteger(b)
	if !ok {
		return nil, false
	}
	field, b, ok := readTagged(b, tagSequence)
	if !ok {
		return nil, false
	}
	ft, fr, ok := readTagged(field.content, tagOID)
	if !ok || string(ft.content) != oidFieldPrime {
		return nil, false
	}
	p, _, ok := readInteger(fr)
	if !ok || p.content[0]&0x80 != 0 || unsignedBits(p.content) > maxCurveBits {
		return nil, false
	}
	curve, b, ok := readTagged(b, tagSequence)
	if !ok {
		return nil, false
	}
	a, cr, ok1 := readTagged(curve.content, tagOctetString)
	cb, _, ok2 := readTagged(cr, tagOctetString)
	base, b, ok3 := readTagged(b, tagOctetString)
	n, _, ok4 := readInteger(b)
	if !ok1 || !ok2 || !ok3 || !ok4 || n.content[0]&0x80 != 0 || unsignedBits(n.content) > maxCurveBits+1 {
		return nil, false
	}
	c := &weierstrass{
		p:    new(big.Int).SetBytes(p.content),
		a:    new(big.Int).SetBytes(a.content),
		b:    new(big.Int).SetBytes(cb.content),
		n:    new(big.Int).SetBytes(n.content),
		base: base.content,
	}
	if c.p.Cmp(big.NewInt(3)) < 0 || c.n.Sign() == 0 {
		return nil, false
	}
	return c, true
}

// orderBits is the size openssl reports for a key on c: its order's.
func (c *weierstrass) orderBits() int { return c.n.BitLen() }

// decodePoint reads an uncompressed (04) or compressed (02, 03) point and
// checks that it is on the curve. p must be prime: ModSqrt may not return
// otherwise.
func (c *weierstrass) decodePoint(b []byte) (x, y *big.Int, ok bool) {
	size := (c.p.BitLen() + 7) / 8
	switch {
	case len(b) == 1+2*size && b[0] == 4:
		x = new(big.Int).SetBytes(b[1 : 1+size])
		y = new(big.Int).SetBytes(b[1+size:])
	case len(b) == 1+size && (b[0] == 2 || b[0] == 3):
		x = new(big.Int).SetBytes(b[1:])
		if x.Cmp(c.p) >= 0 {
			return nil, nil, false
		}
		y = new(big.Int).ModSqrt(c.rhs(x), c.p)
		if y == nil {
			return nil, nil, false
		}
		if y.Bit(0) != uint(b[0]&1) {
			y.Sub(c.p, y)
		}
	default:
		return nil, nil, false
	}
	if x.Cmp(c.p) >= 0 || y.Cmp(c.p) >= 0 {
		return nil, nil, false
	}
	y2 := new(big.Int).Mul(y, y)
	if y2.Mod(y2, c.p).Cmp(c.rhs(x)) != 0 {
		return nil, nil, false
	}
	return x, y, true
}

// rhs returns x³ + ax + b mod p.
func (c *weierstrass) rhs(x *big.Int) *big.Int {
	r := new(big.Int).Mul(x, x)
	r.Add(r, c.a)
	r.Mul(r, x)
	r.Add(r, c.b)
	return r.Mod(r, c.p)
}

// point is an affine point; nil x is the point at infinity.
type point struct{ x, y *big.Int }

func (c *weierstrass) add(p1, p2 point) point {
	if p1.x == nil {
		return p2
	}
	if p2.x == nil {
		return p1
	}
	var l *big.Int
	if p1.x.Cmp(p2.x) == 0 {
		sum := new(big.Int).Add(p1.y, p2.y)
		if sum.Mod(sum, c.p).Sign() == 0 {
			return point{} // P + (-P)
		}
		// Tangent: (3x² + a) / 2y.
		num := new(big.Int).Mul(p1.x, p1.x)
		num.Mul(num, big.NewInt(3)).Add(num, c.a)
		den := new(big.Int).Lsh(p1.y, 1)
		if den.ModInverse(den.Mod(den, c.p), c.p) == nil {
			return point{}
		}
		l = num.Mul(num, den)
	} else {
		num := new(big.Int).Sub(p2.y, p1.y)
		den := new(big.Int).Sub(p2.x, p1.x)
		if den.ModInverse(den.Mod(den, c.p), c.p) == nil {
			return point{} // p is not prime
		}
		l = num.Mul(num, den)
	}
	l.Mod(l, c.p)
	x := new(big.Int).Mul(l, l)
	x.Sub(x, p1.x).Sub(x, p2.x).Mod(x, c.p)
	y := new(big.Int).Sub(p1.x, x)
	y.Mul(y, l).Sub(y, p1.y).Mod(y, c.p)
	return point{x, y}
}

// mul2 returns u1·P1 + u2·P2 (Shamir's trick).
func (c *weierstrass) mul2(u1 *big.Int, p1 point, u2 *big.Int, p2 point) point {
	both := c.add(p1, p2)
	var r point
	for i := max(u1.BitLen(), u2.BitLen()) - 1; i >= 0; i-- {
		r = c.add(r, r)
		switch {
		case u1.Bit(i) == 1 && u2.Bit(i) == 1:
			r = c.add(r, both)
		case u1.Bit(i) == 1:
			r = c.add(r, p1)
		case u2.Bit(i) == 1:
			r = c.add(r, p2)
		}
	}
	return r
}

// verify checks an ECDSA signature (SEC 1, section 4.1.4) of digest by
// the public point q, encoded as in a SubjectPublicKeyInfo.
func (c *weierstrass) verify(q, digest, sig []byte) bool {
	// Parameters from a certificate may be anything: the arithmetic below
	// is only meaningful, and ModSqrt only terminates, for a prime field.
	if !c.named && (c.p.Bit(0) == 0 || !c.p.ProbablyPrime(20) || !c.n.ProbablyPrime(20)) {
		return false
	}
	gx, gy, ok := c.decodePoint(c.base)
	if !ok {
		return false
	}
	qx, qy, ok := c.decodePoint(q)
	if !ok {
		return false
	}
	seq, rest, ok := readTagged(sig, tagSequence)
	if !ok || len(rest) != 0 {
		return false
	}
	re, rest, ok1 := readInteger(seq.content)
	se, rest, ok2 := readInteger(rest)
	if !ok1 || !ok2 || len(rest) != 0 || re.content[0]&0x80 != 0 || se.content[0]&0x80 != 0 {
		return false
	}
	r, s := new(big.Int).SetBytes(re.content), new(big.Int).SetBytes(se.content)
	if r.Sign() == 0 || s.Sign() == 0 || r.Cmp(c.n) >= 0 || s.Cmp(c.n) >= 0 {
		return false
	}
	e := new(big.Int).SetBytes(digest)
	if excess := len(digest)*8 - c.n.BitLen(); excess > 0 {
		e.Rsh(e, uint(excess))
	}
	w := new(big.Int).ModInverse(s, c.n)
	if w == nil {
		return false
	}
	u1 := new(big.Int).Mul(e, w)
	u1.Mod(u1, c.n)
	u2 := new(big.Int).Mul(r, w)
	u2.Mod(u2, c.n)
	x := c.mul2(u1, point{gx, gy}, u2, point{qx, qy})
	if x.x == nil {
		return false
	}
	v := new(big.Int).Mod(x.x, c.n)
	return v.Cmp(r) == 0
}
