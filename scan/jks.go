package scan

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// javaKeyStore reads a JKS or JCEKS keystore (the JDK's cacerts is JKS).
// Certificates are stored in clear in both, so no password is needed; the
// keyed digest at the end is not checked (the certificates are inventoried,
// not trusted). Each certificate is named by its entry's alias.
//
//	magic u32, version u32 (1 or 2), count u32, then per entry:
//	  tag u32: 1 private key, 2 trusted certificate, 3 secret key (JCEKS)
//	  alias UTF, timestamp u64
//	  1: key u32-length bytes, chain u32 count of certificates
//	  2: one certificate
//	  3: a serialized javax.crypto.SealedObject
//	certificate: type UTF (version 2 only), u32-length DER
func (p *parser) javaKeyStore(data []byte, jceks bool) {
	kind := "JKS"
	if jceks {
		kind = "JCEKS"
	}
	r := &javaReader{b: data[4:]}
	version := r.u32()
	count := r.u32()
	if r.err != nil || version != 1 && version != 2 {
		p.errorf("%s: unsupported version or truncated header", kind)
		return
	}
	for i := uint32(1); i <= count && !p.full; i++ {
		tag := r.u32()
		alias := r.utf()
		r.skip(8)
		if r.err != nil {
			p.errorf("%s: entry %d: truncated", kind, i)
			return
		}
		what := fmt.Sprintf("%s entry %q", kind, alias)
		switch tag {
		case 1:
			r.skip(int(r.u32()))
			n := r.u32()
			for j := uint32(0); j < n && r.err == nil && !p.full; j++ {
				p.javaCertificate(r, version, what, alias)
			}
		case 2:
			p.javaCertificate(r, version, what, alias)
		case 3:
			if !jceks {
				p.errorf("%s: secret key entry in a JKS keystore", what)
				return
			}
			s := &javaStream{b: r.b}
			if err := s.skipStream(); err != nil {
				p.errorf("%s: secret key entry: %v; the entries after it are not read", what, err)
				return
			}
			r.b = s.b
		default:
			p.errorf("%s: unknown entry type %d; the entries after it are not read", what, tag)
			return
		}
		if r.err != nil {
			p.errorf("%s: truncated", what)
			return
		}
	}
}

func (p *parser) javaCertificate(r *javaReader, version uint32, what, alias string) {
	typ := "X.509"
	if version == 2 {
		typ = r.utf()
	}
	der := r.bytes(int(r.u32()))
	if r.err != nil {
		return
	}
	if typ != "X.509" {
		return
	}
	p.addChecked(what, alias, der)
}

// javaReader reads Java's DataOutputStream encoding; the first error
// sticks and every later read returns zero values.
type javaReader struct {
	b   []byte
	err error
}

var errTruncated = errors.New("truncated")

func (r *javaReader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.err = errTruncated
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *javaReader) skip(n int) { r.bytes(n) }

func (r *javaReader) u32() uint32 {
	b := r.bytes(4)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint32(b)
}

func (r *javaReader) u16() int {
	b := r.bytes(2)
	if b == nil {
		return 0
	}
	return int(binary.BigEndian.Uint16(b))
}

// utf reads a modified UTF-8 string with a 16-bit length.
func (r *javaReader) utf() string { return string(r.bytes(r.u16())) }

// javaStream skips one object of Java's serialization stream: enough to
// step over a JCEKS secret key entry (a SealedObject), whose length is
// written nowhere. Bounded by its input: every step consumes bytes, and
// nesting is capped.
type javaStream struct {
	b       []byte
	handles []*javaClass // nil for handles of non-class objects
	depth   int
}

type javaClass struct {
	name   string
	flags  byte
	fields []javaField
	super  *javaClass
}

type javaField struct {
	typ byte
}

// Serialization stream constants (java.io.ObjectStreamConstants).
const (
	tcNull          = 0x70
	tcReference     = 0x71
	tcClassDesc     = 0x72
	tcObject        = 0x73
	tcString        = 0x74
	tcArray         = 0x75
	tcClass         = 0x76
	tcBlockData     = 0x77
	tcEndBlockData  = 0x78
	tcBlockDataLong = 0x7a
	tcLongString    = 0x7c
	tcEnum          = 0x7e
	baseHandle      = 0x7e0000
	scWriteMethod   = 0x01
	scSerializable  = 0x02
	scExternal      = 0x04
	scBlockData     = 0x08
	maxJavaDepth    = 32
	maxJavaHandles  = 1 << 16
)

var errJavaStream = errors.New("unsupported or malformed serialized object")

func (s *javaStream) take(n int) ([]byte, error) {
	if n < 0 || n > len(s.b) {
		return nil, errTruncated
	}
	v := s.b[:n]
	s.b = s.b[n:]
	return v, nil
}

func (s *javaStream) u8() (byte, error) {
	b, err := s.take(1)
	if err != nil {
		return 0, err
	}
	return b[0], nil
}

func (s *javaStream) u16() (int, error) {
	b, err := s.take(2)
	if err != nil {
		return 0, err
	}
	return int(binary.BigEndian.Uint16(b)), nil
}

func (s *javaStream) u32() (int, error) {
	b, err := s.take(4)
	if err != nil {
		return 0, err
	}
	v := binary.BigEndian.Uint32(b)
	if v > 1<<30 {
		return 0, errJavaStream
	}
	return int(v), nil
}

func (s *javaStream) utf() (string, error) {
	n, err := s.u16()
	if err != nil {
		return "", err
	}
	b, err := s.take(n)
	return string(b), err
}

func (s *javaStream) newHandle(c *javaClass) error {
	if len(s.handles) >= maxJavaHandles {
		return errJavaStream
	}
	s.handles = append(s.handles, c)
	return nil
}

// skipStream skips the stream header and one object.
func (s *javaStream) skipStream() error {
	h, err := s.take(4)
	if err != nil {
		return err
	}
	if binary.BigEndian.Uint32(h) != 0xaced0005 {
		return errJavaStream
	}
	_, err = s.content()
	return err
}

// content skips one content element, returning the class it describes
// when it is a class descriptor (or a reference to one).
func (s *javaStream) content() (*javaClass, error) {
	s.depth++
	defer func() { s.depth-- }()
	if s.depth > maxJavaDepth {
		return nil, errJavaStream
	}
	tc, err := s.u8()
	if err != nil {
		return nil, err
	}
	switch tc {
	case tcNull:
		return nil, nil
	case tcReference:
		h, err := s.u32()
		if err != nil {
			return nil, err
		}
		h -= baseHandle
		if h < 0 || h >= len(s.handles) {
			return nil, errJavaStream
		}
		return s.handles[h], nil
	case tcClassDesc:
		return s.classDesc()
	case tcString:
		_, err := s.utf()
		if err == nil {
			err = s.newHandle(nil)
		}
		return nil, err
	case tcLongString:
		b, err := s.take(8)
		if err != nil {
			return nil, err
		}
		n := binary.BigEndian.Uint64(b)
		if n > uint64(len(s.b)) {
			return nil, errTruncated
		}
		s.b = s.b[n:]
		return nil, s.newHandle(nil)
	case tcObject:
		c, err := s.content()
		if err != nil {
			return nil, err
		}
		if c == nil {
			return nil, errJavaStream
		}
		if err := s.newHandle(nil); err != nil {
			return nil, err
		}
		return nil, s.classData(c)
	case tcArray:
		c, err := s.content()
		if err != nil {
			return nil, err
		}
		if c == nil || len(c.name) < 2 || c.name[0] != '[' {
			return nil, errJavaStream
		}
		if err := s.newHandle(nil); err != nil {
			return nil, err
		}
		n, err := s.u32()
		if err != nil {
			return nil, err
		}
		if size := primitiveSize(c.name[1]); size > 0 {
			_, err = s.take(n * size)
			return nil, err
		}
		for range n {
			if _, err := s.content(); err != nil {
				return nil, err
			}
		}
		return nil, nil
	case tcClass:
		if _, err := s.content(); err != nil {
			return nil, err
		}
		return nil, s.newHandle(nil)
	case tcEnum:
		if _, err := s.content(); err != nil {
			return nil, err
		}
		if err := s.newHandle(nil); err != nil {
			return nil, err
		}
		_, err := s.content()
		return nil, err
	}
	return nil, errJavaStream
}

func (s *javaStream) classDesc() (*javaClass, error) {
	name, err := s.utf()
	if err != nil {
		return nil, err
	}
	if _, err := s.take(8); err != nil { // serialVersionUID
		return nil, err
	}
	c := &javaClass{name: name}
	if err := s.newHandle(c); err != nil {
		return nil, err
	}
	if c.flags, err = s.u8(); err != nil {
		return nil, err
	}
	n, err := s.u16()
	if err != nil {
		return nil, err
	}
	for range n {
		typ, err := s.u8()
		if err != nil {
			return nil, err
		}
		if _, err := s.utf(); err != nil {
			return nil, err
		}
		if typ == 'L' || typ == '[' {
			if _, err := s.content(); err != nil { // the field's class name
				return nil, err
			}
		} else if primitiveSize(typ) == 0 {
			return nil, errJavaStream
		}
		c.fields = append(c.fields, javaField{typ: typ})
	}
	if err := s.annotation(); err != nil {
		return nil, err
	}
	if c.super, err = s.content(); err != nil {
		return nil, err
	}
	return c, nil
}

// classData skips an object's data, superclass first.
func (s *javaStream) classData(c *javaClass) error {
	var chain []*javaClass
	for k := c; k != nil; k = k.super {
		if len(chain) > maxJavaDepth {
			return errJavaStream
		}
		chain = append(chain, k)
	}
	for i := len(chain) - 1; i >= 0; i-- {
		k := chain[i]
		switch {
		case k.flags&scExternal != 0:
			if k.flags&scBlockData == 0 {
				return errJavaStream
			}
			if err := s.annotation(); err != nil {
				return err
			}
		case k.flags&scSerializable != 0:
			for _, f := range k.fields {
				if size := primitiveSize(f.typ); size > 0 {
					if _, err := s.take(size); err != nil {
						return err
					}
				} else if _, err := s.content(); err != nil {
					return err
				}
			}
			if k.flags&scWriteMethod != 0 {
				if err := s.annotation(); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// annotation skips contents up to TC_ENDBLOCKDATA.
func (s *javaStream) annotation() error {
	for {
		if len(s.b) == 0 {
			return errTruncated
		}
		switch s.b[0] {
		case tcEndBlockData:
			s.b = s.b[1:]
			return nil
		case tcBlockData:
			s.b = s.b[1:]
			n, err := s.u8()
			if err != nil {
				return err
			}
			if _, err := s.take(int(n)); err != nil {
				return err
			}
		case tcBlockDataLong:
			s.b = s.b[1:]
			n, err := s.u32()
			if err != nil {
				return err
			}
			if _, err := s.take(n); err != nil {
				return err
			}
		default:
			if _, err := s.content(); err != nil {
				return err
			}
		}
	}
}

// primitiveSize is the size of a primitive field type code, 0 for objects.
func primitiveSize(t byte) int {
	switch t {
	case 'B', 'Z':
		return 1
	case 'C', 'S':
		return 2
	case 'I', 'F':
		return 4
	case 'J', 'D':
		return 8
	}
	return 0
}
