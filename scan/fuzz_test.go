package scan

import (
	"os"
	"path/filepath"
	"testing"
)

// seedFixtures adds every fixture file to f's corpus.
func seedFixtures(f *testing.F, pattern string) {
	files, err := filepath.Glob(filepath.Join("testdata/formats", pattern))
	if err != nil || len(files) == 0 {
		f.Fatalf("no fixtures match %s", pattern)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// checkEntries asserts what every parser promises: at most
// MaxEntriesPerFile certificates, each one framed DER certificate.
func checkEntries(t *testing.T, entries []Entry) {
	t.Helper()
	if len(entries) > MaxEntriesPerFile {
		t.Fatalf("%d entries, more than %d", len(entries), MaxEntriesPerFile)
	}
	for i, e := range entries {
		n, err := certificateLength(e.DER)
		if err != nil || n != len(e.DER) {
			t.Fatalf("entry %d is not one framed certificate: %v", i, err)
		}
	}
}

// FuzzParseFile covers the format sniffing and every parser behind it
// (PEM, DER, PKCS#7, PKCS#12, JKS, JCEKS).
func FuzzParseFile(f *testing.F) {
	seedFixtures(f, "*")
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, _ := ParseFile("fuzz.pem", data, []string{"secret"})
		checkEntries(t, entries)
	})
}

// FuzzPKCS7 covers the SignedData certificate reader.
func FuzzPKCS7(f *testing.F) {
	seedFixtures(f, "*.p7b")
	f.Fuzz(func(t *testing.T, data []byte) {
		p := &parser{}
		p.pkcs7(data, "fuzz")
		checkEntries(t, p.entries)
	})
}

// FuzzPKCS12 covers the PFX reader and its decryption.
func FuzzPKCS12(f *testing.F) {
	seedFixtures(f, "*.p*1*")
	seedFixtures(f, "*.pfx")
	f.Fuzz(func(t *testing.T, data []byte) {
		p := &parser{passwords: []string{"secret"}}
		p.pkcs12(data, 0)
		checkEntries(t, p.entries)
	})
}

// FuzzJKS covers the JKS and JCEKS readers and the serialized-object skip.
func FuzzJKS(f *testing.F) {
	seedFixtures(f, "store.j*")
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 4 { // the magic, which ParseFile checks before
			return
		}
		for _, jceks := range []bool{false, true} {
			p := &parser{}
			p.javaKeyStore(data, jceks)
			checkEntries(t, p.entries)
		}
	})
}
