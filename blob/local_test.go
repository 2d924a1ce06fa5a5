package blob_test

import (
	"context"
	"errors"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/certinv/certinv"
	"github.com/certinv/certinv/blob"
)

var (
	testKey   = []byte("0123456789abcdef0123456789abcdef")
	testStart = time.Date(2026, 12, 3, 15, 0, 0, 0, time.UTC)
	testEnd   = testStart.Add(3 * time.Hour)
)

const testObject = "export-5c080622-f613-42bb-9fee-e17ccdff90d3/2026-12-03/1500/CertificateAssessmentExport/json/OrgId=47d41a0c-188d-46d3-bbea-a93dbc0bfcaa/_RbacGroupId=4226/part-00000-5c080622-f613-42bb-9fee-e17ccdff90d3.c000.json.gz"

func signed(t *testing.T, s *blob.LocalSigner, key string) *url.URL {
	t.Helper()
	raw, err := s.SignedURL(context.Background(), key, testStart, testEnd)
	if err != nil {
		t.Fatalf("SignedURL(%q) = %v", key, err)
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("SignedURL(%q) = %q, not a URL: %v", key, raw, err)
	}
	return u
}

// The URL has the shape of the reference's Azure SAS URLs.
func TestSignedURLShape(t *testing.T) {
	s := &blob.LocalSigner{BaseURL: "https://certinv.example.com/files", Key: testKey}
	raw, err := s.SignedURL(context.Background(), testObject, testStart, testEnd)
	if err != nil {
		t.Fatal(err)
	}
	want := regexp.MustCompile(`^https://certinv\.example\.com/files/` + regexp.QuoteMeta(testObject) +
		`\?sv=2020-02-10&st=2026-12-03T15%3A00%3A00Z&se=2026-12-03T18%3A00%3A00Z&sr=b&sp=r&sig=[A-Za-z0-9%]+$`)
	if !want.MatchString(raw) {
		t.Errorf("SignedURL() = %q, want it to match %s", raw, want)
	}

	// Segments are escaped one by one: a space or '?' stays in its segment.
	raw, err = s.SignedURL(context.Background(), "c/a b?/x", testStart, testEnd)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if u.Path != "/files/c/a b?/x" {
		t.Errorf("SignedURL(%q) path = %q, want %q", "c/a b?/x", u.Path, "/files/c/a b?/x")
	}
}

func TestSignedURLRefuses(t *testing.T) {
	tests := []struct {
		name  string
		s     blob.LocalSigner
		key   string
		start time.Time
		end   time.Time
	}{
		{"short key", blob.LocalSigner{BaseURL: "https://h/files", Key: []byte("short")}, "c/o", testStart, testEnd},
		{"bad object key", blob.LocalSigner{BaseURL: "https://h/files", Key: testKey}, "c/../o", testStart, testEnd},
		{"expiry before start", blob.LocalSigner{BaseURL: "https://h/files", Key: testKey}, "c/o", testEnd, testStart},
		{"expiry equals start", blob.LocalSigner{BaseURL: "https://h/files", Key: testKey}, "c/o", testStart, testStart},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if u, err := tt.s.SignedURL(context.Background(), tt.key, tt.start, tt.end); err == nil {
				t.Errorf("SignedURL(%q) = %q, want an error", tt.key, u)
			}
		})
	}
}

func TestVerify(t *testing.T) {
	s := &blob.LocalSigner{BaseURL: "https://certinv.example.com/files", Key: testKey}
	u := signed(t, s, testObject)
	valid := u.Query()
	other := signed(t, s, "export-x/other.json.gz").Query()

	with := func(name, value string) url.Values {
		q := url.Values{}
		for k, v := range valid {
			q[k] = append([]string(nil), v...)
		}
		if value == "" {
			q.Del(name)
		} else {
			q.Set(name, value)
		}
		return q
	}
	dup := with("se", valid.Get("se"))
	dup.Add("se", valid.Get("se"))
	extra := with("se", valid.Get("se"))
	extra.Set("sp2", "rw")

	tests := []struct {
		name string
		key  string
		q    url.Values
		now  time.Time
		ok   bool
	}{
		{"valid at start", testObject, valid, testStart, true},
		{"valid before expiry", testObject, valid, testEnd.Add(-time.Second), true},
		{"expired", testObject, valid, testEnd, false},
		{"not yet valid", testObject, valid, testStart.Add(-time.Second), false},
		{"other path", strings.Replace(testObject, "4226", "4227", 1), valid, testStart, false},
		{"other file's signature", testObject, with("sig", other.Get("sig")), testStart, false},
		{"longer expiry", testObject, with("se", "2026-12-04T15:00:00Z"), testStart, false},
		{"earlier start", testObject, with("st", "2026-12-01T15:00:00Z"), testStart, false},
		{"write permission", testObject, with("sp", "rw"), testStart, false},
		{"container resource", testObject, with("sr", "c"), testStart, false},
		{"other version", testObject, with("sv", "2021-01-01"), testStart, false},
		{"missing sig", testObject, with("sig", ""), testStart, false},
		{"missing se", testObject, with("se", ""), testStart, false},
		{"missing sv", testObject, with("sv", ""), testStart, false},
		{"malformed sig", testObject, with("sig", "!!!"), testStart, false},
		{"truncated sig", testObject, with("sig", valid.Get("sig")[:20]), testStart, false},
		{"duplicated se", testObject, dup, testStart, false},
		{"unknown parameter", testObject, extra, testStart, false},
		{"no parameters", testObject, url.Values{}, testStart, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Verify(tt.key, tt.q, tt.now)
			if tt.ok {
				if err != nil {
					t.Errorf("Verify(%q, %v, %v) = %v, want nil", tt.key, tt.q, tt.now, err)
				}
				return
			}
			var e *certinv.Error
			if !errors.As(err, &e) || e.Kind != certinv.EForbidden {
				t.Fatalf("Verify(%q, %v, %v) = %v, want a certinv.Error of kind %s", tt.key, tt.q, tt.now, err, certinv.EForbidden)
			}
			if !strings.Contains(e.Message, "CertificateAssessmentExport") {
				t.Errorf("Verify() message = %q, want it to send the client to the export endpoint", e.Message)
			}
		})
	}

	// Another key refuses the URL.
	s2 := &blob.LocalSigner{BaseURL: s.BaseURL, Key: []byte("fedcba9876543210fedcba9876543210")}
	if err := s2.Verify(testObject, valid, testStart); certinv.KindOf(err) != certinv.EForbidden {
		t.Errorf("Verify() under another key = %v, want %s", err, certinv.EForbidden)
	}
}

// FuzzVerify checks that a changed query is never accepted: Verify takes a
// query only when it carries exactly the signed parameters.
func FuzzVerify(f *testing.F) {
	s := &blob.LocalSigner{BaseURL: "https://h/files", Key: testKey}
	raw, err := s.SignedURL(context.Background(), "c/o", testStart, testEnd)
	if err != nil {
		f.Fatal(err)
	}
	u, err := url.Parse(raw)
	if err != nil {
		f.Fatal(err)
	}
	want := u.Query()
	f.Add("c/o", u.RawQuery)
	f.Add("c/o2", u.RawQuery)
	f.Add("c/o", strings.Replace(u.RawQuery, "sp=r", "sp=rw", 1))
	f.Add("c/o", u.RawQuery+"&se=2030-01-01T00%3A00%3A00Z")
	f.Fuzz(func(t *testing.T, key, rawQuery string) {
		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			return
		}
		if s.Verify(key, q, testStart.Add(time.Hour)) != nil {
			return
		}
		if key != "c/o" || len(q) != len(want) {
			t.Fatalf("Verify(%q, %q) = nil, want refused", key, rawQuery)
		}
		for k, v := range want {
			if len(q[k]) != 1 || q[k][0] != v[0] {
				t.Fatalf("Verify(%q, %q) = nil with %s=%q, want refused", key, rawQuery, k, q[k])
			}
		}
	})
}
