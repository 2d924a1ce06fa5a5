package synth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"
	"time"

	"github.com/certinv/certinv"
)

// builder makes one device's certificate list.
type builder struct {
	s   *state
	d   *device
	r   *rng
	out []certinv.ReportedCertificate
	err error

	leaves        int // leaf and chain entries added
	leafBudget    int
	aliases       int       // keystore aliases and file names handed out
	picked        [2]uint64 // the shared pool's leaves the device holds
	issuerWeights []int     // of generic leaves; uniqueIssuerW when nil
}

func (b *builder) add(path string, c *certificate) {
	if c == nil {
		return
	}
	b.out = append(b.out, certinv.ReportedCertificate{Path: path, DER: c.der})
}

// store adds c to a Windows certificate store of the local machine.
func (b *builder) store(name string, c *certificate) {
	if c == nil {
		return
	}
	b.add(`LocalMachine\`+name+`\`+c.thumb, c)
}

// room reports whether another leaf entry fits the device's budget.
func (b *builder) room() bool { return b.err == nil && b.leaves < b.leafBudget }

// addLeaf adds a leaf entry made by leaf (nil when there was no room).
func (b *builder) addLeaf(path string, c *certificate) {
	if c == nil {
		return
	}
	b.add(path, c)
	b.leaves++
}

func (b *builder) storeLeaf(name string, c *certificate) {
	if c == nil {
		return
	}
	b.store(name, c)
	b.leaves++
}

// chain adds the issuer's certificate at path, after its leaf, as a PEM
// file with the chain holds it.
func (b *builder) chain(path string, c *certificate, issuer *authority) {
	if c == nil || issuer == nil || !b.room() {
		return
	}
	b.addLeaf(path, issuer.cert)
}

// The mixes of generic leaves, in per mille.
//
// Leaf keys cost nothing (they come from the pool) but signatures do: an RSA
// 2048 signature costs as much as 30 ECDSA P-256 ones. So the leaves of one
// device lean to ECDSA and Ed25519 issuers, and the shared pool, made once,
// carries most of the RSA variety.
var (
	validityW     = []int{700, 130, 50, 50, 50, 20} // valid, expired, expiring within 30, 60, 90 days, not yet valid
	keyW          = []int{330, 330, 80, 70, 60, 70, 60}
	selfKeyW      = []int{550, 150, 50, 200, 50, 0, 0}
	uniqueIssuerW = []int{690, 25, 5, 5, 3, 40, 100, 35, 12, 80, 5}
	sharedIssuerW = []int{400, 200, 50, 30, 30, 60, 60, 60, 30, 70, 10}
)

const (
	validNow = iota
	expired
	expiring30
	expiring60
	expiring90
	notYetValid
)

// pickKey returns a leaf key from the pool, by weights (keyW order: P-256,
// RSA 2048, P-384, Ed25519, RSA 1024, RSA 3072, RSA 4096). The first keys of
// each kind belong to the authorities and shared leaves.
func (b *builder) pickKey(weights []int) crypto.Signer {
	k := b.s.keys
	switch b.r.weighted(weights) {
	case 0:
		return k.p256[4+b.r.intn(len(k.p256)-4)]
	case 1:
		return k.rsa2048[3+b.r.intn(len(k.rsa2048)-3)]
	case 2:
		return k.p384[2+b.r.intn(len(k.p384)-2)]
	case 3:
		return k.ed[1+b.r.intn(len(k.ed)-1)]
	case 4:
		return k.rsa1024[1+b.r.intn(len(k.rsa1024)-1)]
	case 5:
		return k.rsa3072[b.r.intn(len(k.rsa3072))]
	default:
		return k.rsa4096[b.r.intn(len(k.rsa4096))]
	}
}

// pickIssuer returns the issuer and signature algorithm of a generic leaf,
// by the builder's issuer weights (in the order of the cases below); a nil
// issuer means self-signed.
func (b *builder) pickIssuer() (*authority, sigAlg) {
	p := b.s.pki
	weights := b.issuerWeights
	if weights == nil {
		weights = uniqueIssuerW
	}
	switch b.r.weighted(weights) {
	case 0:
		return p.issuingEC, sha256ECDSA
	case 1:
		return p.issuingRSA, sha256RSA
	case 2:
		return p.issuingRSA, sha384RSA
	case 3:
		return p.issuingRSA, sha512RSA
	case 4:
		return p.issuingRSA, pssSHA256
	case 5:
		return p.issuingEC384, sha384ECDSA
	case 6:
		return p.deviceCA, pureEd25519
	case 7:
		return p.legacyRoot, sha1RSA
	case 8:
		return p.legacyRoot, md5RSA
	case 9:
		return nil, 0
	default:
		return p.issuingEC, sha1ECDSA
	}
}

// window returns a validity window of lifetime days in a state drawn from
// validityW, relative to the fleet's Now.
func (b *builder) window(lifetime int) (notBefore, notAfter time.Time) {
	now := b.s.now
	secs := time.Duration(b.r.between(1, 86399)) * time.Second
	switch b.r.weighted(validityW) {
	case notYetValid:
		notBefore = now.Add(days(b.r.between(1, 30)) + secs)
		return notBefore, notBefore.Add(days(lifetime))
	case expired:
		notAfter = now.Add(-days(b.r.between(1, 3*365)) + secs - days(1))
	case expiring30:
		notAfter = now.Add(days(b.r.between(0, 29)) + secs)
	case expiring60:
		notAfter = now.Add(days(b.r.between(30, 59)) + secs)
	case expiring90:
		notAfter = now.Add(days(b.r.between(60, 89)) + secs)
	default:
		if lifetime <= 90 {
			notAfter = now.Add(days(b.r.between(0, lifetime-1)) + secs)
		} else {
			notAfter = now.Add(days(b.r.between(90, lifetime-1)) + secs)
		}
	}
	return notAfter.Add(-days(lifetime)), notAfter
}

// leafSpec describes a leaf; zero fields are drawn from the generic mixes.
type leafSpec struct {
	subject    pkix.Name
	dns        []string
	emails     []string
	keyUsage   x509.KeyUsage // 0: by key type
	noKeyUsage bool
	eku        []x509.ExtKeyUsage
	otherEKU   []asn1.ObjectIdentifier
	lifetime   int // days
	issuer     *authority
	selfSigned bool
	generic    bool // issuer and algorithm drawn from issuerW (may be self-signed)
	key        crypto.Signer
	keyWeights []int     // when key is nil; keyW by default
	alg        sigAlg    // 0: the issuer's
	notBefore  time.Time // with notAfter: a fixed window instead of a drawn one
	notAfter   time.Time
}

var oidEmailAddress = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}

// leaf makes a leaf certificate for the device, or returns nil when the
// device's leaf budget is spent. It returns the issuer for chain files.
func (b *builder) leaf(spec leafSpec) (*certificate, *authority) {
	if !b.room() {
		return nil, nil
	}
	issuer, alg := spec.issuer, spec.alg
	selfSigned := spec.selfSigned
	if spec.generic {
		issuer, alg = b.pickIssuer()
		selfSigned = issuer == nil
	}
	key := spec.key
	if key == nil {
		switch {
		case selfSigned && spec.keyWeights == nil:
			key = b.pickKey(selfKeyW)
		case spec.keyWeights != nil:
			key = b.pickKey(spec.keyWeights)
		default:
			key = b.pickKey(keyW)
		}
	}
	signer := key
	if !selfSigned {
		signer = issuer.key
	}
	if alg == 0 {
		alg = defaultAlg(signer)
		if selfSigned && alg == sha256RSA && b.r.chance(0.1) {
			alg = sha1RSA
		}
	}
	if selfSigned {
		if _, isRSA := key.(*rsa.PrivateKey); !isRSA && (alg == sha1RSA || alg == md5RSA) {
			alg = defaultAlg(key)
		}
	}
	notBefore, notAfter := spec.notBefore, spec.notAfter
	if notAfter.IsZero() {
		notBefore, notAfter = b.window(spec.lifetime)
	}
	serialLen := 16
	if selfSigned {
		serialLen = 8
	}
	tmpl := &x509.Certificate{
		SerialNumber:          new(big.Int).SetBytes(b.r.serial(serialLen)),
		Subject:               spec.subject,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		DNSNames:              spec.dns,
		EmailAddresses:        spec.emails,
		ExtKeyUsage:           spec.eku,
		UnknownExtKeyUsage:    spec.otherEKU,
		BasicConstraintsValid: true,
	}
	if !spec.noKeyUsage {
		tmpl.KeyUsage = spec.keyUsage
		if tmpl.KeyUsage == 0 {
			tmpl.KeyUsage = x509.KeyUsageDigitalSignature
			switch key.(type) {
			case *rsa.PrivateKey:
				tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
			case *ecdsa.PrivateKey:
				if b.r.chance(0.2) {
					tmpl.KeyUsage |= x509.KeyUsageKeyAgreement
				}
			}
		}
	}
	parent := tmpl
	if !selfSigned {
		parent = issuer.parent
	}
	der, err := issue(tmpl, parent, key.Public(), signer, alg, b.r)
	if err != nil {
		b.err = fmt.Errorf("make leaf %q: %w", spec.subject.CommonName, err)
		return nil, nil
	}
	if selfSigned {
		issuer = nil
	}
	return newCertificate(der), issuer
}

// caEntries returns where the device keeps the organization's authorities.
// They cost no signature, and are added after the leaves, as far as the
// device's budget goes.
func (b *builder) caEntries() []entry {
	d, p, r := b.d, b.s.pki, b.r
	var e []entry
	switch d.family {
	case windows:
		win := func(store string, a *authority) entry {
			return entry{`LocalMachine\` + store + `\` + a.cert.thumb, a.cert}
		}
		e = append(e, win("Root", p.root), win("CA", p.issuingRSA), win("CA", p.issuingEC))
		if r.chance(0.6) {
			e = append(e, win("CA", p.issuingEC384))
		}
		if !d.server && r.chance(0.9) {
			e = append(e, win("Root", p.tlsInspection))
		}
		if d.server && r.chance(0.3) || d.os == "Windows 10" && r.chance(0.5) {
			e = append(e, win("Root", p.legacyRoot))
		}
		if r.chance(0.7) {
			e = append(e, win("CA", p.vendorCA))
		}
		if r.chance(0.4) {
			e = append(e, win("CA", p.deviceCA))
		}
		if !d.server {
			e = append(e, win("CA", p.mdmCA))
		}
	case debian, rhel:
		bundle, anchors := "/etc/ssl/certs/ca-certificates.crt", "/usr/local/share/ca-certificates/"
		if d.family == rhel {
			bundle, anchors = "/etc/pki/tls/certs/ca-bundle.crt", "/etc/pki/ca-trust/source/anchors/"
		}
		e = append(e, entry{anchors + "contoso-root-ca.crt", p.root.cert}, entry{bundle, p.root.cert})
		if r.chance(0.2) {
			e = append(e, entry{anchors + "contoso-legacy-root-ca.crt", p.legacyRoot.cert}, entry{bundle, p.legacyRoot.cert})
		}
		if d.role == "k8s-node" {
			e = append(e, entry{"/etc/kubernetes/pki/ca.crt", p.kubernetes.cert})
		}
	case macOS:
		const keychain = "/Library/Keychains/System.keychain"
		e = append(e, entry{keychain, p.root.cert}, entry{keychain, p.issuingEC.cert}, entry{keychain, p.mdmCA.cert}, entry{keychain, p.deviceCA.cert})
		if r.chance(0.9) {
			e = append(e, entry{keychain, p.tlsInspection.cert})
		}
	}
	return e
}

type entry struct {
	path string
	cert *certificate
}

func (b *builder) windowsLeaves() {
	d, p, r, k := b.d, b.s.pki, b.r, b.s.keys
	// The machine certificate from autoenrollment.
	if r.chance(0.92) {
		issuer := p.issuingEC
		if r.chance(0.05) {
			issuer = p.issuingRSA
		}
		eku := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		if d.server {
			eku = append(eku, x509.ExtKeyUsageServerAuth)
		}
		c, _ := b.leaf(leafSpec{subject: pkix.Name{CommonName: d.fqdn}, dns: []string{d.fqdn}, eku: eku, lifetime: 365, issuer: issuer, keyWeights: []int{40, 60, 0, 0, 0, 0, 0}})
		b.storeLeaf("My", c)
	}
	// Remote Desktop makes itself a certificate.
	if d.server && r.chance(0.35) || !d.server && r.chance(0.03) {
		c, _ := b.leaf(leafSpec{subject: pkix.Name{CommonName: d.fqdn}, eku: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			keyUsage: x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment, lifetime: 182, selfSigned: true, key: k.rsa2048[3]})
		b.storeLeaf("Remote Desktop", c)
	}
	if !d.server {
		// Intune-style MDM enrollment.
		if r.chance(0.35) {
			c, _ := b.leaf(leafSpec{subject: pkix.Name{CommonName: guidFrom(r)}, eku: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, lifetime: 365, issuer: p.mdmCA, keyWeights: []int{0, 1, 0, 0, 0, 0, 0}})
			b.storeLeaf("My", c)
		}
		// The ASP.NET Core development certificate of a developer.
		if d.dept == "engineering" && r.chance(0.3) || r.chance(0.02) {
			c, _ := b.leaf(leafSpec{subject: pkix.Name{CommonName: "localhost"}, dns: []string{"localhost"},
				eku: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, otherEKU: []asn1.ObjectIdentifier{{1, 3, 6, 1, 4, 1, 311, 84, 1, 1}},
				lifetime: 365, selfSigned: true, key: k.rsa2048[4]})
			b.storeLeaf("My", c)
		}
		// A user's smart-card logon certificate, left in the machine store.
		if r.chance(0.1) {
			c, _ := b.leaf(leafSpec{subject: contosoName(d.user, "Users"), emails: []string{d.user + "@" + orgDomain},
				eku: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, otherEKU: []asn1.ObjectIdentifier{{1, 3, 6, 1, 4, 1, 311, 20, 2, 2}},
				keyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment, lifetime: 730, issuer: p.issuingEC})
			b.storeLeaf("My", c)
		}
	}
	if d.server && (d.role == "web" || d.role == "app") && r.chance(0.9) {
		name := fmt.Sprintf("%s%d.%s", d.role, d.index+1, orgDomain)
		c, _ := b.leaf(leafSpec{subject: contosoName(name, "Web Services"), dns: []string{name, d.fqdn},
			eku: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, lifetime: 397, generic: true})
		store := "My"
		if r.chance(0.3) {
			store = "WebHosting"
		}
		b.storeLeaf(store, c)
	}
	if d.server && d.role == "web" && r.chance(0.5) && b.room() {
		b.storeLeaf("WebHosting", p.wildcard)
		if r.chance(0.4) && b.room() {
			b.storeLeaf("WebHosting", p.wildcardNext)
		}
	}
	if r.chance(0.6) && b.room() {
		b.storeLeaf("TrustedPublisher", p.codeSign)
	}
	if r.chance(0.25) && b.room() {
		b.storeLeaf("TrustedPublisher", p.codeSignOld)
	}
	if d.server && r.chance(0.08) && b.room() {
		b.storeLeaf("My", p.appliance)
	}
}

func (b *builder) linuxLeaves() {
	d, p, r, k := b.d, b.s.pki, b.r, b.s.keys
	certDir, sitePath := "/etc/ssl/certs/", "/etc/nginx/ssl/site.pem"
	if d.family == rhel {
		certDir, sitePath = "/etc/pki/tls/certs/", "/etc/pki/tls/certs/"+d.host+".crt"
	}
	if (d.role == "web" || d.role == "api" || d.role == "proxy") && r.chance(0.9) {
		name := fmt.Sprintf("%s%d.%s", d.role, d.index+1, orgDomain)
		c, issuer := b.leaf(leafSpec{subject: contosoName(name, "Platform"), dns: []string{name, d.fqdn},
			eku: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, lifetime: 90 + 307*r.intn(2), generic: true})
		b.addLeaf(sitePath, c)
		b.chain(sitePath, c, issuer)
	}
	if (d.role == "web" || d.role == "proxy") && r.chance(0.5) && b.room() {
		b.addLeaf("/etc/nginx/ssl/wildcard.contoso.com.pem", p.wildcard)
		if r.chance(0.4) && b.room() {
			b.addLeaf("/etc/nginx/ssl/wildcard.contoso.com-next.pem", p.wildcardNext)
		}
	}
	// The distribution's own self-signed certificates.
	if d.family == debian && r.chance(0.4) {
		c, _ := b.leaf(leafSpec{subject: pkix.Name{CommonName: d.host}, dns: []string{d.host}, noKeyUsage: true,
			lifetime: 3650, selfSigned: true, key: k.rsa2048[3]})
		b.addLeaf(certDir+"ssl-cert-snakeoil.pem", c)
	}
	if d.family == rhel && r.chance(0.3) {
		c, _ := b.leaf(leafSpec{subject: pkix.Name{
			CommonName: d.fqdn, OrganizationalUnit: []string{"SomeOrganizationalUnit"}, Organization: []string{"SomeOrganization"},
			Locality: []string{"SomeCity"}, Province: []string{"SomeState"}, Country: []string{"--"},
		}, noKeyUsage: true, lifetime: 365, selfSigned: true, key: k.rsa2048[4]})
		b.addLeaf(certDir+"localhost.crt", c)
	}
	if (d.role == "app" || d.role == "api" || d.role == "mq") && r.chance(0.7) {
		const ks = "/opt/app/conf/keystore.jks:"
		c, _ := b.leaf(leafSpec{subject: contosoName(d.fqdn, "Applications"), dns: []string{d.fqdn},
			eku: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, lifetime: 730, generic: true})
		b.addLeaf(ks+"server", c)
		if r.chance(0.5) {
			c, _ := b.leaf(leafSpec{subject: contosoName("svc-"+d.role+"-"+d.region, "Service Accounts"),
				eku: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, lifetime: 365, generic: true})
			b.addLeaf(ks+"client", c)
		}
		if r.chance(0.15) && b.room() {
			b.addLeaf(ks+"legacy", p.appliance)
		}
	}
	if d.role == "k8s-node" {
		c, _ := b.leaf(leafSpec{subject: pkix.Name{CommonName: "system:node:" + d.host, Organization: []string{"system:nodes"}},
			eku: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, lifetime: 365, issuer: p.kubernetes, key: k.p256[4+r.intn(len(k.p256)-4)]})
		b.addLeaf("/var/lib/kubelet/pki/kubelet-client-current.pem", c)
		serving := b.s.now.Add(-days(r.between(1, 300)) - time.Duration(r.intn(86400))*time.Second)
		c, _ = b.leaf(leafSpec{subject: pkix.Name{CommonName: fmt.Sprintf("%s@%d", d.host, serving.Unix())}, dns: []string{d.host},
			eku: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, selfSigned: true, key: k.p256[4+r.intn(len(k.p256)-4)],
			notBefore: serving, notAfter: serving.AddDate(1, 0, 0)})
		b.addLeaf("/var/lib/kubelet/pki/kubelet.crt", c)
	}
	if r.chance(0.2) {
		const dir = "/etc/puppetlabs/puppet/ssl/certs/"
		c, issuer := b.leaf(leafSpec{subject: pkix.Name{CommonName: d.fqdn}, dns: []string{d.fqdn, "puppet"},
			eku: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, lifetime: 1825, issuer: p.puppet, key: k.rsa2048[3]})
		b.addLeaf(dir+d.fqdn+".pem", c)
		b.chain(dir+"ca.pem", c, issuer)
	}
	// The management agent's identity.
	if r.chance(0.5) {
		const identity = "/etc/opt/contoso/agent/identity.pem"
		c, issuer := b.leaf(leafSpec{subject: pkix.Name{CommonName: d.id, OrganizationalUnit: []string{"Devices"}, Organization: []string{org}},
			eku: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, lifetime: 180, issuer: p.deviceCA, key: k.ed[1+r.intn(len(k.ed)-1)]})
		b.addLeaf(identity, c)
		b.chain(identity, c, issuer)
	}
}

func (b *builder) macLeaves() {
	d, p, r, k := b.d, b.s.pki, b.r, b.s.keys
	const system = "/Library/Keychains/System.keychain"
	login := "/Users/" + d.user + "/Library/Keychains/login.keychain-db"
	if r.chance(0.9) {
		c, _ := b.leaf(leafSpec{subject: pkix.Name{CommonName: guidFrom(r), Organization: []string{org}},
			eku: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, lifetime: 365, issuer: p.mdmCA, keyWeights: []int{1, 1, 0, 0, 0, 0, 0}})
		b.addLeaf(system, c)
	}
	if r.chance(0.6) {
		c, _ := b.leaf(leafSpec{subject: pkix.Name{CommonName: d.fqdn}, dns: []string{d.fqdn},
			eku: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, lifetime: 365, issuer: p.issuingEC, key: k.p256[4+r.intn(len(k.p256)-4)]})
		b.addLeaf(system, c)
	}
	if r.chance(0.5) {
		c, _ := b.leaf(leafSpec{subject: pkix.Name{CommonName: d.id, OrganizationalUnit: []string{"Devices"}, Organization: []string{org}},
			eku: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, lifetime: 180, issuer: p.deviceCA, key: k.ed[1+r.intn(len(k.ed)-1)]})
		b.addLeaf(system, c)
	}
	if r.chance(0.3) {
		email := d.user + "@" + orgDomain
		name := contosoName(d.user, "Users")
		name.ExtraNames = []pkix.AttributeTypeAndValue{{Type: oidEmailAddress, Value: email}}
		c, _ := b.leaf(leafSpec{subject: name, emails: []string{email},
			eku:      []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection, x509.ExtKeyUsageClientAuth},
			keyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment | x509.KeyUsageKeyEncipherment,
			lifetime: 730, issuer: p.issuingEC, key: k.rsa2048[3+r.intn(len(k.rsa2048)-3)]})
		b.addLeaf(login, c)
	}
	if d.dept == "engineering" && r.chance(0.5) {
		c, _ := b.leaf(leafSpec{subject: pkix.Name{CommonName: "localhost"}, dns: []string{"localhost", "127.0.0.1.nip.io"},
			eku: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, lifetime: 825, selfSigned: true, key: k.p256[4+r.intn(len(k.p256)-4)]})
		b.addLeaf(login, c)
	}
	if r.chance(0.3) && b.room() {
		b.addLeaf(system, p.codeSign)
	}
}

// The generic leaves that fill a device's budget: services, clients, code
// signing, e-mail, and a few odd purposes. Half come from a pool of the
// fleet's shared service certificates (the same certificate deployed on the
// hosts of a service), half are the device's own.
var services = []string{"billing", "payments", "reporting", "inventory", "auth", "search", "wiki", "grafana", "jenkins", "gitlab", "vault", "kafka", "elastic", "sso", "crm", "erp", "intranet", "files", "backup", "metrics"}

// sharedLeaf is a leaf of the fleet's pool.
type sharedLeaf struct {
	cert *certificate
	svc  string
}

const (
	sharedPoolSize = 96 // at most 128: devices track their picks in a bitset
	sharedShare    = 0.5
)

// extraSpec describes a generic leaf for service svc. host, fqdn and user
// are empty for the shared pool.
func extraSpec(r *rng, svc, region, host, fqdn, user string) leafSpec {
	spec := leafSpec{generic: true, lifetime: []int{90, 365, 397, 730, 1095}[r.intn(5)]}
	switch r.weighted([]int{45, 25, 8, 8, 4, 5, 5}) {
	case 0:
		name := svc + "." + orgDomain
		if region != "" {
			name = svc + "." + region + "." + orgDomain
		}
		spec.subject = contosoName(name, "IT")
		spec.dns = []string{name}
		spec.eku = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	case 1:
		spec.subject = pkix.Name{CommonName: "svc-" + svc, Organization: []string{org}}
		spec.eku = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	case 2:
		spec.subject = contosoName("Contoso Build Signing", "Engineering")
		spec.eku = []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}
		spec.keyUsage = x509.KeyUsageDigitalSignature
	case 3:
		if user == "" {
			user = "svc-" + svc
		}
		spec.subject = contosoName(user, "Users")
		spec.emails = []string{user + "@" + orgDomain}
		spec.eku = []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection}
		spec.keyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment
	case 4:
		spec.subject = contosoName("Contoso Timestamping "+svc, "PKI")
		spec.eku = []x509.ExtKeyUsage{x509.ExtKeyUsageTimeStamping}
		spec.keyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment
	case 5:
		// IPsec IKE intermediate, a purpose crypto/x509 does not name.
		if fqdn == "" {
			fqdn = svc + "-gw." + orgDomain
		}
		spec.subject = pkix.Name{CommonName: fqdn, Organization: []string{org}}
		spec.otherEKU = []asn1.ObjectIdentifier{{1, 3, 6, 1, 5, 5, 8, 2, 2}}
	default:
		// No extended key usage at all, as old certificates have it.
		if host == "" {
			host = region
		}
		spec.subject = pkix.Name{CommonName: svc + "-" + host, Organization: []string{org}, Country: []string{"US"}}
		if r.chance(0.5) {
			spec.noKeyUsage = true
		}
	}
	return spec
}

// newSharedPool makes the fleet's pool of shared service certificates, with
// the full variety of issuers (the expensive RSA signatures are paid once).
func newSharedPool(s *state) ([]sharedLeaf, error) {
	b := &builder{s: s, r: newRNG(s.seed, "shared leaves", 0), leafBudget: sharedPoolSize, issuerWeights: sharedIssuerW}
	pool := make([]sharedLeaf, 0, sharedPoolSize)
	for range sharedPoolSize {
		svc := services[b.r.intn(len(services))]
		region := ""
		if b.r.chance(0.6) {
			region = regions[b.r.weighted(regionWeights)]
		}
		c, _ := b.leaf(extraSpec(b.r, svc, region, "", "", ""))
		if b.err != nil {
			return nil, b.err
		}
		b.leaves++
		pool = append(pool, sharedLeaf{c, svc})
	}
	return pool, nil
}

func (b *builder) extra() {
	d, r := b.d, b.r
	if pool := b.s.shared; len(pool) > 0 && r.chance(sharedShare) {
		i := r.intn(len(pool))
		if b.picked[i/64]&(1<<(i%64)) == 0 {
			b.picked[i/64] |= 1 << (i % 64)
			b.placeExtra(pool[i].cert, pool[i].svc)
			return
		}
	}
	svc := services[r.intn(len(services))]
	c, _ := b.leaf(extraSpec(r, svc, d.region, d.host, d.fqdn, d.user))
	b.placeExtra(c, svc)
}

// placeExtra adds a generic leaf where the device's family keeps such things.
func (b *builder) placeExtra(c *certificate, svc string) {
	d, r := b.d, b.r
	if c == nil {
		return
	}
	b.aliases++
	switch d.family {
	case windows:
		store := "My"
		switch {
		case d.server && r.chance(0.15):
			store = "WebHosting"
		case r.chance(0.1):
			store = "TrustedPeople"
		}
		b.storeLeaf(store, c)
	case debian, rhel:
		dir := "/etc/ssl/certs/"
		if d.family == rhel {
			dir = "/etc/pki/tls/certs/"
		}
		switch r.intn(4) {
		case 0:
			b.addLeaf(fmt.Sprintf("%s%s-%d.pem", dir, svc, b.aliases), c)
		case 1:
			b.addLeaf(fmt.Sprintf("/opt/app/conf/keystore.jks:%s-%d", svc, b.aliases), c)
		case 2:
			b.addLeaf(fmt.Sprintf("/etc/haproxy/certs/%s.pem", svc), c)
		default:
			b.addLeaf(fmt.Sprintf("/etc/nginx/ssl/%s.pem", svc), c)
		}
	case macOS:
		if r.chance(0.5) {
			b.addLeaf("/Library/Keychains/System.keychain", c)
		} else {
			b.addLeaf("/Users/"+d.user+"/Library/Keychains/login.keychain-db", c)
		}
	}
}

// rootPaths returns where a device of family f keeps public roots: the
// system store first, then the stores of runtimes that carry their own copy.
// A root appears at most once per path.
func rootPaths(f family) []func(*rootCert) string {
	fixed := func(p string) func(*rootCert) string { return func(*rootCert) string { return p } }
	switch f {
	case windows:
		return []func(*rootCert) string{
			func(c *rootCert) string { return `LocalMachine\Root\` + c.thumb },
			func(c *rootCert) string { return `LocalMachine\AuthRoot\` + c.thumb },
		}
	case debian:
		return []func(*rootCert) string{
			fixed("/etc/ssl/certs/ca-certificates.crt"),
			func(c *rootCert) string { return "/usr/lib/jvm/java-17-openjdk-amd64/lib/security/cacerts:" + c.alias },
			fixed("/usr/lib/python3/dist-packages/certifi/cacert.pem"),
		}
	case rhel:
		return []func(*rootCert) string{
			fixed("/etc/pki/tls/certs/ca-bundle.crt"),
			func(c *rootCert) string { return "/etc/pki/ca-trust/extracted/java/cacerts:" + c.alias },
			fixed("/opt/app/venv/lib/python3.11/site-packages/certifi/cacert.pem"),
		}
	default:
		return []func(*rootCert) string{
			fixed("/System/Library/Keychains/SystemRootCertificates.keychain"),
			fixed("/opt/homebrew/etc/ca-certificates/cert.pem"),
			fixed("/usr/local/etc/openssl@3/cert.pem"),
		}
	}
}

// roots adds n public roots, a random subset of the bundle per path, and
// returns how many did not fit.
func (b *builder) roots(n int) int {
	roots := b.s.roots
	order := make([]int, len(roots))
	for _, path := range rootPaths(b.d.family) {
		if n == 0 {
			break
		}
		take := min(n, len(roots))
		for i := range order {
			order[i] = i
		}
		// A partial Fisher-Yates shuffle picks take roots.
		for i := 0; i < take; i++ {
			j := i + b.r.intn(len(order)-i)
			order[i], order[j] = order[j], order[i]
		}
		for _, i := range order[:take] {
			b.add(path(roots[i]), roots[i].certificate)
		}
		n -= take
	}
	return n
}

// guidFrom returns a GUID in its lowercase string form, from r.
func guidFrom(r *rng) string {
	var g [16]byte
	_, _ = r.Read(g[:])
	g[6] = g[6]&0x0f | 0x40
	g[8] = g[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", g[0:4], g[4:6], g[6:8], g[8:10], g[10:16])
}
