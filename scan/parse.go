package scan

import (
	"bytes"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"path/filepath"
	"strings"
)

// Entry is one certificate found in a file.
type Entry struct {
	// Alias names the keystore entry that holds the certificate (a JKS
	// alias, a PKCS#12 friendlyName); "" where the format has none.
	Alias string
	// DER is the certificate; it may share memory with the file's bytes.
	DER []byte
}

// Path returns where the entry lives in the file named file: the file
// itself, or "file:alias" for a keystore entry.
func (e Entry) Path(file string) string {
	if e.Alias == "" {
		return file
	}
	return file + ":" + e.Alias
}

// Limits of one file's parse, so that a hostile file costs bounded work.
const (
	// MaxEntriesPerFile is the most certificates taken from one file; a
	// file with more yields the first ones and an error.
	MaxEntriesPerFile = 10000
	// maxCertificateBytes is the largest certificate taken: the server's
	// limit for one DER certificate.
	maxCertificateBytes = 64 << 10
	// maxNesting bounds containers inside containers (PEM holding PKCS#7,
	// PKCS#12 safe contents inside safe contents).
	maxNesting = 4
)

// certExtensions are the file name extensions that promise a certificate
// file: such a file whose format is not recognized is reported.
var certExtensions = map[string]bool{
	".pem": true, ".crt": true, ".cer": true, ".der": true, ".cert": true,
	".p7b": true, ".p7c": true, ".p7": true, ".spc": true,
	".pfx": true, ".p12": true,
	".jks": true, ".jceks": true, ".keystore": true, ".truststore": true, ".ks": true,
}

// ParseFile returns the certificates in one file's bytes, whatever its
// format: PEM (bundles of many; CERTIFICATE, TRUSTED CERTIFICATE and PKCS7
// blocks), DER, PKCS#7 (.p7b, .p7c) in DER or PEM, PKCS#12 (.pfx, .p12:
// readable certificates without a password, encrypted ones with the empty
// password or one of passwords), and Java keystores (JKS, JCEKS, the JDK's
// cacerts), whose certificates are stored in clear.
//
// It never stops at the first problem: the errors say what could not be
// read (a corrupt certificate, a truncated PEM block, a wrong password), and
// the entries hold everything that could. name is used only to tell, by its
// extension, a file that should have held certificates from one that need
// not (a configuration file); it is never opened.
func ParseFile(name string, data []byte, passwords []string) ([]Entry, []error) {
	p := &parser{passwords: passwords}
	p.file(name, data)
	return p.entries, p.errs
}

// parser gathers the entries and errors of one file.
type parser struct {
	passwords []string
	entries   []Entry
	errs      []error
	full      bool // MaxEntriesPerFile reached
	// goodPassword is the index+1 in candidates of the password that last
	// opened an encrypted PKCS#12 part, tried first for the next one.
	goodPassword int
}

func (p *parser) errorf(format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf(format, args...))
}

// add takes a certificate whose frame has been checked.
func (p *parser) add(alias string, der []byte) {
	if p.full {
		return
	}
	if len(p.entries) >= MaxEntriesPerFile {
		p.full = true
		p.errorf("more than %d certificates: the rest are not read", MaxEntriesPerFile)
		return
	}
	p.entries = append(p.entries, Entry{Alias: alias, DER: der})
}

// addChecked frames der as a certificate and takes it, or records why not.
func (p *parser) addChecked(what, alias string, der []byte) {
	if err := checkCertificate(der); err != nil {
		p.errorf("%s: %v", what, err)
		return
	}
	p.add(alias, der)
}

// checkCertificate checks that der is one framed certificate within the
// size limit.
func checkCertificate(der []byte) error {
	if len(der) > maxCertificateBytes {
		return fmt.Errorf("certificate of %d bytes is larger than the limit of %d", len(der), maxCertificateBytes)
	}
	n, err := certificateLength(der)
	if err != nil {
		return fmt.Errorf("corrupt certificate: %v", err)
	}
	if n != len(der) {
		return fmt.Errorf("corrupt certificate: %d bytes after its end", len(der)-n)
	}
	return nil
}

// Magic numbers of Java keystores.
const (
	magicJKS   = 0xFEEDFEED
	magicJCEKS = 0xCECECECE
)

func (p *parser) file(name string, data []byte) {
	switch {
	case len(data) >= 4 && binary.BigEndian.Uint32(data) == magicJKS:
		p.javaKeyStore(data, false)
	case len(data) >= 4 && binary.BigEndian.Uint32(data) == magicJCEKS:
		p.javaKeyStore(data, true)
	case bytes.Contains(data, []byte("-----BEGIN ")):
		p.pem(data)
	case len(data) > 0 && data[0] == tagSequence:
		p.der(data, 0)
	default:
		if certExtensions[strings.ToLower(filepath.Ext(name))] {
			p.errorf("not a certificate file: no PEM block, DER structure or keystore found")
		}
	}
}

// der reads a DER file: one or more certificates, a PKCS#7 ContentInfo or a
// PKCS#12 PFX, told apart by the first element inside the outer SEQUENCE.
func (p *parser) der(data []byte, depth int) {
	outer, _, err := readElement(data)
	if err != nil {
		p.errorf("DER: truncated or malformed")
		return
	}
	first, _, err := readElement(outer.content)
	if err != nil {
		p.errorf("DER: truncated or malformed")
		return
	}
	switch first.tag {
	case tagOID:
		p.pkcs7(data, "PKCS#7")
	case tagInteger:
		p.pkcs12(data, depth)
	default:
		// Certificates, possibly concatenated.
		for i := 0; len(data) > 0 && !p.full; i++ {
			e, rest, err := readElement(data)
			if err != nil {
				p.errorf("DER certificate %d: truncated or malformed", i+1)
				return
			}
			p.addChecked(fmt.Sprintf("DER certificate %d", i+1), "", e.full)
			data = rest
		}
	}
}

// pem reads every PEM block of data. A block that cannot be decoded
// (truncated, bad base64, no END line) is reported with its line and
// skipped; the blocks after it are still read.
func (p *parser) pem(data []byte) {
	begin := []byte("-----BEGIN ")
	off := 0
	for n := 1; !p.full; n++ {
		i := bytes.Index(data[off:], begin)
		if i < 0 {
			return
		}
		start := off + i
		// The line number is for errors only: counting lines for every
		// block would cost a bundle quadratic time.
		what := func() string {
			return fmt.Sprintf("PEM block %d (line %d)", n, 1+bytes.Count(data[:start], []byte{'\n'}))
		}
		next := bytes.Index(data[start+1:], begin)
		block, rest := pem.Decode(data[start:])
		consumed := len(data) - start - len(rest)
		// pem.Decode skips a bad block and decodes the next one: a block is
		// this one only if it ends before the next BEGIN line.
		if block == nil || next >= 0 && consumed > next+1 {
			p.errorf("%s: truncated or malformed", what())
			if next < 0 {
				return
			}
			off = start + 1 + next
			continue
		}
		off = start + consumed
		switch block.Type {
		case "CERTIFICATE", "X509 CERTIFICATE", "X.509 CERTIFICATE":
			if err := checkCertificate(block.Bytes); err != nil {
				p.errorf("%s: %v", what(), err)
				continue
			}
			p.add("", block.Bytes)
		case "TRUSTED CERTIFICATE":
			// OpenSSL's trusted form: the certificate, then its trust
			// settings.
			n, err := certificateLength(block.Bytes)
			if err != nil {
				p.errorf("%s: corrupt certificate: %v", what(), err)
				continue
			}
			p.addChecked(what(), "", block.Bytes[:n])
		case "PKCS7", "PKCS #7 SIGNED DATA", "CMS":
			p.pkcs7(block.Bytes, what()+": PKCS#7")
		}
		// Keys, requests, CRLs and parameters hold no certificate.
	}
}
