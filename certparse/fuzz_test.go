package certparse

import (
	"errors"
	"strings"
	"testing"

	"github.com/certinv/certinv"
)

// FuzzParse checks that Parse never panics or hangs, that every error is
// a client-safe *certinv.Error of kind EInvalid, and that what it accepts
// has well-formed fields.
func FuzzParse(f *testing.F) {
	for _, set := range certSets {
		for _, c := range set.load(f) {
			f.Add(c.der)
		}
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		c, err := Parse(der)
		if err != nil {
			var e *certinv.Error
			if !errors.As(err, &e) || e.Kind != certinv.EInvalid {
				t.Fatalf("Parse error = %#v, want *certinv.Error of kind %s", err, certinv.EInvalid)
			}
			return
		}
		if len(c.Thumbprint) != 40 || strings.ToUpper(c.Thumbprint) != c.Thumbprint {
			t.Errorf("Parse Thumbprint = %q, want 40 uppercase hex digits", c.Thumbprint)
		}
		if c.SerialNumber == "" || len(c.SerialNumber)%2 != 0 {
			t.Errorf("Parse SerialNumber = %q, want whole octets", c.SerialNumber)
		}
		if c.SubjectType != certinv.SubjectCA && c.SubjectType != certinv.SubjectEndEntity {
			t.Errorf("Parse SubjectType = %q", c.SubjectType)
		}
		if c.NotBefore.Location().String() != "UTC" || c.NotAfter.Location().String() != "UTC" {
			t.Errorf("Parse dates not in UTC: %v, %v", c.NotBefore, c.NotAfter)
		}
		if c.KeySize < 0 {
			t.Errorf("Parse KeySize = %d", c.KeySize)
		}
		// A record must always encode.
		_ = certinv.AppendCertificateJSON(nil, c)
	})
}
