package certinv

import (
	"encoding/hex"
	"strconv"
	"time"
	"unicode/utf8"
)

// Subject types, from the certificate's basic constraints.
const (
	SubjectCA        = "CA"
	SubjectEndEntity = "End Entity"
)

// Certificate holds every exported field of a certificate, derived from its
// DER by one parser (package certparse). It carries nothing about where the
// certificate was found: that is the Record's.
type Certificate struct {
	SHA256             [32]byte  // key of the certificate in every store
	Thumbprint         string    // SHA-1 of the DER, 40 uppercase hex characters
	SignatureAlgorithm string    // Windows name: sha256RSA, sha384ECDSA, RSASSA-PSS, Ed25519...
	KeySize            int       // public key size in bits
	NotBefore          time.Time // UTC
	NotAfter           time.Time // UTC
	SubjectType        string    // SubjectCA or SubjectEndEntity
	SerialNumber       string    // uppercase hex, big-endian, as Windows shows it
	IssuedTo           string    // subject DN in Windows order: CN=..., OU=..., O=..., L=..., S=..., C=...
	IssuedBy           string    // issuer DN, same form
	Subject            Name
	Issuer             Name
	KeyUsage           []string // names in bit order; nil when the extension is absent
	ExtendedKeyUsage   []string // names, or dotted OIDs for unnamed purposes; nil when absent
	SelfSigned         bool     // subject equals issuer and the signature verifies with its own key
}

// Name is the structured form of a distinguished name, as in the export's
// subjectObject and issuerObject. Multi-valued attributes are joined by ", ".
type Name struct {
	CommonName         string
	Organization       string
	OrganizationalUnit string
	Locality           string
	State              string
	Country            string
	Email              string
}

// Record is one line of the export: a certificate at a path on a device.
// Records are unique per (DeviceID, Thumbprint, Path).
type Record struct {
	DeviceID      string // 40 lowercase hex characters
	DeviceName    string
	Path          string
	Certificate   *Certificate
	RBACGroupID   int64
	RBACGroupName string
}

// AppendJSON appends r as one JSON object (no newline) to dst. The encoding
// is byte-for-byte what AppendRecordJSON makes of the same fields with the
// certificate's AppendCertificateJSON fragment.
func (r *Record) AppendJSON(dst []byte) []byte {
	dst = appendRecordHead(dst, r.DeviceID, r.DeviceName, r.Path)
	dst = AppendCertificateJSON(dst, r.Certificate)
	return appendRecordTail(dst, r.RBACGroupID, r.RBACGroupName)
}

// AppendRecordJSON appends one record to dst from its device fields, its path
// and certJSON, a fragment made by AppendCertificateJSON. Stores keep that
// fragment per certificate, so that a snapshot build copies it instead of
// encoding the certificate again for every device that holds it.
func AppendRecordJSON(dst []byte, deviceID, deviceName, path string, certJSON []byte, groupID int64, groupName string) []byte {
	dst = appendRecordHead(dst, deviceID, deviceName, path)
	dst = append(dst, certJSON...)
	return appendRecordTail(dst, groupID, groupName)
}

func appendRecordHead(dst []byte, deviceID, deviceName, path string) []byte {
	dst = append(dst, `{"deviceId":`...)
	dst = appendString(dst, deviceID)
	dst = append(dst, `,"deviceName":`...)
	dst = appendString(dst, deviceName)
	dst = append(dst, `,"path":`...)
	dst = appendString(dst, path)
	return append(dst, ',')
}

func appendRecordTail(dst []byte, groupID int64, groupName string) []byte {
	dst = append(dst, `,"rbacGroupId":`...)
	dst = strconv.AppendInt(dst, groupID, 10)
	dst = append(dst, `,"rbacGroupName":`...)
	dst = appendString(dst, groupName)
	return append(dst, '}')
}

// AppendCertificateJSON appends the certificate's fields of a record to dst:
// the members between the device's and the RBAC group's, without braces.
// Its output is a pure function of c, so it may be computed once per
// certificate and stored.
func AppendCertificateJSON(dst []byte, c *Certificate) []byte {
	dst = append(dst, `"thumbprint":`...)
	dst = appendString(dst, c.Thumbprint)
	dst = append(dst, `,"signatureAlgorithm":`...)
	dst = appendString(dst, c.SignatureAlgorithm)
	dst = append(dst, `,"keySize":`...)
	dst = strconv.AppendInt(dst, int64(c.KeySize), 10)
	dst = append(dst, `,"expirationDate":`...)
	dst = appendTime(dst, c.NotAfter)
	dst = append(dst, `,"issueDate":`...)
	dst = appendTime(dst, c.NotBefore)
	dst = append(dst, `,"subjectType":`...)
	dst = appendString(dst, c.SubjectType)
	dst = append(dst, `,"serialNumber":`...)
	dst = appendString(dst, c.SerialNumber)
	dst = append(dst, `,"issuedTo":`...)
	dst = appendString(dst, c.IssuedTo)
	dst = append(dst, `,"issuedBy":`...)
	dst = appendString(dst, c.IssuedBy)
	dst = append(dst, `,"keyUsage":`...)
	dst = appendJoined(dst, c.KeyUsage)
	dst = append(dst, `,"extendedKeyUsage":`...)
	dst = appendJoined(dst, c.ExtendedKeyUsage)
	// Additional columns: the names of the vendor's response example.
	dst = append(dst, `,"keyLength":`...)
	dst = strconv.AppendInt(dst, int64(c.KeySize), 10)
	dst = append(dst, `,"notAfter":`...)
	dst = appendTime(dst, c.NotAfter)
	dst = append(dst, `,"notBefore":`...)
	dst = appendTime(dst, c.NotBefore)
	dst = append(dst, `,"subjectObject":`...)
	dst = appendName(dst, &c.Subject)
	dst = append(dst, `,"issuerObject":`...)
	dst = appendName(dst, &c.Issuer)
	dst = append(dst, `,"keyUsageArray":`...)
	dst = appendArray(dst, c.KeyUsage)
	dst = append(dst, `,"extendedKeyUsageArray":`...)
	dst = appendArray(dst, c.ExtendedKeyUsage)
	dst = append(dst, `,"isSelfSigned":`...)
	dst = strconv.AppendBool(dst, c.SelfSigned)
	dst = append(dst, `,"sha256Thumbprint":"`...)
	dst = hex.AppendEncode(dst, c.SHA256[:])
	return append(dst, '"')
}

// TimeFormat is the format of every date in the export: RFC 3339, UTC,
// whole seconds ("2031-01-01T00:00:00Z").
const TimeFormat = "2006-01-02T15:04:05Z"

func appendTime(dst []byte, t time.Time) []byte {
	dst = append(dst, '"')
	dst = t.UTC().AppendFormat(dst, TimeFormat)
	return append(dst, '"')
}

func appendJoined(dst []byte, names []string) []byte {
	dst = append(dst, '"')
	for i, n := range names {
		if i > 0 {
			dst = append(dst, ", "...)
		}
		dst = appendStringBody(dst, n)
	}
	return append(dst, '"')
}

func appendArray(dst []byte, names []string) []byte {
	if names == nil {
		return append(dst, "null"...)
	}
	dst = append(dst, '[')
	for i, n := range names {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, n)
	}
	return append(dst, ']')
}

func appendName(dst []byte, n *Name) []byte {
	dst = append(dst, '{')
	first := true
	member := func(key, v string) {
		if v == "" {
			return
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, '"')
		dst = append(dst, key...)
		dst = append(dst, `":`...)
		dst = appendString(dst, v)
	}
	member("commonName", n.CommonName)
	member("organization", n.Organization)
	member("organizationalUnit", n.OrganizationalUnit)
	member("locality", n.Locality)
	member("state", n.State)
	member("country", n.Country)
	member("email", n.Email)
	return append(dst, '}')
}

func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	dst = appendStringBody(dst, s)
	return append(dst, '"')
}

const hexDigits = "0123456789abcdef"

// appendStringBody appends s escaped as the inside of a JSON string: quote,
// backslash and control characters escaped, invalid UTF-8 replaced by U+FFFD,
// and U+2028/U+2029 escaped so that a line of NDJSON is always one line for
// any reader.
func appendStringBody(dst []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(dst, s[start:]...)
}
