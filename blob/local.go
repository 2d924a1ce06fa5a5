package blob

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/url"
	"strings"
	"time"

	"github.com/certinv/certinv"
)

// The fixed parameters of a signed URL, as in an Azure service SAS for one
// blob with read permission.
const (
	sasVersion    = "2020-02-10" // sv
	sasResource   = "b"          // sr: a blob
	sasPermission = "r"          // sp: read
)

// sasParams are the query parameters of a signed URL, in the order Azure
// writes them.
var sasParams = [...]string{"sv", "st", "se", "sr", "sp", "sig"}

// LocalSigner signs download URLs for objects that certinv serves itself
// from a Dir. Its URLs have the query of an Azure service SAS (sv, st, se,
// sr=b, sp=r, sig), so a client cannot tell them apart; sig is an
// HMAC-SHA256, under Key, of the key and every other parameter.
type LocalSigner struct {
	// BaseURL is the public URL under which the server serves the bucket,
	// without a trailing slash: "https://certinv.example.com/files".
	BaseURL string
	// Key is the HMAC key: at least 32 random bytes, the same on every
	// replica that serves the files.
	Key []byte
}

var _ URLSigner = (*LocalSigner)(nil)

// minSignerKey is the shortest HMAC key LocalSigner accepts: the size of the
// hash, below which the key is weaker than the MAC.
const minSignerKey = 32

// SignedURL returns BaseURL + "/" + key (each segment path-escaped) with a
// SAS query valid from start until expiry, both taken to the second, UTC.
func (s *LocalSigner) SignedURL(ctx context.Context, key string, start, expiry time.Time) (string, error) {
	if len(s.Key) < minSignerKey {
		return "", errors.New("local signer: the key must be at least 32 bytes")
	}
	if err := ValidateKey(key); err != nil {
		return "", err
	}
	st := start.UTC().Format(time.RFC3339)
	se := expiry.UTC().Format(time.RFC3339)
	if !expiry.Truncate(time.Second).After(start.Truncate(time.Second)) {
		return "", errors.New("local signer: expiry must be after start")
	}
	sig := s.sign(key, st, se, sasPermission, sasResource, sasVersion)

	var b strings.Builder
	b.WriteString(strings.TrimSuffix(s.BaseURL, "/"))
	for seg := range strings.SplitSeq(key, "/") {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(seg))
	}
	b.WriteString("?sv=")
	b.WriteString(url.QueryEscape(sasVersion))
	b.WriteString("&st=")
	b.WriteString(url.QueryEscape(st))
	b.WriteString("&se=")
	b.WriteString(url.QueryEscape(se))
	b.WriteString("&sr=")
	b.WriteString(sasResource)
	b.WriteString("&sp=")
	b.WriteString(sasPermission)
	b.WriteString("&sig=")
	b.WriteString(url.QueryEscape(sig))
	return b.String(), nil
}

// sign returns the base64 HMAC-SHA256 of the canonical string of a URL: one
// line per field, led by a label that keeps these MACs apart from any other
// use of the key.
func (s *LocalSigner) sign(key, st, se, sp, sr, sv string) string {
	m := hmac.New(sha256.New, s.Key)
	for _, f := range [...]string{"certinv-local-sas-v1", "/" + key, st, se, sp, sr, sv} {
		m.Write([]byte(f))
		m.Write([]byte{'\n'})
	}
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Verify checks a request for the object at key (the request path below
// BaseURL, unescaped) with query q at time now. It refuses, with an
// *certinv.Error of kind EForbidden, a missing, repeated or unknown
// parameter, a signature that does not match (a changed key, start, expiry
// or permission), and a URL that is not yet or no longer valid. The
// signature is compared in constant time.
func (s *LocalSigner) Verify(key string, q url.Values, now time.Time) error {
	if len(s.Key) < minSignerKey {
		return errors.New("local signer: the key must be at least 32 bytes")
	}
	for name, vs := range q {
		if !isSASParam(name) {
			return forbidden("the download URL carries an unknown parameter %q", name)
		}
		if len(vs) != 1 {
			return forbidden("the download URL repeats the parameter %q", name)
		}
	}
	for _, name := range sasParams {
		if len(q[name]) != 1 || q[name][0] == "" {
			return forbidden("the download URL lacks the parameter %q", name)
		}
	}
	sig, err := base64.StdEncoding.Strict().DecodeString(q.Get("sig"))
	if err != nil {
		return forbidden("the download URL's signature is malformed")
	}
	if ValidateKey(key) != nil {
		return forbidden("the download URL's path does not name a file")
	}
	st, se := q.Get("st"), q.Get("se")
	want, _ := base64.StdEncoding.DecodeString(s.sign(key, st, se, q.Get("sp"), q.Get("sr"), q.Get("sv")))
	if !hmac.Equal(sig, want) {
		return forbidden("the download URL's signature does not match its path and parameters")
	}
	// The parameters are the ones this signer wrote; parse them only now.
	start, err1 := time.Parse(time.RFC3339, st)
	expiry, err2 := time.Parse(time.RFC3339, se)
	if err1 != nil || err2 != nil || q.Get("sp") != sasPermission || q.Get("sr") != sasResource || q.Get("sv") != sasVersion {
		return forbidden("the download URL's parameters are not valid")
	}
	if now.Before(start) {
		return forbidden("the download URL is not valid before %s", start.UTC().Format(time.RFC3339))
	}
	if !now.Before(expiry) {
		return forbidden("the download URL expired at %s", expiry.UTC().Format(time.RFC3339))
	}
	return nil
}

func isSASParam(name string) bool {
	for _, p := range sasParams {
		if name == p {
			return true
		}
	}
	return false
}

func forbidden(format string, args ...any) error {
	e := certinv.Errorf(certinv.EForbidden, format, args...)
	e.Message += "; call GET /api/machines/CertificateAssessmentExport for new download URLs"
	return e
}
