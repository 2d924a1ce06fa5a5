package azure

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/certinv/certinv/blob"
	"github.com/certinv/certinv/blob/blobtest"
)

// envAzure names the variable that holds the connection string of the
// storage account the tests run against; scripts/services.sh starts Azurite
// and sets it.
const envAzure = "CERTINV_TEST_AZURE"

// testBucket returns a bucket on the test account, or fails the test: a
// bucket test that cannot reach storage must not pass unseen.
func testBucket(t testing.TB) *Bucket {
	t.Helper()
	cs := os.Getenv(envAzure)
	if cs == "" {
		t.Fatalf("%s is not set: the Azure bucket is tested against real storage (Azurite). "+
			"Run scripts/services.sh (as root) and then . \"$(scripts/services.sh env)\", or set %s to a connection string with an account key",
			envAzure, envAzure)
	}
	b, err := NewBucket(context.Background(), Config{ConnectionString: cs, BlockSize: 1 << 20})
	if err != nil {
		t.Fatalf("NewBucket(%s): %v", envAzure, err)
	}
	return b
}

func TestBucket(t *testing.T) {
	b := testBucket(t)
	blobtest.Run(t, func(t *testing.T) blob.Bucket { return b })
}

// newContainer returns a fresh container name, deleted when the test ends.
func newContainer(t *testing.T, b *Bucket) string {
	t.Helper()
	var r [6]byte
	rand.Read(r[:])
	c := "azuretest-" + hex.EncodeToString(r[:])
	t.Cleanup(func() { b.DeleteContainer(context.Background(), c) })
	return c
}

func get(t *testing.T, u string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read: %v", u, err)
	}
	return resp.StatusCode, body
}

// withQuery returns u with its query parameter name set to value.
func withQuery(t *testing.T, u, name, value string) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	q := p.Query()
	q.Set(name, value)
	p.RawQuery = q.Encode()
	return p.String()
}

func TestSignedURL(t *testing.T) {
	ctx := context.Background()
	b := testBucket(t)
	c := newContainer(t, b)
	key := c + "/2026-12-03/1500/CertificateAssessmentExport/json/OrgId=x/_RbacGroupId=0/part-00000-x.c000.json.gz"
	other := c + "/other"
	data := []byte("the part file's bytes")
	for _, k := range []string{key, other} {
		if err := b.Put(ctx, k, bytes.NewReader(data)); err != nil {
			t.Fatalf("Put(%q): %v", k, err)
		}
	}
	now := time.Now()
	start, expiry := now.Add(-5*time.Minute), now.Add(3*time.Hour)
	signed, err := b.SignedURL(ctx, key, start, expiry)
	if err != nil {
		t.Fatalf("SignedURL: %v", err)
	}

	// The URL is a service SAS in the vendor's shape.
	u, err := url.Parse(signed)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	for name, want := range map[string]string{
		"sp": "r",
		"sr": "b",
		"st": start.UTC().Format(time.RFC3339),
		"se": expiry.UTC().Format(time.RFC3339),
	} {
		if got := q.Get(name); got != want {
			t.Errorf("SignedURL(...) %s = %q, want %q", name, got, want)
		}
	}
	for _, name := range []string{"sv", "sig"} {
		if q.Get(name) == "" {
			t.Errorf("SignedURL(...) has no %s: %s", name, signed)
		}
	}
	if !strings.HasSuffix(u.Path, "/"+key) {
		t.Errorf("SignedURL(...) path = %q, want it to end in /%s with its slashes", u.Path, key)
	}

	// A plain GET, with no credential, downloads the blob.
	if status, body := get(t, signed); status != http.StatusOK || !bytes.Equal(body, data) {
		t.Fatalf("GET of the signed URL = %d %q, want 200 and the blob", status, body)
	}

	// Storage refuses every change of the URL.
	otherSigned, err := b.SignedURL(ctx, other, start, expiry)
	if err != nil {
		t.Fatal(err)
	}
	sig := q.Get("sig")
	flipped := []byte(sig)
	if flipped[0] == 'A' {
		flipped[0] = 'B'
	} else {
		flipped[0] = 'A'
	}
	tests := []struct {
		name string
		url  string
	}{
		{"later expiry", withQuery(t, signed, "se", expiry.Add(time.Hour).UTC().Format(time.RFC3339))},
		{"earlier start", withQuery(t, signed, "st", start.Add(-time.Hour).UTC().Format(time.RFC3339))},
		{"write permission", withQuery(t, signed, "sp", "rw")},
		{"changed signature", withQuery(t, signed, "sig", string(flipped))},
		{"another blob's path", strings.Replace(signed, u.Path, strings.Replace(u.Path, key, other, 1), 1)},
		{"another blob's signature", withQuery(t, signed, "sig", mustQuery(t, otherSigned, "sig"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.url == signed {
				t.Fatalf("the tampered URL equals the signed one")
			}
			if status, _ := get(t, tt.url); status != http.StatusForbidden {
				t.Errorf("GET of a signed URL with %s = %d, want %d", tt.name, status, http.StatusForbidden)
			}
		})
	}

	// An expired URL, and one not valid yet, are refused.
	for _, w := range []struct {
		name          string
		start, expiry time.Time
	}{
		{"expired", now.Add(-3 * time.Hour), now.Add(-time.Hour)},
		{"not yet valid", now.Add(time.Hour), now.Add(3 * time.Hour)},
	} {
		s, err := b.SignedURL(ctx, key, w.start, w.expiry)
		if err != nil {
			t.Fatal(err)
		}
		if status, _ := get(t, s); status != http.StatusForbidden {
			t.Errorf("GET of an %s signed URL = %d, want %d", w.name, status, http.StatusForbidden)
		}
	}

	if _, err := b.SignedURL(ctx, key, expiry, start); err == nil {
		t.Errorf("SignedURL with expiry before start = nil error, want one")
	}
	if _, err := b.SignedURL(ctx, c+"/../x", start, expiry); err == nil {
		t.Errorf("SignedURL of an invalid key = nil error, want one")
	}
}

func mustQuery(t *testing.T, u, name string) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return p.Query().Get(name)
}

func TestParseConnectionString(t *testing.T) {
	tests := []struct {
		in                     string
		endpoint, account, key string
		ok                     bool
	}{
		{"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5;EndpointSuffix=core.windows.net", "https://acct.blob.core.windows.net", "acct", "a2V5", true},
		{"AccountName=acct;AccountKey=a2V5==", "https://acct.blob.core.windows.net", "acct", "a2V5==", true},
		{"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;", "http://127.0.0.1:10000/devstoreaccount1", "devstoreaccount1", "a2V5", true},
		{"AccountName=acct", "", "", "", false},
		{"garbage", "", "", "", false},
		{"", "", "", "", false},
	}
	for _, tt := range tests {
		endpoint, account, key, err := parseConnectionString(tt.in)
		if (err == nil) != tt.ok || endpoint != tt.endpoint || account != tt.account || key != tt.key {
			t.Errorf("parseConnectionString(%q) = %q, %q, %q, %v; want %q, %q, %q, ok %v",
				tt.in, endpoint, account, key, err, tt.endpoint, tt.account, tt.key, tt.ok)
		}
		if err != nil && strings.Contains(err.Error(), "a2V5") {
			t.Errorf("parseConnectionString(%q) error %q shows the key", tt.in, err)
		}
	}
}

func TestNewBucketRefusesWrongKey(t *testing.T) {
	cs := os.Getenv(envAzure)
	if cs == "" {
		testBucket(t) // fails with the message to run the services
	}
	_, _, key, err := parseConnectionString(cs)
	if err != nil {
		t.Fatal(err)
	}
	wrong := strings.Replace(cs, key, "d3Jvbmcga2V5IHdyb25nIGtleQ==", 1)
	if _, err := NewBucket(context.Background(), Config{ConnectionString: wrong}); err == nil {
		t.Errorf("NewBucket with a wrong account key = nil error, want one")
	}
}
