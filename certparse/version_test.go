package certparse

import (
	"bytes"
	"encoding/pem"
	"os"
	"testing"

	"github.com/certinv/certinv"
)

func TestFragment(t *testing.T) {
	b, err := os.ReadFile("testdata/ca-bundle.pem")
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
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
