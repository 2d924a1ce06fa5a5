// Package openssltest derives the expected fields of a certificate from
// openssl's output alone, for the tests of certparse and scan: it
// converts openssl's forms to Windows' with small tables of its own and
// never calls the code under test, so a bug there cannot hide in the
// expectation. It is imported by tests only.
package openssltest

// This file derives the expected fields of a certificate from openssl's
// output alone, converting openssl's forms to Windows' with small tables
// of its own. It never calls the package under test: a bug there cannot
// hide in the expectation.

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/certinv/certinv"
)

// Expected is a certificate's fields as openssl shows them, in the
// record's form. It is also the format of the golden files.
type Expected struct {
	File               string       `json:"file,omitempty"`
	SHA256             string       `json:"sha256"`
	Thumbprint         string       `json:"thumbprint"`
	SignatureAlgorithm string       `json:"signatureAlgorithm"`
	KeySize            int          `json:"keySize"`
	NotBefore          time.Time    `json:"notBefore"`
	NotAfter           time.Time    `json:"notAfter"`
	SubjectType        string       `json:"subjectType"`
	SerialNumber       string       `json:"serialNumber"`
	IssuedTo           string       `json:"issuedTo"`
	IssuedBy           string       `json:"issuedBy"`
	Subject            certinv.Name `json:"subject"`
	Issuer             certinv.Name `json:"issuer"`
	KeyUsage           []string     `json:"keyUsage"`
	ExtendedKeyUsage   []string     `json:"extendedKeyUsage"`
	SelfSigned         bool         `json:"selfSigned"`
}

// HaveOpenSSL reports whether openssl is on PATH.
func HaveOpenSSL() bool {
	_, err := exec.LookPath("openssl")
	return err == nil
}

// Run runs openssl with args and returns its standard output.
func Run(t testing.TB, args ...string) string {
	t.Helper()
	cmd := exec.Command("openssl", args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("openssl %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// opensslSucceeds runs openssl and reports whether it exited 0.
func opensslSucceeds(args ...string) bool {
	return exec.Command("openssl", args...).Run() == nil
}

// nameOpts prints a name in DER order, one escaped attribute per
// OID=value, ',' between RDNs and '+' inside one, values as UTF-8, values
// that are not strings as '#' and the hex of their DER.
const nameOpts = "esc_2253,esc_ctrl,utf8,dump_nostr,dump_der,sep_comma_plus,oid"

// FromOpenSSL derives the expected fields of der with openssl.
func FromOpenSSL(t testing.TB, der []byte) Expected {
	t.Helper()
	dir := t.TempDir()
	certFile := filepath.Join(dir, "cert.der")
	if err := os.WriteFile(certFile, der, 0o600); err != nil {
		t.Fatal(err)
	}
	in := []string{"x509", "-inform", "DER", "-in", certFile, "-noout"}
	var e Expected

	// One run prints, in the order asked: the header fields, the public
	// key as PEM, then the text dump.
	args := append(in, "-fingerprint", "-sha1", "-serial", "-startdate", "-enddate",
		"-nameopt", nameOpts, "-subject", "-issuer")
	out, err := exec.Command("openssl", append(args, "-pubkey", "-text")...).Output()
	var header, pubPEM, text string
	if err == nil {
		var rest string
		var ok1, ok2 bool
		header, rest, ok1 = strings.Cut(string(out), "-----BEGIN PUBLIC KEY-----\n")
		pubPEM, text, ok2 = strings.Cut(rest, "-----END PUBLIC KEY-----\n")
		if !ok1 || !ok2 {
			t.Fatalf("openssl x509 -pubkey printed no public key:\n%s", out)
		}
		pubPEM = "-----BEGIN PUBLIC KEY-----\n" + pubPEM + "-----END PUBLIC KEY-----\n"
	} else {
		// openssl cannot make a key of this one (DSA parameters inherited
		// from the issuer): it has nothing to verify a signature with.
		header = Run(t, args...)
		text = Run(t, append(in, "-text")...)
	}
	var subject, issuer string
	for _, line := range strings.Split(strings.TrimRight(header, "\n"), "\n") {
		key, value, _ := strings.Cut(line, "=")
		switch key {
		case "SHA1 Fingerprint", "sha1 Fingerprint":
			e.Thumbprint = strings.ReplaceAll(value, ":", "")
		case "serial":
			e.SerialNumber = windowsSerial(t, value)
		case "notBefore":
			e.NotBefore = opensslTime(t, value)
		case "notAfter":
			e.NotAfter = opensslTime(t, value)
		case "subject":
			subject = value
		case "issuer":
			issuer = value
		}
	}
	sum, _, _ := strings.Cut(Run(t, "dgst", "-sha256", "-r", certFile), " ")
	e.SHA256 = sum

	subjRDNs := parseOpenSSLName(t, subject)
	issRDNs := parseOpenSSLName(t, issuer)
	e.IssuedTo, e.Subject = windowsName(subjRDNs), structuredName(subjRDNs)
	e.IssuedBy, e.Issuer = windowsName(issRDNs), structuredName(issRDNs)

	e.SignatureAlgorithm = windowsSigAlg(t, firstMatch(t, text, `Signature Algorithm: (\S+)`))
	e.KeySize = opensslKeySize(text)
	e.SubjectType = certinv.SubjectEndEntity
	if ext, ok := extensionText(text, "X509v3 Basic Constraints"); ok && strings.Contains(ext, "CA:TRUE") {
		e.SubjectType = certinv.SubjectCA
	}
	if ext, ok := extensionText(text, "X509v3 Key Usage"); ok {
		e.KeyUsage = []string{}
		for _, n := range splitList(ext) {
			e.KeyUsage = append(e.KeyUsage, windowsKeyUsage(t, n)...)
		}
	}
	if ext, ok := extensionText(text, "X509v3 Extended Key Usage"); ok {
		e.ExtendedKeyUsage = []string{}
		for _, n := range splitList(ext) {
			e.ExtendedKeyUsage = append(e.ExtendedKeyUsage, windowsEKU(n))
		}
	}
	e.SelfSigned = opensslSelfSigned(t, dir, certFile, der, text, pubPEM, e.SignatureAlgorithm)
	return e
}

func firstMatch(t testing.TB, text, re string) string {
	t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("openssl output has no %q:\n%s", re, text)
	}
	return m[1]
}

// windowsSerial converts openssl's serial (the integer's value in hex,
// '-' for negative ones) to the octets of its DER encoding, as Windows
// shows them: a leading 00 for a positive value whose top bit is set, two's
// complement for a negative one.
func windowsSerial(t testing.TB, s string) string {
	t.Helper()
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	if len(s)%2 == 1 {
		s = "0" + s
	}
	b := make([]byte, len(s)/2)
	for i := range b {
		v, err := strconv.ParseUint(s[2*i:2*i+2], 16, 8)
		if err != nil {
			t.Fatalf("openssl serial %q: %v", s, err)
		}
		b[i] = byte(v)
	}
	if !neg {
		if len(b) == 0 || b[0]&0x80 != 0 {
			b = append([]byte{0}, b...)
		}
		return fmt.Sprintf("%X", b)
	}
	// Two's complement: invert and add one, then keep the shortest form
	// whose top bit is set.
	for i := range b {
		b[i] = ^b[i]
	}
	for i := len(b) - 1; i >= 0; i-- {
		b[i]++
		if b[i] != 0 {
			break
		}
	}
	if b[0]&0x80 == 0 {
		b = append([]byte{0xff}, b...)
	}
	for len(b) > 1 && b[0] == 0xff && b[1]&0x80 != 0 {
		b = b[1:]
	}
	return fmt.Sprintf("%X", b)
}

func opensslTime(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse("Jan _2 15:04:05 2006 MST", s)
	if err != nil {
		t.Fatalf("openssl date %q: %v", s, err)
	}
	return v.UTC()
}

type opensslAttr struct{ oid, value string }

// parseOpenSSLName splits a name printed with nameOpts into RDNs.
func parseOpenSSLName(t testing.TB, s string) [][]opensslAttr {
	t.Helper()
	if s == "" {
		return nil
	}
	var rdns [][]opensslAttr
	var rdn []opensslAttr
	var cur strings.Builder
	flush := func() {
		oid, value, ok := strings.Cut(cur.String(), "=")
		if !ok {
			t.Fatalf("openssl name %q: attribute without '='", s)
		}
		rdn = append(rdn, opensslAttr{oid, value})
		cur.Reset()
	}
	// The OID and '=' are never escaped; track where the value starts so
	// that an escaped "\=" cannot be taken for the separator.
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			n := s[i+1]
			if strings.IndexByte(",+\"\\<>;# =", n) >= 0 {
				cur.WriteByte(n)
				i++
			} else if i+2 < len(s) {
				v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
				if err != nil {
					t.Fatalf("openssl name %q: bad escape at %d", s, i)
				}
				cur.WriteByte(byte(v))
				i += 2
			}
		case c == '+':
			flush()
		case c == ',':
			flush()
			rdns = append(rdns, rdn)
			rdn = nil
		default:
			cur.WriteByte(c)
		}
	}
	flush()
	return append(rdns, rdn)
}

// x500Names are the short names Windows' CertNameToStr gives attributes
// (CERT_X500_NAME_STR); others are shown as OID.<dotted>.
var x500Names = map[string]string{
	"2.5.4.3": "CN", "2.5.4.4": "SN", "2.5.4.5": "SERIALNUMBER", "2.5.4.6": "C",
	"2.5.4.7": "L", "2.5.4.8": "S", "2.5.4.9": "STREET", "2.5.4.10": "O",
	"2.5.4.11": "OU", "2.5.4.12": "T", "2.5.4.13": "Description", "2.5.4.17": "PostalCode",
	"2.5.4.18": "POBox", "2.5.4.20": "Phone", "2.5.4.24": "X21Address", "2.5.4.42": "G",
	"2.5.4.43": "I", "2.5.4.46": "dnQualifier", "1.2.840.113549.1.9.1": "E",
	"0.9.2342.19200300.100.1.25": "DC",
}

// windowsName formats RDNs as Windows does: last RDN first, ", " between
// RDNs, " + " inside one, values quoted when they need it.
func windowsName(rdns [][]opensslAttr) string {
	var parts []string
	for i := len(rdns) - 1; i >= 0; i-- {
		var attrs []string
		for _, a := range rdns[i] {
			key, ok := x500Names[a.oid]
			if !ok {
				key = "OID." + a.oid
			}
			attrs = append(attrs, key+"="+windowsQuote(a.value))
		}
		parts = append(parts, strings.Join(attrs, " + "))
	}
	return strings.Join(parts, ", ")
}

func windowsQuote(v string) string {
	if strings.HasPrefix(v, "#") && len(v) > 1 && strings.Trim(v[1:], "0123456789ABCDEF") == "" {
		return v // a dump of a non-string value
	}
	first, _ := utf8.DecodeRuneInString(v)
	last, _ := utf8.DecodeLastRuneInString(v)
	if v != "" && (unicode.IsSpace(first) || unicode.IsSpace(last)) || strings.ContainsAny(v, ",+=\"\n<>#;") {
		return `"` + strings.ReplaceAll(v, `"`, `""`) + `"`
	}
	return v
}

func structuredName(rdns [][]opensslAttr) certinv.Name {
	var n certinv.Name
	for _, rdn := range rdns {
		for _, a := range rdn {
			var dst *string
			switch a.oid {
			case "2.5.4.3":
				dst = &n.CommonName
			case "2.5.4.10":
				dst = &n.Organization
			case "2.5.4.11":
				dst = &n.OrganizationalUnit
			case "2.5.4.7":
				dst = &n.Locality
			case "2.5.4.8":
				dst = &n.State
			case "2.5.4.6":
				dst = &n.Country
			case "1.2.840.113549.1.9.1":
				dst = &n.Email
			default:
				continue
			}
			if *dst != "" {
				*dst += ", "
			}
			*dst += a.value
		}
	}
	return n
}

// opensslSigAlgs maps openssl's signature algorithm names to Windows'.
var opensslSigAlgs = map[string]string{
	"md2WithRSAEncryption":    "md2RSA",
	"md5WithRSAEncryption":    "md5RSA",
	"sha1WithRSAEncryption":   "sha1RSA",
	"sha256WithRSAEncryption": "sha256RSA",
	"sha384WithRSAEncryption": "sha384RSA",
	"sha512WithRSAEncryption": "sha512RSA",
	"rsassaPss":               "RSASSA-PSS",
	"dsaWithSHA1":             "sha1DSA",
	"dsa_with_SHA256":         "sha256DSA",
	"ecdsa-with-SHA1":         "sha1ECDSA",
	"ecdsa-with-SHA256":       "sha256ECDSA",
	"ecdsa-with-SHA384":       "sha384ECDSA",
	"ecdsa-with-SHA512":       "sha512ECDSA",
	"ED25519":                 "Ed25519",
	"ED448":                   "Ed448",
}

func windowsSigAlg(t testing.TB, name string) string {
	if w, ok := opensslSigAlgs[name]; ok {
		return w
	}
	if regexp.MustCompile(`^[0-9]+(\.[0-9]+)+$`).MatchString(name) {
		return name // openssl shows an OID it does not know dotted, as Windows does
	}
	t.Fatalf("no Windows name for openssl's signature algorithm %q", name)
	return ""
}

func opensslKeySize(text string) int {
	switch {
	case strings.Contains(text, "ED25519 Public-Key:"):
		return 256
	case strings.Contains(text, "ED448 Public-Key:"):
		return 456
	}
	m := regexp.MustCompile(`Public-Key: \((\d+) bit\)`).FindStringSubmatch(text)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// extensionText returns the line after an extension's heading in -text.
func extensionText(text, heading string) (string, bool) {
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), heading+":") && i+1 < len(lines) {
			return strings.TrimSpace(lines[i+1]), true
		}
	}
	return "", false
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ", ")
}

// windowsKeyUsage maps openssl's key usage names to Windows'. Windows
// names the cRLSign bit twice (its offline and online CRL flags are the
// same bit).
func windowsKeyUsage(t testing.TB, n string) []string {
	t.Helper()
	m := map[string][]string{
		"Digital Signature": {"Digital Signature"},
		"Non Repudiation":   {"Non-Repudiation"},
		"Key Encipherment":  {"Key Encipherment"},
		"Data Encipherment": {"Data Encipherment"},
		"Key Agreement":     {"Key Agreement"},
		"Certificate Sign":  {"Certificate Signing"},
		"CRL Sign":          {"Off-line CRL Signing", "CRL Signing"},
		"Encipher Only":     {"Encipher Only"},
		"Decipher Only":     {"Decipher Only"},
	}
	w, ok := m[n]
	if !ok {
		t.Fatalf("unknown openssl key usage %q", n)
	}
	return w
}

// windowsEKU maps openssl's extended key usage names to Windows'; an OID
// that openssl names but Windows does not is shown dotted, as Windows
// shows it.
func windowsEKU(n string) string {
	m := map[string]string{
		"TLS Web Server Authentication":     "Server Authentication",
		"TLS Web Client Authentication":     "Client Authentication",
		"Code Signing":                      "Code Signing",
		"E-mail Protection":                 "Secure Email",
		"Time Stamping":                     "Time Stamping",
		"OCSP Signing":                      "OCSP Signing",
		"IPSec End System":                  "IP security end system",
		"IPSec Tunnel":                      "IP security tunnel termination",
		"IPSec User":                        "IP security user",
		"Any Extended Key Usage":            "Any Purpose",
		"Microsoft Server Gated Crypto":     "Microsoft Server Gated Crypto",
		"Netscape Server Gated Crypto":      "Netscape Server Gated Crypto",
		"Microsoft Encrypted File System":   "Encrypting File System",
		"Microsoft Smartcard Login":         "Smart Card Logon",
		"Microsoft Trust List Signing":      "Microsoft Trust List Signing",
		"Signing KDC Response":              "KDC Authentication",
		"Microsoft Individual Code Signing": "1.3.6.1.4.1.311.2.1.21",
		"Microsoft Commercial Code Signing": "1.3.6.1.4.1.311.2.1.22",
		"ipsec Internet Key Exchange":       "1.3.6.1.5.5.7.3.17",
		// Purposes Windows names and openssl shows dotted.
		"1.3.6.1.4.1.311.10.3.12":  "Document Signing",
		"1.3.6.1.4.1.311.10.3.13":  "Lifetime Signing",
		"1.3.6.1.4.1.311.10.3.4.1": "File Recovery",
		"1.3.6.1.4.1.311.10.3.5":   "Windows Hardware Driver Verification",
		"1.3.6.1.4.1.311.20.2.1":   "Certificate Request Agent",
		"1.3.6.1.4.1.311.21.6":     "Key Recovery Agent",
		"1.3.6.1.4.1.311.61.1.1":   "Kernel Mode Code Signing",
	}
	if w, ok := m[n]; ok {
		return w
	}
	return n // a dotted OID, or a name this table lacks (the comparison then fails loudly)
}

// asn1Node is one line of openssl asn1parse.
type asn1Node struct{ offset, depth, hdr, length int }

func asn1Nodes(t testing.TB, certFile string) []asn1Node {
	t.Helper()
	out := Run(t, "asn1parse", "-inform", "DER", "-in", certFile)
	re := regexp.MustCompile(`^\s*(\d+):d=(\d+)\s+hl=(\d+)\s+l=\s*(\d+)`)
	var nodes []asn1Node
	for _, line := range strings.Split(out, "\n") {
		m := re.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		var n asn1Node
		n.offset, _ = strconv.Atoi(m[1])
		n.depth, _ = strconv.Atoi(m[2])
		n.hdr, _ = strconv.Atoi(m[3])
		n.length, _ = strconv.Atoi(m[4])
		nodes = append(nodes, n)
	}
	return nodes
}

// opensslSelfSigned reports whether the certificate's issuer and subject
// are the same bytes and openssl verifies its signature over the
// TBSCertificate with its own public key. asn1parse gives the offsets.
func opensslSelfSigned(t testing.TB, dir, certFile string, der []byte, text, pub, winAlg string) bool {
	t.Helper()
	nodes := asn1Nodes(t, certFile)
	var d1, d2 []asn1Node
	for _, n := range nodes {
		switch n.depth {
		case 1:
			d1 = append(d1, n)
		case 2:
			if len(d1) == 1 { // children of the TBSCertificate
				d2 = append(d2, n)
			}
		}
	}
	if len(d1) != 3 || len(d2) < 6 {
		t.Fatalf("asn1parse: unexpected certificate shape")
	}
	if der[d2[0].offset] == 0xa0 { // explicit version
		d2 = d2[1:]
	}
	raw := func(n asn1Node) []byte { return der[n.offset : n.offset+n.hdr+n.length] }
	issuer, subject := raw(d2[2]), raw(d2[4])
	if !bytes.Equal(issuer, subject) || pub == "" {
		return false
	}
	tbs := raw(d1[0])
	sig := der[d1[2].offset+d1[2].hdr+1 : d1[2].offset+d1[2].hdr+d1[2].length]
	tbsFile, sigFile, pubFile := filepath.Join(dir, "tbs"), filepath.Join(dir, "sig"), filepath.Join(dir, "pub.pem")
	for f, b := range map[string][]byte{tbsFile: tbs, sigFile: sig} {
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(pubFile, []byte(pub), 0o600); err != nil {
		t.Fatal(err)
	}
	digests := map[string]string{
		"md5RSA": "md5", "sha1RSA": "sha1", "sha256RSA": "sha256", "sha384RSA": "sha384", "sha512RSA": "sha512",
		"sha1DSA": "sha1", "sha256DSA": "sha256",
		"sha1ECDSA": "sha1", "sha256ECDSA": "sha256", "sha384ECDSA": "sha384", "sha512ECDSA": "sha512",
	}
	switch winAlg {
	case "Ed25519", "Ed448":
		return opensslSucceeds("pkeyutl", "-verify", "-pubin", "-inkey", pubFile, "-rawin", "-in", tbsFile, "-sigfile", sigFile)
	case "RSASSA-PSS":
		hash := firstMatch(t, text, `Hash Algorithm: (\w+)`)
		mgf := firstMatch(t, text, `Mask Algorithm: mgf1 with (\w+)`)
		salt, err := strconv.ParseInt(firstMatch(t, text, `Salt Length: 0x([0-9A-Fa-f]+)`), 16, 32)
		if err != nil {
			t.Fatal(err)
		}
		return opensslSucceeds("dgst", "-"+hash, "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:"+strconv.FormatInt(salt, 10),
			"-sigopt", "rsa_mgf1_md:"+mgf, "-verify", pubFile, "-signature", sigFile, tbsFile)
	}
	md, ok := digests[winAlg]
	if !ok {
		t.Fatalf("no openssl digest for %s", winAlg)
	}
	return opensslSucceeds("dgst", "-"+md, "-verify", pubFile, "-signature", sigFile, tbsFile)
}

// Diff compares a parsed certificate with what openssl says of the same
// bytes, field by field, and returns one line per field that differs:
// "Field = got, want". Dates must also be in UTC.
func (e Expected) Diff(got *certinv.Certificate) []string {
	var out []string
	check := func(field string, g, w any) {
		if !reflect.DeepEqual(g, w) {
			out = append(out, fmt.Sprintf("%s = %#v, want %#v", field, g, w))
		}
	}
	check("SHA256", hex.EncodeToString(got.SHA256[:]), e.SHA256)
	check("Thumbprint", got.Thumbprint, e.Thumbprint)
	check("SignatureAlgorithm", got.SignatureAlgorithm, e.SignatureAlgorithm)
	check("KeySize", got.KeySize, e.KeySize)
	check("NotBefore", got.NotBefore.Format(time.RFC3339), e.NotBefore.Format(time.RFC3339))
	check("NotAfter", got.NotAfter.Format(time.RFC3339), e.NotAfter.Format(time.RFC3339))
	check("NotBefore.Location", got.NotBefore.Location(), time.UTC)
	check("NotAfter.Location", got.NotAfter.Location(), time.UTC)
	check("SubjectType", got.SubjectType, e.SubjectType)
	check("SerialNumber", got.SerialNumber, e.SerialNumber)
	check("IssuedTo", got.IssuedTo, e.IssuedTo)
	check("IssuedBy", got.IssuedBy, e.IssuedBy)
	check("Subject", got.Subject, e.Subject)
	check("Issuer", got.Issuer, e.Issuer)
	check("KeyUsage", got.KeyUsage, e.KeyUsage)
	check("ExtendedKeyUsage", got.ExtendedKeyUsage, e.ExtendedKeyUsage)
	check("SelfSigned", got.SelfSigned, e.SelfSigned)
	return out
}
