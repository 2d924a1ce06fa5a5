package certparse

import (
	"math/big"
	"strconv"
)

// DER tags used by certificates (class, constructed bit and number in one byte).
const (
	tagBoolean         = 0x01
	tagInteger         = 0x02
	tagBitString       = 0x03
	tagOctetString     = 0x04
	tagNull            = 0x05
	tagOID             = 0x06
	tagUTF8String      = 0x0c
	tagNumericString   = 0x12
	tagPrintableString = 0x13
	tagT61String       = 0x14
	tagVideotexString  = 0x15
	tagIA5String       = 0x16
	tagUTCTime         = 0x17
	tagGeneralizedTime = 0x18
	tagGraphicString   = 0x19
	tagVisibleString   = 0x1a
	tagGeneralString   = 0x1b
	tagUniversalString = 0x1c
	tagBMPString       = 0x1e
	tagSequence        = 0x30
	tagSet             = 0x31
)

// element is one DER TLV: its tag, its content octets and the whole
// encoding (tag, length and content), which names and signatures compare.
type element struct {
	tag     byte
	content []byte
	full    []byte
}

// readElement reads one element from the front of b and returns it with
// what follows. It accepts only what DER allows: single-byte tags, definite
// lengths in their shortest form, no more than 2^31 bytes. Work is constant:
// it never looks inside the content.
func readElement(b []byte) (element, []byte, bool) {
	if len(b) < 2 {
		return element{}, nil, false
	}
	tag := b[0]
	if tag&0x1f == 0x1f { // high tag number form: nothing in a certificate uses it
		return element{}, nil, false
	}
	n := int(b[1])
	hdr := 2
	if n&0x80 != 0 {
		k := n & 0x7f
		if k == 0 || k > 4 || len(b) < 2+k { // indefinite, or longer than any certificate
			return element{}, nil, false
		}
		n = 0
		for _, c := range b[2 : 2+k] {
			n = n<<8 | int(c)
		}
		if b[2] == 0 || n < 0x80 || n > 1<<31-1 { // not the shortest form
			return element{}, nil, false
		}
		hdr += k
	}
	if n > len(b)-hdr {
		return element{}, nil, false
	}
	end := hdr + n
	return element{tag: tag, content: b[hdr:end:end], full: b[:end:end]}, b[end:], true
}

// readTagged reads one element and checks its tag.
func readTagged(b []byte, tag byte) (element, []byte, bool) {
	e, rest, ok := readElement(b)
	if !ok || e.tag != tag {
		return element{}, nil, false
	}
	return e, rest, true
}

// peekTag reports whether b starts with tag.
func peekTag(b []byte, tag byte) bool { return len(b) > 0 && b[0] == tag }

// maxArcBytes bounds one OID arc: 32 octets hold 224 bits, more than the
// 128-bit UUID arcs of 2.25, and keep formatting an arc cheap.
const maxArcBytes = 32

// validOID reports whether content is a well-formed OID body: non-empty,
// every subidentifier in its shortest form, terminated and at most
// maxArcBytes long.
func validOID(content []byte) bool {
	if len(content) == 0 || content[len(content)-1]&0x80 != 0 {
		return false
	}
	start, n := true, 0
	for _, c := range content {
		if start && c == 0x80 {
			return false
		}
		if n++; n > maxArcBytes {
			return false
		}
		start = c&0x80 == 0
		if start {
			n = 0
		}
	}
	return true
}

// oidString returns the dotted form of a valid OID body. Arcs of any size
// are kept exactly (2.25 arcs are 128-bit UUIDs).
func oidString(content []byte) string {
	buf := make([]byte, 0, len(content)*3)
	first := true
	for i := 0; i < len(content); {
		j := i
		for content[j]&0x80 != 0 {
			j++
		}
		arc := content[i : j+1]
		i = j + 1
		if len(arc) <= 8 { // at most 56 bits: fits a uint64
			var v uint64
			for _, c := range arc {
				v = v<<7 | uint64(c&0x7f)
			}
			if first {
				switch {
				case v < 40:
					buf = append(buf, '0', '.')
				case v < 80:
					buf = append(buf, '1', '.')
					v -= 40
				default:
					buf = append(buf, '2', '.')
					v -= 80
				}
				first = false
			} else {
				buf = append(buf, '.')
			}
			buf = strconv.AppendUint(buf, v, 10)
			continue
		}
		v := new(big.Int)
		for _, c := range arc {
			v.Lsh(v, 7)
			v.Or(v, big.NewInt(int64(c&0x7f)))
		}
		if first { // a first arc this large can only be under joint-iso-itu-t (2)
			v.Sub(v, big.NewInt(80))
			buf = append(buf, '2', '.')
			first = false
		} else {
			buf = append(buf, '.')
		}
		buf = v.Append(buf, 10)
	}
	return string(buf)
}

// encodeOID returns the DER body of a dotted OID whose arcs fit in uint64.
// It is for the package's own tables and panics on a malformed constant.
func encodeOID(dotted string) string {
	var arcs []uint64
	for start, i := 0, 0; i <= len(dotted); i++ {
		if i == len(dotted) || dotted[i] == '.' {
			v, err := strconv.ParseUint(dotted[start:i], 10, 64)
			if err != nil {
				panic("certparse: bad OID constant " + dotted)
			}
			arcs = append(arcs, v)
			start = i + 1
		}
	}
	if len(arcs) < 2 {
		panic("certparse: bad OID constant " + dotted)
	}
	arcs = append([]uint64{arcs[0]*40 + arcs[1]}, arcs[2:]...)
	var out []byte
	for _, a := range arcs {
		var tmp [10]byte
		n := len(tmp)
		n--
		tmp[n] = byte(a & 0x7f)
		for a >>= 7; a > 0; a >>= 7 {
			n--
			tmp[n] = byte(a&0x7f) | 0x80
		}
		out = append(out, tmp[n:]...)
	}
	return string(out)
}

// unsignedBits returns the bit length of a DER INTEGER's content read as a
// non-negative number (a leading zero octet is padding).
func unsignedBits(content []byte) int {
	for len(content) > 0 && content[0] == 0 {
		content = content[1:]
	}
	if len(content) == 0 {
		return 0
	}
	n := (len(content) - 1) * 8
	for c := content[0]; c != 0; c >>= 1 {
		n++
	}
	return n
}

// validInteger reports whether content is a DER INTEGER body: non-empty
// and in its shortest two's complement form.
func validInteger(content []byte) bool {
	if len(content) == 0 {
		return false
	}
	if len(content) > 1 && (content[0] == 0 && content[1]&0x80 == 0 || content[0] == 0xff && content[1]&0x80 != 0) {
		return false
	}
	return true
}

// readInteger reads an INTEGER with at least one content octet.
func readInteger(b []byte) (element, []byte, bool) {
	e, rest, ok := readTagged(b, tagInteger)
	if !ok || len(e.content) == 0 {
		return element{}, nil, false
	}
	return e, rest, true
}
