package certparse

import (
	"crypto/sha3"
	"math/big"
)

// Ed448 verification (RFC 8032, section 5.2), for the self-signatures of
// Ed448 certificates, which the standard library cannot check. It handles
// public values only; math/big, which is not constant-time, is fine.

var (
	ed448P = func() *big.Int { // 2^448 - 2^224 - 1
		p := new(big.Int).Lsh(big.NewInt(1), 448)
		p.Sub(p, new(big.Int).Lsh(big.NewInt(1), 224))
		return p.Sub(p, big.NewInt(1))
	}()
	ed448D = new(big.Int).Sub(ed448P, big.NewInt(39081)) // d = -39081
	ed448L = func() *big.Int {                           // 2^446 - 138180668...
		l := new(big.Int).Lsh(big.NewInt(1), 446)
		c, _ := new(big.Int).SetString("13818066809895115352007386748515426880336692474882178609894547503885", 10)
		return l.Sub(l, c)
	}()
	// ed448B is the base point, decoded from its y coordinate (RFC 8032,
	// section 5.2; its x is even).
	ed448B = func() ed448Point {
		y, _ := new(big.Int).SetString("298819210078481492676017930443930673437544040154080242095928241372331506189835876003536878655418784733982303233503462500531545062832660", 10)
		enc := make([]byte, 57)
		y.FillBytes(enc[:56])
		reverse(enc[:56])
		b, ok := ed448Decode(enc)
		if !ok {
			panic("certparse: bad Ed448 base point")
		}
		return b
	}()
)

// ed448Point is a point in projective coordinates (X:Y:Z).
type ed448Point struct{ x, y, z *big.Int }

func reverse(b []byte) {
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
}

// ed448Decode decodes a 57-octet point encoding (RFC 8032, 5.2.3).
func ed448Decode(enc []byte) (ed448Point, bool) {
	if len(enc) != 57 || enc[56]&0x7f != 0 {
		return ed448Point{}, false
	}
	sign := uint(enc[56] >> 7)
	le := append([]byte(nil), enc[:56]...)
	reverse(le)
	y := new(big.Int).SetBytes(le)
	if y.Cmp(ed448P) >= 0 {
		return ed448Point{}, false
	}
	p := ed448P
	// x² = (y² - 1) / (d·y² - 1)
	y2 := new(big.Int).Mul(y, y)
	y2.Mod(y2, p)
	u := new(big.Int).Sub(y2, big.NewInt(1))
	v := new(big.Int).Mul(ed448D, y2)
	v.Sub(v, big.NewInt(1)).Mod(v, p)
	if v.ModInverse(v, p) == nil {
		return ed448Point{}, false
	}
	w := u.Mul(u, v).Mod(u, p)
	// p ≡ 3 (mod 4): the square root is w^((p+1)/4), if w has one.
	e := new(big.Int).Add(p, big.NewInt(1))
	x := new(big.Int).Exp(w, e.Rsh(e, 2), p)
	if chk := new(big.Int).Mul(x, x); chk.Mod(chk, p).Cmp(w) != 0 {
		return ed448Point{}, false
	}
	if x.Sign() == 0 && sign == 1 {
		return ed448Point{}, false
	}
	if x.Bit(0) != sign {
		x.Sub(p, x)
	}
	return ed448Point{x, y, big.NewInt(1)}, true
}

func ed448Identity() ed448Point { return ed448Point{big.NewInt(0), big.NewInt(1), big.NewInt(1)} }

// ed448Add adds two points (RFC 8032, 5.2.4).
func ed448Add(p1, p2 ed448Point) ed448Point {
	p := ed448P
	mul := func(a, b *big.Int) *big.Int { r := new(big.Int).Mul(a, b); return r.Mod(r, p) }
	a := mul(p1.z, p2.z)
	b := mul(a, a)
	c := mul(p1.x, p2.x)
	d := mul(p1.y, p2.y)
	e := mul(mul(ed448D, c), d)
	f := new(big.Int).Sub(b, e)
	g := new(big.Int).Add(b, e)
	h := mul(new(big.Int).Add(p1.x, p1.y), new(big.Int).Add(p2.x, p2.y))
	x3 := new(big.Int).Sub(h, c)
	x3 = mul(mul(a, f), x3.Sub(x3, d))
	y3 := mul(mul(a, g), new(big.Int).Sub(d, c))
	z3 := mul(f, g)
	return ed448Point{x3, y3, z3}
}

// ed448Mul2 returns k1·P1 + k2·P2 (Shamir's trick: one chain of doublings).
func ed448Mul2(k1 *big.Int, p1 ed448Point, k2 *big.Int, p2 ed448Point) ed448Point {
	both := ed448Add(p1, p2)
	r := ed448Identity()
	for i := max(k1.BitLen(), k2.BitLen()) - 1; i >= 0; i-- {
		r = ed448Add(r, r)
		switch b1, b2 := k1.Bit(i), k2.Bit(i); {
		case b1 == 1 && b2 == 1:
			r = ed448Add(r, both)
		case b1 == 1:
			r = ed448Add(r, p1)
		case b2 == 1:
			r = ed448Add(r, p2)
		}
	}
	return r
}

// ed448Mul returns k·P by double-and-add.
func ed448Mul(k *big.Int, pt ed448Point) ed448Point {
	r := ed448Identity()
	for i := k.BitLen() - 1; i >= 0; i-- {
		r = ed448Add(r, r)
		if k.Bit(i) == 1 {
			r = ed448Add(r, pt)
		}
	}
	return r
}

// ed448Equal compares two projective points.
func ed448Equal(p1, p2 ed448Point) bool {
	p := ed448P
	cross := func(a, b *big.Int) *big.Int { r := new(big.Int).Mul(a, b); return r.Mod(r, p) }
	return cross(p1.x, p2.z).Cmp(cross(p2.x, p1.z)) == 0 && cross(p1.y, p2.z).Cmp(cross(p2.y, p1.z)) == 0
}

// ed448Verify checks a pure Ed448 signature (empty context) of msg by the
// 57-octet public key pub, with the check [S]B = R + [k]A.
func ed448Verify(pub, msg, sig []byte) bool {
	if len(pub) != 57 || len(sig) != 114 {
		return false
	}
	a, ok := ed448Decode(pub)
	if !ok {
		return false
	}
	r, ok := ed448Decode(sig[:57])
	if !ok {
		return false
	}
	sle := append([]byte(nil), sig[57:]...)
	reverse(sle)
	s := new(big.Int).SetBytes(sle)
	if s.Cmp(ed448L) >= 0 {
		return false
	}
	h := sha3.NewSHAKE256()
	h.Write([]byte("SigEd448\x00\x00")) // dom4(0, "")
	h.Write(sig[:57])
	h.Write(pub)
	h.Write(msg)
	digest := make([]byte, 114)
	h.Read(digest)
	reverse(digest)
	k := new(big.Int).SetBytes(digest)
	k.Mod(k, ed448L)
	// [S]B = R + [k]A, computed as [S]B + [k](-A) = R.
	negA := ed448Point{new(big.Int).Sub(ed448P, a.x), a.y, a.z}
	return ed448Equal(ed448Mul2(s, ed448B, k, negA), r)
}
