package synth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/md5"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os/exec"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certinv/certinv"
)

var testNow = time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)

func generate(t *testing.T, f Fleet, workers int) []*certinv.Report {
	t.Helper()
	var reports []*certinv.Report
	if err := f.Generate(context.Background(), workers, func(r *certinv.Report) error {
		reports = append(reports, r)
		return nil
	}); err != nil {
		t.Fatalf("Generate(%+v) = %v", f, err)
	}
	if len(reports) != f.Devices {
		t.Fatalf("Generate(%+v) made %d reports, want %d", f, len(reports), f.Devices)
	}
	return reports
}

// fleet500 is a fleet of 500 devices, made once for the tests that look at
// a fleet's content.
var fleet500 = sync.OnceValues(func() ([]*certinv.Report, error) {
	f := Fleet{Devices: 500, Groups: 12, Seed: 42, Now: testNow}
	var reports []*certinv.Report
	err := f.Generate(context.Background(), 2, func(r *certinv.Report) error {
		reports = append(reports, r)
		return nil
	})
	return reports, err
})

func load500(t *testing.T) []*certinv.Report {
	t.Helper()
	reports, err := fleet500()
	if err != nil {
		t.Fatalf("Generate(500 devices) = %v", err)
	}
	return reports
}

func TestGenerateIsDeterministic(t *testing.T) {
	f := Fleet{Devices: 80, Groups: 8, Seed: 7, Now: testNow}
	one := generate(t, f, 1)
	four := generate(t, f, 4)
	if !reflect.DeepEqual(one, four) {
		for i := range one {
			if !reflect.DeepEqual(one[i], four[i]) {
				t.Fatalf("device %d differs between 1 and 4 workers:\n%+v\n%+v", i, one[i].Device, four[i].Device)
			}
		}
		t.Fatal("reports differ between 1 and 4 workers")
	}

	// Another seed is another fleet; another day moves validity windows.
	other := generate(t, Fleet{Devices: 80, Groups: 8, Seed: 8, Now: testNow}, 2)
	if other[0].Device.ID == one[0].Device.ID {
		t.Errorf("seeds 7 and 8 give device 0 the same id %s", one[0].Device.ID)
	}
	nextDay := generate(t, Fleet{Devices: 1, Seed: 7, Groups: 8, Now: testNow.Add(24 * time.Hour)}, 1)
	if nextDay[0].Device.ID != one[0].Device.ID {
		t.Errorf("device 0's id changed with Now: %s, want %s", nextDay[0].Device.ID, one[0].Device.ID)
	}
	if reflect.DeepEqual(nextDay[0].Certificates, one[0].Certificates) {
		t.Errorf("device 0's certificates did not change with Now")
	}
}

func TestGenerateDevices(t *testing.T) {
	reports := load500(t)
	hexID := regexp.MustCompile(`^[0-9a-f]{40}$`)
	fqdn := regexp.MustCompile(`^[A-Za-z0-9-]+(\.[a-z0-9-]+){2,}$`)
	ids := make(map[string]bool)
	names := make(map[string]bool)
	oses := make(map[string]int)
	for i, r := range reports {
		d := r.Device
		if !hexID.MatchString(d.ID) {
			t.Errorf("device %d: ID %q is not 40 lowercase hex characters", i, d.ID)
		}
		if ids[d.ID] {
			t.Errorf("device %d: ID %s repeats", i, d.ID)
		}
		ids[d.ID] = true
		if !fqdn.MatchString(d.Name) || len(d.Name) > certinv.MaxDeviceNameBytes {
			t.Errorf("device %d: Name %q is not a fully qualified domain name", i, d.Name)
		}
		if names[d.Name] {
			t.Errorf("device %d: Name %s repeats", i, d.Name)
		}
		names[d.Name] = true
		if !d.CollectedAt.Before(testNow) || d.CollectedAt.Before(testNow.Add(-24*time.Hour)) {
			t.Errorf("device %d: CollectedAt %v is not within the day before %v", i, d.CollectedAt, testNow)
		}
		oses[strings.Fields(d.OS)[0]]++
		if got := len(r.Certificates); got != DefaultCertsPerDevice {
			t.Errorf("device %d holds %d certificates, want %d", i, got, DefaultCertsPerDevice)
		}
	}
	for _, family := range []string{"Windows", "Ubuntu", "RHEL", "macOS"} {
		if oses[family] < 10 {
			t.Errorf("%d of 500 devices run %s, want at least 10 (all: %v)", oses[family], family, oses)
		}
	}
	for _, prefix := range []string{"LAPTOP-", "DESKTOP-", "MBP-", "web-", "sql-", "k8s-node-"} {
		found := false
		for n := range names {
			found = found || strings.HasPrefix(n, prefix)
		}
		if !found {
			t.Errorf("no device name starts with %q", prefix)
		}
	}
}

func TestGenerateRecordsAreUniqueAndParse(t *testing.T) {
	for i, r := range load500(t) {
		seen := make(map[string]bool)
		for j, c := range r.Certificates {
			if c.Path == "" || len(c.Path) > certinv.MaxPathBytes {
				t.Errorf("device %d certificate %d: path %q", i, j, c.Path)
			}
			if len(c.DER) > certinv.MaxCertificateBytes {
				t.Errorf("device %d certificate %d: %d bytes of DER", i, j, len(c.DER))
			}
			key := fmt.Sprintf("%s\x00%x", c.Path, sha256.Sum256(c.DER))
			if seen[key] {
				t.Errorf("device %d: certificate %d repeats (%s, %x)", i, j, c.Path, sha256.Sum256(c.DER))
			}
			seen[key] = true
			if _, err := x509.ParseCertificate(c.DER); err != nil {
				t.Errorf("device %d: certificate %d at %s does not parse: %v", i, j, c.Path, err)
			}
		}
	}
}

func TestGenerateThumbprintPaths(t *testing.T) {
	stores := map[string]bool{"Root": true, "AuthRoot": true, "CA": true, "My": true, "Remote Desktop": true, "WebHosting": true, "TrustedPublisher": true, "TrustedPeople": true}
	windowsPaths := 0
	for i, r := range load500(t) {
		for _, c := range r.Certificates {
			rest, ok := strings.CutPrefix(c.Path, `LocalMachine\`)
			if !ok {
				if !strings.HasPrefix(c.Path, "/") {
					t.Errorf("device %d: path %q is neither a Windows store nor a file", i, c.Path)
				}
				continue
			}
			windowsPaths++
			store, thumb, ok := strings.Cut(rest, `\`)
			sum := sha1.Sum(c.DER)
			if want := strings.ToUpper(hex.EncodeToString(sum[:])); !ok || thumb != want {
				t.Errorf("device %d: path %q, want thumbprint %s", i, c.Path, want)
			}
			if !stores[store] {
				t.Errorf("device %d: path %q names store %q", i, c.Path, store)
			}
		}
	}
	if windowsPaths == 0 {
		t.Error("no Windows store path in 500 devices")
	}
}

// TestGenerateVariety counts, across 500 devices, each kind of certificate
// a real fleet shows, and checks every leaf's signature against its issuer.
func TestGenerateVariety(t *testing.T) {
	reports := load500(t)
	type holder struct {
		cert    *x509.Certificate
		devices map[string]bool
	}
	certs := make(map[[32]byte]*holder)
	counts := make(map[string]int)
	paths := make(map[string]int)
	roots, err := loadRoots()
	if err != nil {
		t.Fatal(err)
	}
	public := make(map[[32]byte]bool)
	for _, r := range roots {
		public[r.sha256] = true
	}
	publicRecords, records := 0, 0
	for _, r := range reports {
		for _, c := range r.Certificates {
			records++
			sum := sha256.Sum256(c.DER)
			if public[sum] {
				publicRecords++
			}
			for _, p := range []string{`LocalMachine\Root\`, `LocalMachine\CA\`, `LocalMachine\My\`, `LocalMachine\Remote Desktop\`, `LocalMachine\TrustedPublisher\`,
				"/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/", "/etc/nginx/ssl/site.pem", "/opt/app/conf/keystore.jks:",
				"/Library/Keychains/System.keychain", "/System/Library/Keychains/SystemRootCertificates.keychain", "/var/lib/kubelet/pki/"} {
				if strings.HasPrefix(c.Path, p) {
					paths[p]++
				}
			}
			h := certs[sum]
			if h == nil {
				x, err := x509.ParseCertificate(c.DER)
				if err != nil {
					t.Fatalf("certificate at %s does not parse: %v", c.Path, err)
				}
				h = &holder{cert: x, devices: make(map[string]bool)}
				certs[sum] = h
			}
			h.devices[r.Device.ID] = true
		}
	}
	if publicRecords*2 < records {
		t.Errorf("%d of %d records are public roots, want most", publicRecords, records)
	}

	// The organization's authorities, by subject, to check leaves against.
	authorities := make(map[string][]*x509.Certificate)
	for sum, h := range certs {
		if h.cert.IsCA && !public[sum] {
			authorities[string(h.cert.RawSubject)] = append(authorities[string(h.cert.RawSubject)], h.cert)
		}
	}
	for _, h := range certs {
		c := h.cert
		if c.IsCA {
			continue
		}
		counts["leaf"]++
		switch n := len(h.devices); {
		case n == 1:
			counts["leaf on one device"]++
		case n >= 10:
			counts["leaf on 10 or more devices"]++
		}
		switch left := c.NotAfter.Sub(testNow); {
		case c.NotBefore.After(testNow):
			counts["not yet valid"]++
		case left < 0:
			counts["expired"]++
		case left <= 30*24*time.Hour:
			counts["expiring within 30 days"]++
		case left <= 60*24*time.Hour:
			counts["expiring within 31-60 days"]++
		case left <= 90*24*time.Hour:
			counts["expiring within 61-90 days"]++
		default:
			counts["valid beyond 90 days"]++
		}
		counts["signature "+c.SignatureAlgorithm.String()]++
		switch k := c.PublicKey.(type) {
		case *rsa.PublicKey:
			counts[fmt.Sprintf("key RSA %d", k.N.BitLen())]++
		case *ecdsa.PublicKey:
			counts["key ECDSA "+k.Curve.Params().Name]++
		case ed25519.PublicKey:
			counts["key Ed25519"]++
		}
		for _, u := range c.ExtKeyUsage {
			counts[fmt.Sprintf("eku %d", u)]++
		}
		if len(c.UnknownExtKeyUsage) > 0 {
			counts["eku unnamed"]++
		}
		if len(c.ExtKeyUsage)+len(c.UnknownExtKeyUsage) == 0 {
			counts["no eku"]++
		}
		issuers := authorities[string(c.RawIssuer)]
		if string(c.RawIssuer) == string(c.RawSubject) {
			counts["self-signed leaf"]++
			issuers = []*x509.Certificate{c}
		}
		if len(issuers) == 0 {
			t.Errorf("leaf %q: no issuer %q among the fleet's authorities", c.Subject, c.Issuer)
			continue
		}
		var errs []error
		for _, issuer := range issuers {
			err := checkSignature(c, issuer.PublicKey)
			if err == nil {
				errs = nil
				break
			}
			errs = append(errs, err)
		}
		if errs != nil {
			t.Errorf("leaf %q (%v): signature does not verify with its issuer: %v", c.Subject, c.SignatureAlgorithm, errors.Join(errs...))
		}
	}
	t.Logf("%d distinct certificates, %d records; leaves: %v; paths: %v", len(certs), records, counts, paths)

	for _, want := range []string{
		"leaf on one device", "leaf on 10 or more devices", "self-signed leaf",
		"expired", "expiring within 30 days", "expiring within 31-60 days", "expiring within 61-90 days", "not yet valid", "valid beyond 90 days",
		"signature SHA1-RSA", "signature MD5-RSA", "signature SHA256-RSA", "signature SHA384-RSA", "signature SHA512-RSA", "signature SHA256-RSAPSS",
		"signature ECDSA-SHA256", "signature ECDSA-SHA384", "signature ECDSA-SHA1", "signature Ed25519",
		"key RSA 1024", "key RSA 2048", "key RSA 3072", "key RSA 4096", "key ECDSA P-256", "key ECDSA P-384", "key Ed25519",
		fmt.Sprintf("eku %d", x509.ExtKeyUsageServerAuth), fmt.Sprintf("eku %d", x509.ExtKeyUsageClientAuth),
		fmt.Sprintf("eku %d", x509.ExtKeyUsageCodeSigning), fmt.Sprintf("eku %d", x509.ExtKeyUsageEmailProtection),
		fmt.Sprintf("eku %d", x509.ExtKeyUsageTimeStamping), "eku unnamed", "no eku",
	} {
		if counts[want] == 0 {
			t.Errorf("no leaf of kind %q in 500 devices", want)
		}
	}
	for p, n := range paths {
		if n == 0 {
			t.Errorf("no certificate at %s in 500 devices", p)
		}
	}
	if len(paths) < 12 {
		t.Errorf("certificates at %d of the 12 expected path kinds: %v", len(paths), paths)
	}
}

// checkSignature verifies c's signature with pub. crypto/x509 refuses MD5
// and SHA-1, so those are checked here.
func checkSignature(c *x509.Certificate, pub crypto.PublicKey) error {
	var h crypto.Hash
	switch c.SignatureAlgorithm {
	case x509.MD5WithRSA:
		sum := md5.Sum(c.RawTBSCertificate)
		return rsa.VerifyPKCS1v15(pub.(*rsa.PublicKey), crypto.MD5, sum[:], c.Signature)
	case x509.SHA1WithRSA, x509.ECDSAWithSHA1:
		h = crypto.SHA1
	default:
		issuer := &x509.Certificate{PublicKey: pub}
		return issuer.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature)
	}
	sum := sha1.Sum(c.RawTBSCertificate)
	switch pub := pub.(type) {
	case *rsa.PublicKey:
		return rsa.VerifyPKCS1v15(pub, h, sum[:], c.Signature)
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(pub, sum[:], c.Signature) {
			return errors.New("ecdsa signature does not verify")
		}
		return nil
	}
	return fmt.Errorf("unexpected key %T", pub)
}

func TestGenerateWeakSignaturesWithOpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatalf("this test needs openssl: %v", err)
	}
	want := map[x509.SignatureAlgorithm]string{
		x509.MD5WithRSA:       "md5WithRSAEncryption",
		x509.SHA1WithRSA:      "sha1WithRSAEncryption",
		x509.ECDSAWithSHA1:    "ecdsa-with-SHA1",
		x509.SHA256WithRSAPSS: "rsassaPss",
	}
	found := make(map[x509.SignatureAlgorithm][]byte)
	for _, r := range load500(t) {
		for _, c := range r.Certificates {
			x, err := x509.ParseCertificate(c.DER)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := want[x.SignatureAlgorithm]; ok && found[x.SignatureAlgorithm] == nil {
				found[x.SignatureAlgorithm] = c.DER
			}
		}
	}
	for alg, name := range want {
		t.Run(alg.String(), func(t *testing.T) {
			der := found[alg]
			if der == nil {
				t.Fatalf("no %v certificate in 500 devices", alg)
			}
			cmd := exec.Command(openssl, "x509", "-noout", "-text")
			cmd.Stdin = strings.NewReader(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("openssl x509 -text: %v\n%s", err, out)
			}
			if !strings.Contains(string(out), "Signature Algorithm: "+name) {
				t.Errorf("openssl x509 -text shows no %q:\n%s", "Signature Algorithm: "+name, out)
			}
		})
	}
}

func TestGenerateGroups(t *testing.T) {
	workstation := regexp.MustCompile(`^(LAPTOP|DESKTOP|MBP)-`)
	tests := []struct {
		name    string
		devices int
		groups  int
		want    []string // groups that must hold devices, besides the count
	}{
		{"no groups", 400, 0, nil},
		{"three", 400, 3, []string{"Servers-EU", "Workstations", "Servers-US"}},
		{"past the catalog", 2000, 30, []string{"Servers-EU", "Finance Laptops", "Mac Fleet", "Branch Office 001", "Branch Office 006"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reports := generate(t, Fleet{Devices: tt.devices, Groups: tt.groups, Seed: 3, Now: testNow}, 2)
			got := make(map[string]int)
			for _, r := range reports {
				got[r.GroupName]++
				if tt.groups == 3 && r.GroupName != "" && workstation.MatchString(r.Device.Name) && r.GroupName != "Workstations" {
					t.Errorf("workstation %s is in group %q, want Workstations", r.Device.Name, r.GroupName)
				}
			}
			unassigned := got[""]
			delete(got, "")
			switch {
			case tt.groups == 0:
				if len(got) > 0 {
					t.Errorf("Groups 0 gives groups %v, want none", got)
				}
				return
			case unassigned < tt.devices/100 || unassigned > tt.devices/10:
				t.Errorf("%d of %d devices have no group, want about 5%%", unassigned, tt.devices)
			}
			if len(got) != tt.groups {
				t.Errorf("%d groups hold devices, want %d: %v", len(got), tt.groups, got)
			}
			for _, name := range tt.want {
				if got[name] == 0 {
					t.Errorf("group %q holds no device: %v", name, got)
				}
			}
			for name := range got {
				if name == "" || len(name) > certinv.MaxGroupNameBytes || strings.TrimSpace(name) != name {
					t.Errorf("group name %q", name)
				}
			}
		})
	}
}

func TestGenerateCertsPerDevice(t *testing.T) {
	for _, m := range []int{1, 7, 60, 250, 700} {
		t.Run(fmt.Sprint(m), func(t *testing.T) {
			for i, r := range generate(t, Fleet{Devices: 6, CertsPerDevice: m, Seed: 5, Now: testNow}, 2) {
				if len(r.Certificates) != m {
					t.Errorf("device %d holds %d certificates, want %d", i, len(r.Certificates), m)
				}
				seen := make(map[string]bool)
				for _, c := range r.Certificates {
					key := c.Path + "\x00" + string(c.DER)
					if seen[key] {
						t.Errorf("device %d: certificate at %s repeats", i, c.Path)
					}
					seen[key] = true
				}
			}
		})
	}
}

func TestGenerateRejectsInvalidFleets(t *testing.T) {
	tests := []struct {
		name string
		f    Fleet
	}{
		{"negative devices", Fleet{Devices: -1, Now: testNow}},
		{"negative certificates", Fleet{Devices: 1, CertsPerDevice: -5, Now: testNow}},
		{"too many certificates", Fleet{Devices: 1, CertsPerDevice: certinv.MaxCertificatesPerReport + 1, Now: testNow}},
		{"negative groups", Fleet{Devices: 1, Groups: -1, Now: testNow}},
		{"no reference time", Fleet{Devices: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			called := false
			err := tt.f.Generate(context.Background(), 1, func(*certinv.Report) error { called = true; return nil })
			if certinv.KindOf(err) != certinv.EInvalid {
				t.Errorf("Generate(%+v) = %v, want an error of kind %s", tt.f, err, certinv.EInvalid)
			}
			if called {
				t.Errorf("Generate(%+v) called fn", tt.f)
			}
		})
	}
}

func TestGenerateStops(t *testing.T) {
	f := Fleet{Devices: 200, Seed: 1, Now: testNow}
	t.Run("at fn's error", func(t *testing.T) {
		stop := errors.New("stop")
		calls := 0
		err := f.Generate(context.Background(), 3, func(*certinv.Report) error {
			calls++
			if calls == 5 {
				return stop
			}
			return nil
		})
		if !errors.Is(err, stop) || calls != 5 {
			t.Errorf("Generate = %v after %d calls, want %v after 5", err, calls, stop)
		}
	})
	t.Run("when ctx is done", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		calls := 0
		err := f.Generate(ctx, 3, func(*certinv.Report) error {
			calls++
			if calls == 5 {
				cancel()
			}
			return nil
		})
		if !errors.Is(err, context.Canceled) || calls != 5 {
			t.Errorf("Generate = %v after %d calls, want %v after 5", err, calls, context.Canceled)
		}
	})
	t.Run("no devices", func(t *testing.T) {
		empty := Fleet{Devices: 0, Now: testNow}
		if err := empty.Generate(context.Background(), 2, func(*certinv.Report) error { t.Error("fn called"); return nil }); err != nil {
			t.Errorf("Generate(0 devices) = %v", err)
		}
	})
}

func TestEmbeddedBundle(t *testing.T) {
	roots, err := loadRoots()
	if err != nil {
		t.Fatalf("parse embedded bundle: %v", err)
	}
	if len(roots) < 100 {
		t.Errorf("embedded bundle holds %d roots, want a real bundle's (more than 100)", len(roots))
	}
	for _, r := range roots {
		c, err := x509.ParseCertificate(r.der)
		if err != nil {
			t.Fatal(err)
		}
		if !c.IsCA {
			t.Errorf("bundle certificate %q is not a CA", c.Subject)
		}
		if !strings.HasSuffix(r.alias, " [jdk]") || strings.ContainsAny(strings.TrimSuffix(r.alias, " [jdk]"), " :") {
			t.Errorf("alias %q of %q", r.alias, c.Subject)
		}
	}
}

func TestDeterministicKeys(t *testing.T) {
	a, err := deterministicRSAKey(1024, 7)
	if err != nil {
		t.Fatal(err)
	}
	b, err := deterministicRSAKey(1024, 7)
	if err != nil {
		t.Fatal(err)
	}
	if !a.Equal(b) || a.N.BitLen() != 1024 {
		t.Errorf("deterministicRSAKey(1024, 7) twice: equal %v, %d bits", a.Equal(b), a.N.BitLen())
	}
	if c, err := deterministicRSAKey(1024, 8); err != nil || c.Equal(a) {
		t.Errorf("deterministicRSAKey(1024, 8) = same key as index 7 (%v)", err)
	}
	for _, curve := range []elliptic.Curve{elliptic.P256(), elliptic.P384()} {
		x, err := deterministicECDSAKey(curve, 3)
		if err != nil {
			t.Fatal(err)
		}
		y, err := deterministicECDSAKey(curve, 3)
		if err != nil || !x.Equal(y) {
			t.Errorf("deterministicECDSAKey(%s, 3) twice differ (%v)", curve.Params().Name, err)
		}
	}
}
