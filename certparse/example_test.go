package certparse_test

import (
	"encoding/pem"
	"fmt"
	"os"
	"strings"

	"github.com/certinv/certinv/certparse"
)

func ExampleParse() {
	data, err := os.ReadFile("testdata/fixtures/sha256rsa-v3-ca.pem")
	if err != nil {
		fmt.Println(err)
		return
	}
	block, _ := pem.Decode(data)
	c, err := certparse.Parse(block.Bytes)
	if err != nil {
		fmt.Println(err) // a *certinv.Error of kind certinv.EInvalid: safe to show the client
		return
	}
	fmt.Println(c.IssuedTo)
	fmt.Println(c.SignatureAlgorithm, c.KeySize, c.SubjectType)
	fmt.Println(strings.Join(c.KeyUsage, ", "))
	fmt.Println("self-signed:", c.SelfSigned)
	// Output:
	// CN=Contoso Root, OU=PKI, O=Contoso Ltd, L=Redmond, S=Washington, C=US
	// sha256RSA 2048 CA
	// Certificate Signing, Off-line CRL Signing, CRL Signing
	// self-signed: true
}
