package ingest

import (
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/certinv/certinv"
	"github.com/certinv/certinv/certparse"
	"github.com/certinv/certinv/sqlite"
	"github.com/certinv/certinv/storetest"
)

var now = time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)

// fixture is a service on a real SQLite file, and real certificates.
type fixture struct {
	svc   *Service
	db    *sqlite.DB
	certs []*storetest.Certificate
}

func newFixture(t testing.TB, n int) *fixture {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "certinv.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return &fixture{
		svc:   &Service{Store: db, Now: func() time.Time { return now }},
		db:    db,
		certs: storetest.NewCertificates(t, n),
	}
}

const dev1 = "00112233445566778899aabbccddeeff00112233"

func report(id string, at time.Time, certs ...certinv.ReportedCertificate) *certinv.Report {
	return &certinv.Report{
		Device:       certinv.Device{ID: id, Name: "web01.example.com", OS: "Windows Server 2022", CollectedAt: at},
		Certificates: certs,
	}
}

func der(path string, c *storetest.Certificate) certinv.ReportedCertificate {
	return certinv.ReportedCertificate{Path: path, DER: c.DER}
}

func byHash(path string, c *storetest.Certificate) certinv.ReportedCertificate {
	return certinv.ReportedCertificate{Path: path, SHA256: c.SHA256}
}

// malformed is not a certificate: a DER SEQUENCE holding one INTEGER.
var malformed = []byte{0x30, 0x03, 0x02, 0x01, 0x05}

type row struct{ device, path, json string }

func (f *fixture) rows(t *testing.T) []row {
	t.Helper()
	var rows []row
	_, err := f.db.ReadInventory(context.Background(), func(r *certinv.InventoryRow) error {
		rows = append(rows, row{r.DeviceID, r.Path, string(r.CertificateJSON)})
		return nil
	})
	if err != nil {
		t.Fatalf("ReadInventory: %v", err)
	}
	return rows
}

func (f *fixture) stats(t *testing.T) (devices, certs, links int64) {
	t.Helper()
	d, c, l, err := f.db.Stats(context.Background())
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	return d, c, l
}

// wantJSON is the fragment the server must store for c: certparse's fields.
func wantJSON(t *testing.T, c *storetest.Certificate) string {
	t.Helper()
	parsed, err := certparse.Parse(c.DER)
	if err != nil {
		t.Fatalf("certparse.Parse: %v", err)
	}
	return string(certinv.AppendCertificateJSON(nil, parsed))
}

func TestIngestNewDeviceThenSameByHash(t *testing.T) {
	f := newFixture(t, 3)
	ctx := context.Background()
	c := f.certs
	res, err := f.svc.Ingest(ctx, report(dev1, now, der("a", c[0]), der("b", c[1]), der("c", c[2])))
	if err != nil {
		t.Fatalf("Ingest: %v", err)
	}
	if res.DeviceID != dev1 || res.Stored != 3 || res.NewCertificates != 3 || res.Unchanged || len(res.Rejected) != 0 {
		t.Errorf("Ingest(new device) = %+v, want device %s, 3 stored, 3 new, changed, none rejected", res, dev1)
	}
	got := f.rows(t)
	want := []row{{dev1, "a", wantJSON(t, c[0])}, {dev1, "b", wantJSON(t, c[1])}, {dev1, "c", wantJSON(t, c[2])}}
	if len(got) != len(want) {
		t.Fatalf("ReadInventory read %d rows, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("row %d = %+v, want %+v", i, got[i], want[i])
		}
	}

	// The agent sends hashes only next time.
	res, err = f.svc.Ingest(ctx, report(dev1, now.Add(time.Minute), byHash("a", c[0]), byHash("b", c[1]), byHash("c", c[2])))
	if err != nil {
		t.Fatalf("Ingest(same set by hash): %v", err)
	}
	if res.Stored != 3 || res.NewCertificates != 0 || !res.Unchanged {
		t.Errorf("Ingest(same set by hash) = %+v, want 3 stored, 0 new, unchanged", res)
	}
}

func TestIngestRejectsMalformedCertificate(t *testing.T) {
	f := newFixture(t, 2)
	bad := certinv.ReportedCertificate{Path: "bad.pem", DER: malformed}
	res, err := f.svc.Ingest(context.Background(), report(dev1, now, der("a", f.certs[0]), bad, der("b", f.certs[1])))
	if err != nil {
		t.Fatalf("Ingest: %v", err)
	}
	if len(res.Rejected) != 1 || res.Rejected[0].Index != 1 || res.Rejected[0].Path != "bad.pem" || res.Rejected[0].Reason == "" {
		t.Errorf("Ingest(one malformed).Rejected = %+v, want index 1, path bad.pem, with a reason", res.Rejected)
	}
	if res.Stored != 2 || res.NewCertificates != 2 {
		t.Errorf("Ingest(one malformed) = %+v, want 2 stored, 2 new", res)
	}
	if d, c, l := f.stats(t); d != 1 || c != 2 || l != 2 {
		t.Errorf("Stats() = %d devices, %d certificates, %d links; want 1, 2, 2", d, c, l)
	}
	missing, _ := f.db.MissingCertificates(context.Background(), [][32]byte{sha256.Sum256(malformed)})
	if len(missing) != 1 {
		t.Errorf("the malformed certificate was stored")
	}
}

func TestIngestUnknownHashWritesNothing(t *testing.T) {
	f := newFixture(t, 3)
	ctx := context.Background()
	c := f.certs
	_, err := f.svc.Ingest(ctx, report(dev1, now, der("a", c[0]), byHash("b", c[1]), byHash("c", c[2])))
	var unknown *certinv.UnknownCertificatesError
	if !errors.As(err, &unknown) {
		t.Fatalf("Ingest(unknown hashes) error = %v, want *certinv.UnknownCertificatesError", err)
	}
	if len(unknown.SHA256) != 2 || unknown.SHA256[0] != c[1].SHA256 || unknown.SHA256[1] != c[2].SHA256 {
		t.Errorf("UnknownCertificatesError.SHA256 = %x, want %x and %x", unknown.SHA256, c[1].SHA256, c[2].SHA256)
	}
	if certinv.KindOf(err) != certinv.EConflict {
		t.Errorf("KindOf(%v) = %s, want %s", err, certinv.KindOf(err), certinv.EConflict)
	}
	if d, n, l := f.stats(t); d != 0 || n != 0 || l != 0 {
		t.Errorf("after a rejected report Stats() = %d, %d, %d; want nothing written", d, n, l)
	}
	// Sent again with the DER, it is taken.
	if _, err := f.svc.Ingest(ctx, report(dev1, now, der("a", c[0]), der("b", c[1]), der("c", c[2]))); err != nil {
		t.Fatalf("Ingest(with DER): %v", err)
	}
}

func TestIngestStaleReportWritesNothing(t *testing.T) {
	f := newFixture(t, 2)
	ctx := context.Background()
	if _, err := f.svc.Ingest(ctx, report(dev1, now, der("a", f.certs[0]))); err != nil {
		t.Fatal(err)
	}
	_, err := f.svc.Ingest(ctx, report(dev1, now.Add(-time.Hour), der("a", f.certs[1])))
	if certinv.KindOf(err) != certinv.EConflict {
		t.Fatalf("Ingest(older report) error = %v, want kind %s", err, certinv.EConflict)
	}
	if d, c, l := f.stats(t); d != 1 || c != 1 || l != 1 {
		t.Errorf("after a stale report Stats() = %d, %d, %d; want 1, 1, 1", d, c, l)
	}
}

func TestIngestDeduplicates(t *testing.T) {
	f := newFixture(t, 1)
	c := f.certs[0]
	res, err := f.svc.Ingest(context.Background(), report(dev1, now, der("a", c), byHash("a", c), der("b", c)))
	if err != nil {
		t.Fatalf("Ingest: %v", err)
	}
	if res.Stored != 2 || res.NewCertificates != 1 {
		t.Errorf("Ingest(a certificate twice at one path, once at another) = %+v, want 2 stored, 1 new", res)
	}
}

func TestValidation(t *testing.T) {
	f := newFixture(t, 2)
	c := f.certs[0]
	ok := func() *certinv.Report { return report(dev1, now, der("a", c)) }
	with := func(edit func(r *certinv.Report)) *certinv.Report { r := ok(); edit(r); return r }
	tests := []struct {
		name string
		r    *certinv.Report
		kind certinv.ErrorKind
		msg  string // part of the message
	}{
		{"nil report", nil, certinv.EInvalid, "empty"},
		{"short device id", with(func(r *certinv.Report) { r.Device.ID = "abc" }), certinv.EInvalid, "40 lowercase hexadecimal"},
		{"uppercase device id", with(func(r *certinv.Report) { r.Device.ID = strings.ToUpper(dev1) }), certinv.EInvalid, "40 lowercase hexadecimal"},
		{"non-hex device id", with(func(r *certinv.Report) { r.Device.ID = strings.Repeat("g", 40) }), certinv.EInvalid, "40 lowercase hexadecimal"},
		{"empty name", with(func(r *certinv.Report) { r.Device.Name = "" }), certinv.EInvalid, "deviceName is empty"},
		{"long name", with(func(r *certinv.Report) { r.Device.Name = strings.Repeat("a", certinv.MaxDeviceNameBytes+1) }), certinv.EInvalid, "at most 255"},
		{"name with newline", with(func(r *certinv.Report) { r.Device.Name = "a\nb" }), certinv.EInvalid, "control character"},
		{"name with C1 control", with(func(r *certinv.Report) { r.Device.Name = "a\u0085b" }), certinv.EInvalid, "control character"},
		{"name not UTF-8", with(func(r *certinv.Report) { r.Device.Name = "a\xffb" }), certinv.EInvalid, "UTF-8"},
		{"long OS", with(func(r *certinv.Report) { r.Device.OS = strings.Repeat("a", certinv.MaxOSBytes+1) }), certinv.EInvalid, "osPlatform"},
		{"OS with NUL", with(func(r *certinv.Report) { r.Device.OS = "Linux\x00" }), certinv.EInvalid, "osPlatform"},
		{"long group", with(func(r *certinv.Report) { r.GroupName = strings.Repeat("g", certinv.MaxGroupNameBytes+1) }), certinv.EInvalid, "rbacGroupName"},
		{"reserved group", with(func(r *certinv.Report) { r.GroupName = certinv.GroupUnassigned }), certinv.EInvalid, "reserved"},
		{"no collection time", with(func(r *certinv.Report) { r.Device.CollectedAt = time.Time{} }), certinv.EInvalid, "collectedAt is missing"},
		{"collected in the future", with(func(r *certinv.Report) { r.Device.CollectedAt = now.Add(MaxFutureSkew + time.Second) }), certinv.EInvalid, "in the future"},
		{"too many certificates", with(func(r *certinv.Report) {
			r.Certificates = make([]certinv.ReportedCertificate, certinv.MaxCertificatesPerReport+1)
		}), certinv.ETooLarge, "at most 20000"},
		{"certificate too large", with(func(r *certinv.Report) {
			r.Certificates[0].DER = make([]byte, certinv.MaxCertificateBytes+1)
		}), certinv.ETooLarge, "at most 65536"},
		{"empty path", with(func(r *certinv.Report) { r.Certificates[0].Path = "" }), certinv.EInvalid, "certificates[0].path is empty"},
		{"long path", with(func(r *certinv.Report) { r.Certificates[0].Path = strings.Repeat("p", certinv.MaxPathBytes+1) }), certinv.EInvalid, "at most 2048"},
		{"path with tab", with(func(r *certinv.Report) { r.Certificates[0].Path = "a\tb" }), certinv.EInvalid, "control character"},
		{"neither der nor sha256", with(func(r *certinv.Report) { r.Certificates[0].DER = nil }), certinv.EInvalid, "neither der nor sha256"},
		{"sha256 not of der", with(func(r *certinv.Report) { r.Certificates[0].SHA256 = f.certs[1].SHA256 }), certinv.EInvalid, "hashes to"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.svc.Ingest(context.Background(), tc.r)
			if certinv.KindOf(err) != tc.kind || !strings.Contains(certinv.MessageOf(err), tc.msg) {
				t.Errorf("Ingest() error = %v, want kind %s with a message containing %q", err, tc.kind, tc.msg)
			}
		})
	}
	if d, n, l := f.stats(t); d != 0 || n != 0 || l != 0 {
		t.Errorf("after invalid reports Stats() = %d, %d, %d; want nothing written", d, n, l)
	}
	// The base report is valid: each case fails for its own reason.
	if _, err := f.svc.Ingest(context.Background(), ok()); err != nil {
		t.Errorf("Ingest(valid base report) = %v", err)
	}
	// A collection time just within the allowed skew is taken.
	if _, err := f.svc.Ingest(context.Background(), with(func(r *certinv.Report) { r.Device.CollectedAt = now.Add(MaxFutureSkew) })); err != nil {
		t.Errorf("Ingest(collected %v ahead) = %v, want it taken", MaxFutureSkew, err)
	}
}

func TestIngestBatch(t *testing.T) {
	f := newFixture(t, 4)
	ctx := context.Background()
	c := f.certs
	const dev2, dev3, dev4 = "2222222222222222222222222222222222222222", "3333333333333333333333333333333333333333", "4444444444444444444444444444444444444444"
	invalid := report(dev3, now, der("a", c[0]))
	invalid.Device.Name = ""
	rs := []*certinv.Report{
		report(dev1, now, der("a", c[0]), der("b", c[1])),
		invalid,
		report(dev2, now, der("a", c[0]), byHash("b", c[1])), // c[1] arrives in the same batch
		report(dev4, now, byHash("a", c[3])),                 // unknown
		report(dev1, now.Add(-time.Minute), der("z", c[2])),  // stale against the batch's first
	}
	results, errs, err := f.svc.IngestBatch(ctx, rs)
	if err != nil {
		t.Fatalf("IngestBatch: %v", err)
	}
	if errs[0] != nil || errs[2] != nil {
		t.Errorf("IngestBatch: valid reports got errors %v, %v", errs[0], errs[2])
	}
	if certinv.KindOf(errs[1]) != certinv.EInvalid || results[1] != nil {
		t.Errorf("IngestBatch: invalid report got %v, %v; want kind %s and no result", results[1], errs[1], certinv.EInvalid)
	}
	var unknown *certinv.UnknownCertificatesError
	if !errors.As(errs[3], &unknown) || results[3] != nil {
		t.Errorf("IngestBatch: unknown-hash report got %v, %v; want *certinv.UnknownCertificatesError and no result", results[3], errs[3])
	}
	if certinv.KindOf(errs[4]) != certinv.EConflict || results[4] != nil {
		t.Errorf("IngestBatch: stale report got %v, %v; want kind %s and no result", results[4], errs[4], certinv.EConflict)
	}
	if results[0] == nil || results[0].Stored != 2 || results[2] == nil || results[2].Stored != 2 {
		t.Errorf("IngestBatch results = %+v, %+v; want 2 stored each", results[0], results[2])
	}
	if d, n, l := f.stats(t); d != 2 || n != 2 || l != 4 {
		t.Errorf("after the batch Stats() = %d, %d, %d; want 2 devices, 2 certificates, 4 links", d, n, l)
	}
}

// failingStore fails ApplyDeviceSets, to show IngestBatch reports a store
// failure as err.
type failingStore struct{ certinv.Inventory }

var errStore = errors.New("disk on fire")

func (failingStore) ApplyDeviceSets(context.Context, []certinv.DeviceSet) ([]certinv.SetResult, error) {
	return nil, errStore
}

func TestIngestStoreFailure(t *testing.T) {
	f := newFixture(t, 1)
	svc := &Service{Store: failingStore{f.db}, Now: f.svc.Now}
	_, err := svc.Ingest(context.Background(), report(dev1, now, der("a", f.certs[0])))
	if !errors.Is(err, errStore) {
		t.Errorf("Ingest on a failing store = %v, want %v", err, errStore)
	}
}

func FuzzPrepare(f *testing.F) {
	f.Add(dev1, "web01.example.com", "Windows", "group", `LocalMachine\Root`, []byte{0x30, 0x00})
	f.Add("", "", "", "", "", []byte(nil))
	f.Add(dev1, "a\u2028b", "\x7f", "None", "p\x00", malformed)
	f.Fuzz(func(t *testing.T, id, name, os, group, path string, der []byte) {
		r := &certinv.Report{
			Device:       certinv.Device{ID: id, Name: name, OS: os, CollectedAt: now},
			GroupName:    group,
			Certificates: []certinv.ReportedCertificate{{Path: path, DER: der}, {Path: path, DER: der}},
		}
		p, err := prepare(r, now)
		if err != nil {
			if k := certinv.KindOf(err); k != certinv.EInvalid && k != certinv.ETooLarge {
				t.Fatalf("prepare error kind %s, want invalid or too_large: %v", k, err)
			}
			return
		}
		for _, s := range []string{id, name, os, group, path} {
			if !utf8.ValidString(s) || strings.ContainsFunc(s, unicode.IsControl) {
				t.Fatalf("prepare accepted %q", s)
			}
		}
		if len(p.links) != 1 || p.links[0].SHA256 != sha256.Sum256(der) {
			t.Fatalf("prepare links = %+v, want the one (path, sha256) once", p.links)
		}
	})
}
