package synth

import (
	"crypto"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"time"
)

// authority is a certificate authority of the fleet: its certificate, the
// name it signs as, and its key.
type authority struct {
	cert   *certificate
	parent *x509.Certificate // Subject and SubjectKeyId, for issue's parent argument
	key    crypto.Signer
	alg    sigAlg // what it signs with unless told otherwise
}

// pki is what every device of a fleet shares besides the public roots: the
// organization's certificate authorities and the leaves deployed on many
// devices. It is made once per Generate, from the fleet's seed and Now.
type pki struct {
	root          *authority // Contoso Root CA: RSA 4096, signs the issuing CAs
	issuingRSA    *authority // RSA 2048
	issuingEC     *authority // ECDSA P-256: most leaves
	issuingEC384  *authority // ECDSA P-384
	deviceCA      *authority // Ed25519: agent identities
	mdmCA         *authority // ECDSA P-256: MDM device identities
	legacyRoot    *authority // RSA 1024, self-signed with SHA-1: SHA-1 and MD5 leaves
	tlsInspection *authority // ECDSA P-384, self-signed: the proxy's root on laptops
	vendorCA      *authority // a software vendor's code-signing CA, self-signed
	kubernetes    *authority // a cluster CA, self-signed
	puppet        *authority // the configuration manager's CA, self-signed

	codeSign     *certificate // the vendor's current code-signing certificate
	codeSignOld  *certificate // its predecessor: SHA-1, expired
	wildcard     *certificate // *.contoso.com, expiring within 30 days
	wildcardNext *certificate // its renewal, staged but not yet valid
	appliance    *certificate // an old appliance certificate: MD5, RSA 1024, self-signed, expired
}

const (
	org        = "Contoso Ltd"
	orgDomain  = "contoso.com"
	vendorName = "Northwind Traders Software, Inc."
)

func contosoName(cn string, ou ...string) pkix.Name {
	return pkix.Name{
		CommonName:         cn,
		OrganizationalUnit: ou,
		Organization:       []string{org},
		Locality:           []string{"Redmond"},
		Province:           []string{"Washington"},
		Country:            []string{"US"},
	}
}

func days(n int) time.Duration { return time.Duration(n) * 24 * time.Hour }

// newPKI makes the fleet's authorities and shared leaves. Keys come from the
// pool by fixed index; the leaves' pool ranges start after the authorities'.
func newPKI(keys *keyPool, seed int64, now time.Time) (*pki, error) {
	r := newRNG(seed, "pki", 0)
	p := &pki{}
	var err error
	ca := func(name pkix.Name, key crypto.Signer, parent *authority, alg sigAlg, notBefore time.Time, years, pathLen int) *authority {
		if err != nil {
			return nil
		}
		var a *authority
		a, err = newAuthority(r, name, key, parent, alg, notBefore, notBefore.AddDate(years, 0, 0), pathLen)
		if err != nil {
			err = fmt.Errorf("make %s: %w", name.CommonName, err)
		}
		return a
	}
	p.root = ca(contosoName("Contoso Root CA"), keys.rsa4096[0], nil, sha256RSA, now.Add(-days(2557)), 20, -1)
	p.issuingRSA = ca(contosoName("Contoso Issuing CA 01", "PKI"), keys.rsa2048[0], p.root, sha256RSA, now.Add(-days(1101)), 10, 0)
	p.issuingEC = ca(contosoName("Contoso Issuing CA 02", "PKI"), keys.p256[0], p.root, sha256RSA, now.Add(-days(733)), 10, 0)
	p.issuingEC384 = ca(contosoName("Contoso ECC Issuing CA 03", "PKI"), keys.p384[0], p.root, sha384RSA, now.Add(-days(402)), 8, 0)
	p.deviceCA = ca(contosoName("Contoso Device CA", "Endpoint Management"), keys.ed[0], p.root, sha256RSA, now.Add(-days(611)), 10, 0)
	p.mdmCA = ca(contosoName("Contoso MDM Device CA", "Endpoint Management"), keys.p256[2], p.root, sha256RSA, now.Add(-days(950)), 10, 0)
	p.legacyRoot = ca(contosoName("Contoso Legacy Root CA"), keys.rsa1024[0], nil, sha1RSA, now.Add(-days(5870)), 20, -1)
	p.tlsInspection = ca(contosoName("Contoso TLS Inspection CA", "Network Security"), keys.p384[1], nil, sha384ECDSA, now.Add(-days(640)), 10, 0)
	p.vendorCA = ca(pkix.Name{CommonName: "Northwind Traders Code Signing CA 2021", Organization: []string{vendorName}, Locality: []string{"Seattle"}, Province: []string{"Washington"}, Country: []string{"US"}},
		keys.rsa2048[1], nil, sha384RSA, now.Add(-days(1500)), 15, 0)
	p.kubernetes = ca(pkix.Name{CommonName: "kubernetes"}, keys.p256[1], nil, sha256ECDSA, now.Add(-days(288)), 10, -1)
	p.puppet = ca(pkix.Name{CommonName: "Puppet CA: puppet.contoso.local"}, keys.rsa2048[2], nil, sha256RSA, now.Add(-days(1830)), 15, -1)
	if err != nil {
		return nil, err
	}

	leaf := func(tmpl *x509.Certificate, key crypto.Signer, issuer *authority, alg sigAlg) *certificate {
		if err != nil {
			return nil
		}
		tmpl.SerialNumber = new(big.Int).SetBytes(r.serial(16))
		tmpl.BasicConstraintsValid = true
		parent, signer := tmpl, key
		if issuer != nil {
			parent, signer = issuer.parent, issuer.key
		}
		var der []byte
		der, err = issue(tmpl, parent, key.Public(), signer, alg, r)
		if err != nil {
			err = fmt.Errorf("make %s: %w", tmpl.Subject.CommonName, err)
			return nil
		}
		return newCertificate(der)
	}
	vendor := pkix.Name{CommonName: vendorName, Organization: []string{vendorName}, Locality: []string{"Seattle"}, Province: []string{"Washington"}, Country: []string{"US"}}
	signedAt := now.Add(-days(203)).Add(37*time.Minute + 12*time.Second)
	p.codeSign = leaf(&x509.Certificate{
		Subject: vendor, NotBefore: signedAt, NotAfter: signedAt.AddDate(3, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	}, keys.rsa3072[0], p.vendorCA, sha256RSA)
	oldAt := now.Add(-days(1298)).Add(9*time.Hour + 3*time.Second)
	p.codeSignOld = leaf(&x509.Certificate{
		Subject: vendor, NotBefore: oldAt, NotAfter: oldAt.AddDate(3, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	}, keys.rsa2048[3], p.vendorCA, sha1RSA)
	wildcardEnd := now.Add(days(21)).Add(14*time.Hour + 30*time.Minute)
	p.wildcard = leaf(&x509.Certificate{
		Subject: contosoName("*." + orgDomain), DNSNames: []string{"*." + orgDomain, orgDomain},
		NotBefore: wildcardEnd.Add(-days(397)), NotAfter: wildcardEnd,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}, keys.rsa2048[4], p.issuingRSA, sha256RSA)
	nextStart := now.Add(days(10)).Add(8 * time.Hour)
	p.wildcardNext = leaf(&x509.Certificate{
		Subject: contosoName("*." + orgDomain), DNSNames: []string{"*." + orgDomain, orgDomain},
		NotBefore: nextStart, NotAfter: nextStart.Add(days(397)),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, keys.p256[3], p.issuingEC, sha256ECDSA)
	applianceAt := now.Add(-days(5113)).Add(2*time.Hour + 17*time.Minute)
	p.appliance = leaf(&x509.Certificate{
		Subject:   pkix.Name{CommonName: "appliance.contoso.local", Organization: []string{org}, OrganizationalUnit: []string{"Facilities"}, Country: []string{"US"}},
		NotBefore: applianceAt, NotAfter: applianceAt.AddDate(10, 0, 0),
	}, keys.rsa1024[1], nil, md5RSA)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// newAuthority makes a CA certificate, signed by parent with alg, or
// self-signed with alg when parent is nil. pathLen < 0 leaves the path
// length unconstrained.
func newAuthority(r *rng, name pkix.Name, key crypto.Signer, parent *authority, alg sigAlg, notBefore, notAfter time.Time, pathLen int) (*authority, error) {
	spki, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, err
	}
	skid := sha1.Sum(spki)
	tmpl := &x509.Certificate{
		SerialNumber:          new(big.Int).SetBytes(r.serial(16)),
		Subject:               name,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		SubjectKeyId:          skid[:],
	}
	if pathLen >= 0 {
		tmpl.MaxPathLen = pathLen
		tmpl.MaxPathLenZero = pathLen == 0
	}
	issuerTmpl, signer := tmpl, key
	if parent != nil {
		issuerTmpl, signer = parent.parent, parent.key
	}
	der, err := issue(tmpl, issuerTmpl, key.Public(), signer, alg, r)
	if err != nil {
		return nil, err
	}
	parsed, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse own certificate: %w", err)
	}
	return &authority{
		cert:   newCertificate(der),
		parent: &x509.Certificate{RawSubject: parsed.RawSubject, Subject: parsed.Subject, SubjectKeyId: parsed.SubjectKeyId},
		key:    key,
		alg:    defaultAlg(key),
	}, nil
}
