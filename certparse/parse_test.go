package certparse

import (
	"crypto"
	"reflect"
	"testing"

	"github.com/certinv/certinv"
)

var (
	algSHA256RSA = seq(oid("1.2.840.113549.1.1.11"), tlv(tagNull))
	algMD2RSA    = seq(oid("1.2.840.113549.1.1.2"), tlv(tagNull))
	nameRoot     = rdnName(oid("2.5.4.6"), tlv(tagPrintableString, []byte("US")), oid("2.5.4.3"), utf8Str("Built Root"))
)

// TestParseBuilt covers shapes that openssl does not make, with expected
// values written out by hand.
func TestParseBuilt(t *testing.T) {
	key := testRSAKey(t)
	spki := rsaSPKI(t, key)
	base := func() certSpec {
		return certSpec{sigAlg: algSHA256RSA, issuer: nameRoot, subject: nameRoot, spki: spki, sign: signPKCS1(t, key, crypto.SHA256)}
	}
	tests := []struct {
		name  string
		spec  func() certSpec
		check func(t *testing.T, c *certinv.Certificate)
	}{
		{"md2RSA self-signed", func() certSpec {
			s := base()
			s.sigAlg, s.sign = algMD2RSA, signPKCS1(t, key, hashMD2)
			return s
		}, func(t *testing.T, c *certinv.Certificate) {
			want(t, "SignatureAlgorithm", c.SignatureAlgorithm, "md2RSA")
			want(t, "SelfSigned", c.SelfSigned, true)
			want(t, "IssuedTo", c.IssuedTo, "CN=Built Root, C=US")
		}},
		{"md2RSA signature over other bytes", func() certSpec {
			s := base()
			s.sigAlg = algMD2RSA
			s.sign = func(tbs []byte) []byte { return signPKCS1(t, key, hashMD2)(append(tbs, 0)) }
			return s
		}, func(t *testing.T, c *certinv.Certificate) {
			want(t, "SelfSigned", c.SelfSigned, false)
		}},
		{"inner and outer algorithms differ", func() certSpec {
			s := base()
			s.outerAlg = seq(oid("1.2.840.113549.1.1.11")) // same OID, parameters absent
			return s
		}, func(t *testing.T, c *certinv.Certificate) {
			want(t, "SignatureAlgorithm", c.SignatureAlgorithm, "sha256RSA")
			want(t, "SelfSigned", c.SelfSigned, false)
		}},
		{"unknown signature algorithm", func() certSpec {
			s := base()
			s.sigAlg = seq(oid("1.2.3.4.5.6.7"))
			return s
		}, func(t *testing.T, c *certinv.Certificate) {
			want(t, "SignatureAlgorithm", c.SignatureAlgorithm, "1.2.3.4.5.6.7")
			want(t, "SelfSigned", c.SelfSigned, false)
		}},
		{"attribute value that is not a string", func() certSpec {
			s := base()
			s.subject = rdnName(oid("1.2.3.4"), tlv(tagOctetString, []byte{1, 2}), oid("2.5.4.3"), utf8Str("x"))
			return s
		}, func(t *testing.T, c *certinv.Certificate) {
			want(t, "IssuedTo", c.IssuedTo, "CN=x, OID.1.2.3.4=#04020102")
			want(t, "Subject", c.Subject, certinv.Name{CommonName: "x"})
		}},
		{"old basic constraints, cA", func() certSpec {
			s := base()
			s.extensions = [][]byte{ext("2.5.29.10", seq(tlv(tagBitString, []byte{0x06, 0x80})))}
			return s
		}, func(t *testing.T, c *certinv.Certificate) {
			want(t, "SubjectType", c.SubjectType, certinv.SubjectCA)
		}},
		{"old basic constraints, end entity", func() certSpec {
			s := base()
			s.extensions = [][]byte{ext("2.5.29.10", seq(tlv(tagBitString, []byte{0x06, 0x40})))}
			return s
		}, func(t *testing.T, c *certinv.Certificate) {
			want(t, "SubjectType", c.SubjectType, certinv.SubjectEndEntity)
		}},
		{"current basic constraints win over old", func() certSpec {
			s := base()
			s.extensions = [][]byte{
				ext("2.5.29.10", seq(tlv(tagBitString, []byte{0x06, 0x80}))),
				ext("2.5.29.19", seq()),
			}
			return s
		}, func(t *testing.T, c *certinv.Certificate) {
			want(t, "SubjectType", c.SubjectType, certinv.SubjectEndEntity)
		}},
		{"empty key usage and extended key usage", func() certSpec {
			s := base()
			s.extensions = [][]byte{ext("2.5.29.15", tlv(tagBitString, []byte{0})), ext("2.5.29.37", seq())}
			return s
		}, func(t *testing.T, c *certinv.Certificate) {
			want(t, "KeyUsage", c.KeyUsage, []string{})
			want(t, "ExtendedKeyUsage", c.ExtendedKeyUsage, []string{})
		}},
		{"first of duplicate extensions counts", func() certSpec {
			s := base()
			s.extensions = [][]byte{
				ext("2.5.29.15", tlv(tagBitString, []byte{7, 0x80})),
				ext("2.5.29.15", tlv(tagBitString, []byte{1, 0x06})),
				ext("2.5.29.37", seq(oid("1.3.6.1.5.5.7.3.2"), oid("1.3.6.1.4.1.311.10.3.13"), oid("2.25.1"))),
			}
			return s
		}, func(t *testing.T, c *certinv.Certificate) {
			want(t, "KeyUsage", c.KeyUsage, []string{"Digital Signature"})
			want(t, "ExtendedKeyUsage", c.ExtendedKeyUsage, []string{"Client Authentication", "Lifetime Signing", "2.25.1"})
		}},
		{"UTCTime without seconds and GeneralizedTime", func() certSpec {
			s := base()
			s.notBefore = tlv(tagUTCTime, []byte("9906301200Z"))
			s.notAfter = tlv(tagGeneralizedTime, []byte("20991231235959Z"))
			return s
		}, func(t *testing.T, c *certinv.Certificate) {
			want(t, "NotBefore", c.NotBefore.Format(certinv.TimeFormat), "1999-06-30T12:00:00Z")
			want(t, "NotAfter", c.NotAfter.Format(certinv.TimeFormat), "2099-12-31T23:59:59Z")
		}},
		{"non-minimal serial kept as encoded", func() certSpec {
			s := base()
			s.serial = []byte{0x00, 0x00, 0x01}
			return s
		}, func(t *testing.T, c *certinv.Certificate) {
			want(t, "SerialNumber", c.SerialNumber, "000001")
		}},
		{"multi-valued names joined", func() certSpec {
			s := base()
			s.subject = seq(
				tlv(tagSet, seq(oid("2.5.4.11"), utf8Str("A")), seq(oid("2.5.4.11"), utf8Str("B"))),
				tlv(tagSet, seq(oid("1.2.840.113549.1.9.1"), tlv(tagIA5String, []byte("a@example.com")))),
				tlv(tagSet, seq(oid("1.2.840.113549.1.9.1"), tlv(tagIA5String, []byte("b@example.com")))),
			)
			return s
		}, func(t *testing.T, c *certinv.Certificate) {
			want(t, "IssuedTo", c.IssuedTo, "E=b@example.com, E=a@example.com, OU=A + OU=B")
			want(t, "Subject", c.Subject, certinv.Name{OrganizationalUnit: "A, B", Email: "a@example.com, b@example.com"})
			want(t, "SelfSigned", c.SelfSigned, false) // issuer differs
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			der := tt.spec().build()
			c, err := Parse(der)
			if err != nil {
				t.Fatalf("Parse(%s) error: %v", tt.name, err)
			}
			tt.check(t, c)
		})
	}
}

func want(t *testing.T, field string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Parse(...).%s = %#v, want %#v", field, got, want)
	}
}

// TestParseRejectsMalformedExtensions checks that a certificate whose
// known extensions cannot be read is refused, with a reason.
func TestParseRejectsMalformedExtensions(t *testing.T) {
	key := testRSAKey(t)
	spki := rsaSPKI(t, key)
	tests := []struct {
		name string
		ext  []byte
		want string
	}{
		{"key usage not a bit string", ext("2.5.29.15", tlv(tagOctetString, []byte{1})), "not a DER certificate: malformed key usage extension"},
		{"key usage unused bits over 7", ext("2.5.29.15", tlv(tagBitString, []byte{8, 0})), "not a DER certificate: malformed key usage extension"},
		{"extended key usage with a bad OID", ext("2.5.29.37", seq(tlv(tagOID, []byte{0x80, 0x01}))), "not a DER certificate: malformed extended key usage extension"},
		{"basic constraints not a sequence", ext("2.5.29.19", tlv(tagBoolean, []byte{0xff})), "not a DER certificate: malformed basic constraints extension"},
		{"extension without a value", seq(oid("2.5.29.15")), "not a DER certificate: malformed extensions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			der := certSpec{sigAlg: algSHA256RSA, issuer: nameRoot, subject: nameRoot, spki: spki, extensions: [][]byte{tt.ext}}.build()
			_, err := Parse(der)
			if certinv.KindOf(err) != certinv.EInvalid || certinv.MessageOf(err) != tt.want {
				t.Errorf("Parse(%s) error = %v, want %s: %q", tt.name, err, certinv.EInvalid, tt.want)
			}
		})
	}
}

// TestSelfSignedTampered flips the last octet of each self-signed test
// certificate's signature: every verifier must then say no, while the
// other fields stay as they were.
func TestSelfSignedTampered(t *testing.T) {
	n := 0
	for _, set := range certSets {
		for _, c := range set.load(t) {
			orig, err := Parse(c.der)
			if err != nil || !orig.SelfSigned {
				continue
			}
			n++
			der := append([]byte(nil), c.der...)
			der[len(der)-1] ^= 0x01
			got, err := Parse(der)
			if err != nil {
				t.Errorf("Parse(%s with its signature changed) error: %v", c.label, err)
				continue
			}
			if got.SelfSigned {
				t.Errorf("Parse(%s with its signature changed).SelfSigned = true, want false (%s)", c.label, got.SignatureAlgorithm)
			}
			if got.IssuedTo != orig.IssuedTo || got.SerialNumber != orig.SerialNumber || got.KeySize != orig.KeySize {
				t.Errorf("Parse(%s with its signature changed) changed other fields", c.label)
			}
		}
	}
	if n < 100 {
		t.Errorf("only %d self-signed test certificates, want at least 100", n)
	}
}
