package certparse

import (
	"bytes"
	"errors"
	"testing"

	"github.com/certinv/certinv"
)

func TestParseRejects(t *testing.T) {
	good := bundleCerts(t)[0]
	tests := []struct {
		name string
		der  []byte
		want string // the client-safe message
	}{
		{"empty", nil, "not a DER certificate: empty input"},
		{"not DER", []byte("-----BEGIN CERTIFICATE-----"), "not a DER certificate: malformed outer SEQUENCE"},
		{"truncated", good[:len(good)-1], "not a DER certificate: malformed outer SEQUENCE"},
		{"trailing data", append(bytes.Clone(good), 0), "trailing data after certificate"},
		{"too large", make([]byte, certinv.MaxCertificateBytes+1), "certificate larger than 65536 bytes"},
		{"indefinite length", []byte{0x30, 0x80, 0x00, 0x00}, "not a DER certificate: malformed outer SEQUENCE"},
		{"empty sequence", []byte{0x30, 0x00}, "not a DER certificate: malformed TBSCertificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(tt.der)
			var e *certinv.Error
			if !errors.As(err, &e) {
				t.Fatalf("Parse(%s) = %v, %v; want *certinv.Error", tt.name, c, err)
			}
			if e.Kind != certinv.EInvalid || e.Message != tt.want {
				t.Errorf("Parse(%s) error = %q (%s), want %q (%s)", tt.name, e.Message, e.Kind, tt.want, certinv.EInvalid)
			}
		})
	}
}
