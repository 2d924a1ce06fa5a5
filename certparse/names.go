package certparse

import (
	"encoding/hex"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/certinv/certinv"
)

// oidTable maps the DER body of an OID to a name.
type oidTable map[string]string

func newOIDTable(pairs ...string) oidTable {
	t := make(oidTable, len(pairs)/2)
	for i := 0; i < len(pairs); i += 2 {
		t[encodeOID(pairs[i])] = pairs[i+1]
	}
	return t
}

// rdnNames are the short names CertNameToStr uses with CERT_X500_NAME_STR:
// the first name crypt32's OID table gives each attribute of its RDN group.
// Every other attribute is shown as OID.<dotted>.
var rdnNames = newOIDTable(
	"2.5.4.3", "CN",
	"2.5.4.7", "L",
	"2.5.4.10", "O",
	"2.5.4.11", "OU",
	"1.2.840.113549.1.9.1", "E",
	"2.5.4.6", "C",
	"2.5.4.8", "S",
	"2.5.4.9", "STREET",
	"2.5.4.12", "T",
	"2.5.4.42", "G",
	"2.5.4.43", "I",
	"2.5.4.4", "SN",
	"0.9.2342.19200300.100.1.25", "DC",
	"2.5.4.5", "SERIALNUMBER",
	"2.5.4.13", "Description",
	"2.5.4.17", "PostalCode",
	"2.5.4.18", "POBox",
	"2.5.4.20", "Phone",
	"2.5.4.24", "X21Address",
	"2.5.4.46", "dnQualifier",
)

// Attributes of the structured Name.
var (
	oidCommonName   = encodeOID("2.5.4.3")
	oidOrganization = encodeOID("2.5.4.10")
	oidOrgUnit      = encodeOID("2.5.4.11")
	oidLocality     = encodeOID("2.5.4.7")
	oidState        = encodeOID("2.5.4.8")
	oidCountry      = encodeOID("2.5.4.6")
	oidEmail        = encodeOID("1.2.840.113549.1.9.1")
)

// parsedName is a distinguished name in both of the record's forms.
type parsedName struct {
	str  string // Windows form, RDNs in reverse order
	name certinv.Name
}

type attr struct {
	oid   []byte
	value string
	hex   bool // value is '#' and the hex of a non-string encoding: never quoted
}

// parseName parses a Name (SEQUENCE OF RelativeDistinguishedName) and
// formats it as CertNameToStr(CERT_X500_NAME_STR | CERT_NAME_STR_REVERSE_FLAG)
// does: RDNs last first, joined by ", "; the attributes of a multi-valued
// RDN in their encoded order, joined by " + ".
func parseName(content []byte) (parsedName, bool) {
	var rdns [][]attr
	for len(content) > 0 {
		set, rest, ok := readTagged(content, tagSet)
		if !ok {
			return parsedName{}, false
		}
		content = rest
		var rdn []attr
		for b := set.content; len(b) > 0; {
			atv, rest, ok := readTagged(b, tagSequence)
			if !ok {
				return parsedName{}, false
			}
			b = rest
			oid, rest2, ok := readTagged(atv.content, tagOID)
			if !ok || !validOID(oid.content) {
				return parsedName{}, false
			}
			val, rest3, ok := readElement(rest2)
			if !ok || len(rest3) != 0 {
				return parsedName{}, false
			}
			v, isString := valueString(val)
			rdn = append(rdn, attr{oid: oid.content, value: v, hex: !isString})
		}
		if len(rdn) > 0 {
			rdns = append(rdns, rdn)
		}
	}

	var pn parsedName
	var sb strings.Builder
	for i := len(rdns) - 1; i >= 0; i-- {
		if i < len(rdns)-1 {
			sb.WriteString(", ")
		}
		for j, a := range rdns[i] {
			if j > 0 {
				sb.WriteString(" + ")
			}
			if name, ok := rdnNames[string(a.oid)]; ok {
				sb.WriteString(name)
			} else {
				sb.WriteString("OID.")
				sb.WriteString(oidString(a.oid))
			}
			sb.WriteByte('=')
			if a.hex {
				sb.WriteString(a.value)
			} else {
				writeQuoted(&sb, a.value)
			}
		}
	}
	pn.str = sb.String()

	// Joined once at the end: a name of thousands of attributes must not
	// cost quadratic copying.
	var parts [7][]string
	for _, rdn := range rdns {
		for _, a := range rdn {
			i := structuredIndex(a.oid)
			if i >= 0 {
				parts[i] = append(parts[i], a.value)
			}
		}
	}
	dst := [7]*string{&pn.name.CommonName, &pn.name.Organization, &pn.name.OrganizationalUnit,
		&pn.name.Locality, &pn.name.State, &pn.name.Country, &pn.name.Email}
	for i, p := range parts {
		*dst[i] = strings.Join(p, ", ")
	}
	return pn, true
}

// structuredIndex gives the place of an attribute in certinv.Name's
// fields (CommonName, Organization, OrganizationalUnit, Locality, State,
// Country, Email), or -1.
func structuredIndex(oid []byte) int {
	switch string(oid) {
	case oidCommonName:
		return 0
	case oidOrganization:
		return 1
	case oidOrgUnit:
		return 2
	case oidLocality:
		return 3
	case oidState:
		return 4
	case oidCountry:
		return 5
	case oidEmail:
		return 6
	}
	return -1
}

// valueString decodes an attribute value as crypt32 does. UTF8String and
// BMPString are Unicode; TeletexString is tried as UTF-8 first and read as
// 8-bit characters if that fails; the other string types are 8-bit
// characters. A value that is not a string is shown as '#' and the hex of
// its encoding, and ok is false.
func valueString(e element) (s string, ok bool) {
	switch e.tag {
	case tagUTF8String:
		return strings.ToValidUTF8(string(e.content), "\uFFFD"), true
	case tagT61String:
		if utf8.Valid(e.content) {
			return string(e.content), true
		}
		return latin1(e.content), true
	case tagPrintableString, tagIA5String, tagNumericString, tagVisibleString,
		tagVideotexString, tagGraphicString, tagGeneralString:
		return latin1(e.content), true
	case tagBMPString:
		u := make([]uint16, len(e.content)/2)
		for i := range u {
			u[i] = uint16(e.content[2*i])<<8 | uint16(e.content[2*i+1])
		}
		return string(utf16.Decode(u)), true
	case tagUniversalString:
		var sb strings.Builder
		for i := 0; i+4 <= len(e.content); i += 4 {
			r := rune(uint32(e.content[i])<<24 | uint32(e.content[i+1])<<16 | uint32(e.content[i+2])<<8 | uint32(e.content[i+3]))
			if !utf8.ValidRune(r) {
				r = utf8.RuneError
			}
			sb.WriteRune(r)
		}
		return sb.String(), true
	}
	return "#" + strings.ToUpper(hex.EncodeToString(e.full)), false
}

// latin1 maps each byte to the code point of the same value.
func latin1(b []byte) string {
	ascii := true
	for _, c := range b {
		if c >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return string(b)
	}
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}

// writeQuoted writes v as crypt32 writes an RDN value: in double quotes,
// with inner quotes doubled, when it starts or ends with white space or
// holds one of + , " = < > ; # or a newline.
func writeQuoted(sb *strings.Builder, v string) {
	need := false
	if v != "" {
		first, _ := utf8.DecodeRuneInString(v)
		last, _ := utf8.DecodeLastRuneInString(v)
		need = unicode.IsSpace(first) || unicode.IsSpace(last)
	}
	if !need {
		need = strings.ContainsAny(v, "+,\"=<>;#\n")
	}
	if !need {
		sb.WriteString(v)
		return
	}
	sb.WriteByte('"')
	sb.WriteString(strings.ReplaceAll(v, `"`, `""`))
	sb.WriteByte('"')
}
