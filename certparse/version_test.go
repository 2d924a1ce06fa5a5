package certparse

import (
	"bytes"
	"encoding/pem"
	"testing"

	"github.com/certinv/certinv"
	"github.com/certinv/certinv/internal/cabundle"
)

func TestFragment(t *testing.T) {
	block, _ := pem.Decode(cabundle.PEM)
	c, err := Parse(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	frag, err := Fragment(block.Bytes)
	if err != nil || !bytes.Equal(frag, certinv.AppendCertificateJSON(nil, c)) {
		t.Errorf("Fragment = %s, %v; want AppendCertificateJSON(Parse) = %s", frag, err, certinv.AppendCertificateJSON(nil, c))
	}
	if _, err := Fragment([]byte("junk")); certinv.KindOf(err) != certinv.EInvalid {
		t.Errorf("Fragment(junk) error = %v, want kind %s", err, certinv.EInvalid)
	}
}
