package certparse

import (
	"encoding/hex"
	"strings"
	"testing"
	"time"
)

func TestOIDString(t *testing.T) {
	tests := []struct {
		der  string // hex of the OID's content octets (from openssl asn1parse -genstr)
		want string
	}{
		{"2a864886f70d01010b", "1.2.840.113549.1.1.11"},
		{"2b0601040182373c020103", "1.3.6.1.4.1.311.60.2.1.3"},
		{"0992268993f22c640119", "0.9.2342.19200300.100.1.25"},
		{"551d2500", "2.5.29.37.0"},
		{"6983f09da7ebcfdee0c7a1a7b2c0948cc8f9d776", "2.25.329800735698586629295641978511506172918"},
	}
	for _, tt := range tests {
		b, _ := hex.DecodeString(tt.der)
		if !validOID(b) {
			t.Errorf("validOID(%s) = false, want true", tt.der)
			continue
		}
		if got := oidString(b); got != tt.want {
			t.Errorf("oidString(%s) = %q, want %q", tt.der, got, tt.want)
		}
		if len(tt.want) > 30 {
			continue // encodeOID is for the package's tables: arcs of 64 bits at most
		}
		if got := encodeOID(tt.want); got != string(b) {
			t.Errorf("encodeOID(%q) = %x, want %s", tt.want, got, tt.der)
		}
	}
	for _, bad := range []string{"", "2a86", "2a8001", "802a"} {
		b, _ := hex.DecodeString(bad)
		if validOID(b) {
			t.Errorf("validOID(%q) = true, want false", bad)
		}
	}
}

func TestReadElement(t *testing.T) {
	tests := []struct {
		name string
		der  string
		ok   bool
	}{
		{"short form", "0403010203", true},
		{"non-minimal long form", "0481030102 03", false},
		{"indefinite", "3080", false},
		{"length beyond input", "040501", false},
		{"high tag number", "1f0100", false},
		{"five length octets", "0485000000000100", false},
		{"leading zero length octet", "048200800000", false},
	}
	for _, tt := range tests {
		b, err := hex.DecodeString(stripSpaces(tt.der))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, ok := readElement(b); ok != tt.ok {
			t.Errorf("readElement(%s: %s) ok = %v, want %v", tt.name, tt.der, ok, tt.ok)
		}
	}
	long := append([]byte{0x04, 0x81, 0x80}, make([]byte, 0x80)...)
	if e, rest, ok := readElement(long); !ok || len(e.content) != 0x80 || len(rest) != 0 {
		t.Errorf("readElement(128-byte OCTET STRING) = %d bytes, %v; want 128, true", len(e.content), ok)
	}
}

func stripSpaces(s string) string { return strings.ReplaceAll(s, " ", "") }

func TestParseTime(t *testing.T) {
	utc := func(y int, mo time.Month, d, h, mi, s int) time.Time {
		return time.Date(y, mo, d, h, mi, s, 0, time.UTC)
	}
	tests := []struct {
		tag  byte
		in   string
		want time.Time
		ok   bool
	}{
		{tagUTCTime, "491231235959Z", utc(2049, 12, 31, 23, 59, 59), true},
		{tagUTCTime, "500101000000Z", utc(1950, 1, 1, 0, 0, 0), true},
		{tagUTCTime, "9901010000Z", utc(1999, 1, 1, 0, 0, 0), true},           // no seconds: old certificates
		{tagUTCTime, "990101000000+0130", utc(1998, 12, 31, 22, 30, 0), true}, // offset east of UTC
		{tagUTCTime, "9901010000-0800", utc(1999, 1, 1, 8, 0, 0), true},
		{tagGeneralizedTime, "20501231235959Z", utc(2050, 12, 31, 23, 59, 59), true},
		{tagGeneralizedTime, "19000101000000Z", utc(1900, 1, 1, 0, 0, 0), true},
		{tagGeneralizedTime, "20200101000000.999Z", utc(2020, 1, 1, 0, 0, 0), true},
		{tagGeneralizedTime, "20240229120000Z", utc(2024, 2, 29, 12, 0, 0), true},
		{tagGeneralizedTime, "20230229120000Z", time.Time{}, false}, // no 29 February in 2023
		{tagGeneralizedTime, "202001010000Z", time.Time{}, false},   // seconds are required
		{tagGeneralizedTime, "20200101000000.Z", time.Time{}, false},
		{tagUTCTime, "991301000000Z", time.Time{}, false},
		{tagUTCTime, "990101240000Z", time.Time{}, false},
		{tagUTCTime, "990101000000", time.Time{}, false},
		{tagUTCTime, "990101000000+2400", time.Time{}, false},
		{tagUTCTime, "99010100000aZ", time.Time{}, false},
		{tagOctetString, "990101000000Z", time.Time{}, false},
	}
	for _, tt := range tests {
		got, ok := parseTime(element{tag: tt.tag, content: []byte(tt.in)})
		if ok != tt.ok || !got.Equal(tt.want) || ok && got.Location() != time.UTC {
			t.Errorf("parseTime(%#x %q) = %v, %v; want %v, %v", tt.tag, tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// TestMD2 checks md2 against the test suite of RFC 1319, appendix A.5.
func TestMD2(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "8350e5a3e24c153df2275c9f80692773"},
		{"a", "32ec01ec4a6dac72c0ab96fb34c0b5d1"},
		{"abc", "da853b0d3f88d99b30283a69e6ded6bb"},
		{"message digest", "ab4f496bfb2a530b219ff33031fe06b0"},
		{"abcdefghijklmnopqrstuvwxyz", "4e8ddff3650292ab5a4108c3aa47940b"},
		{"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "da33def2a42df13975352846c30338cd"},
		{"12345678901234567890123456789012345678901234567890123456789012345678901234567890", "d5976f79d83d3a0dc9806c3c66f3efd8"},
	}
	for _, tt := range tests {
		got := md2([]byte(tt.in))
		if hex.EncodeToString(got[:]) != tt.want {
			t.Errorf("md2(%q) = %x, want %s", tt.in, got, tt.want)
		}
	}
}

func TestWriteQuoted(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"", ""},
		{"a, b", `"a, b"`},
		{`say "hi"`, `"say ""hi"""`},
		{"a=b", `"a=b"`},
		{"x+y", `"x+y"`},
		{"#1", `"#1"`},
		{"a;b", `"a;b"`},
		{"<a>", `"<a>"`},
		{"line\nbreak", "\"line\nbreak\""},
		{" lead", `" lead"`},
		{"trail ", `"trail "`},
		{"\ttab", "\"\ttab\""},
		{"in side", "in side"},
		{"Zürich", "Zürich"},
		{"back\\slash", "back\\slash"},
	}
	for _, tt := range tests {
		var sb strings.Builder
		writeQuoted(&sb, tt.in)
		if got := sb.String(); got != tt.want {
			t.Errorf("writeQuoted(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestEd448BasePoint checks the curve constants: B lies on the curve and
// has order L.
func TestEd448BasePoint(t *testing.T) {
	if !ed448Equal(ed448Mul(ed448L, ed448B), ed448Identity()) {
		t.Errorf("L·B is not the identity")
	}
	if ed448Equal(ed448B, ed448Identity()) {
		t.Errorf("B is the identity")
	}
}
