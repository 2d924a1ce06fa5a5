package azure

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/certinv/certinv"
	"github.com/certinv/certinv/blob"
	"github.com/certinv/certinv/snapshot"
	"github.com/certinv/certinv/storetest"
)

// rowsSource is a certinv.InventoryReader over rows in the store's order.
type rowsSource struct {
	version int64
	rows    []certinv.InventoryRow
}

func (s *rowsSource) Version(ctx context.Context) (int64, error) { return s.version, ctx.Err() }

func (s *rowsSource) ReadInventory(ctx context.Context, fn func(*certinv.InventoryRow) error) (int64, error) {
	for i := range s.rows {
		row := s.rows[i]
		if err := fn(&row); err != nil {
			return 0, err
		}
	}
	return s.version, nil
}

// oneRegistry is a certinv.SnapshotRegistry that keeps the latest snapshot.
type oneRegistry struct{ latest *certinv.Snapshot }

func (r *oneRegistry) PublishSnapshot(ctx context.Context, s *certinv.Snapshot) error {
	c := *s
	r.latest = &c
	return nil
}

func (r *oneRegistry) LatestSnapshot(ctx context.Context) (*certinv.Snapshot, error) {
	if r.latest == nil {
		return nil, certinv.Errorf(certinv.ENotFound, "no snapshot yet")
	}
	return r.latest, nil
}

func (r *oneRegistry) Snapshot(ctx context.Context, id string) (*certinv.Snapshot, error) {
	if r.latest == nil || r.latest.ID != id {
		return nil, certinv.Errorf(certinv.ENotFound, "unknown snapshot")
	}
	return r.latest, nil
}

func (r *oneRegistry) Snapshots(ctx context.Context) ([]certinv.PublishedSnapshot, error) {
	if r.latest == nil {
		return nil, nil
	}
	return []certinv.PublishedSnapshot{{Snapshot: *r.latest}}, nil
}

func (r *oneRegistry) RetireSnapshot(ctx context.Context, id string) error {
	r.latest = nil
	return nil
}

// build builds a snapshot of rows into bucket and returns every record that
// CopyRecords reads back, a page of pageSize at a time.
func build(t *testing.T, bucket blob.Bucket, rows []certinv.InventoryRow, pageSize int64) []string {
	t.Helper()
	ctx := context.Background()
	reg := &oneRegistry{}
	b := &snapshot.Builder{
		Source: &rowsSource{version: 7, rows: rows}, Registry: reg, Bucket: bucket,
		OrgID: "0e1d2c3b-4a59-4687-9a0b-1c2d3e4f5a6b", LinesPerMember: 16, RecordsPerFile: 100,
		Now: func() time.Time { return time.Date(2026, 12, 3, 15, 0, 0, 0, time.UTC) },
	}
	s, err := b.Build(ctx)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	t.Cleanup(func() { bucket.DeleteContainer(context.Background(), snapshot.Container(s.ID)) })
	if s.Records != int64(len(rows)) {
		t.Fatalf("Build published %d records, want %d", s.Records, len(rows))
	}
	m, err := snapshot.ReadManifest(ctx, bucket, s.ManifestKey)
	if err != nil {
		t.Fatalf("ReadManifest: %v", err)
	}
	var out []string
	var pos snapshot.Position
	for {
		var buf bytes.Buffer
		next, n, more, err := m.CopyRecords(ctx, bucket, pos, pageSize, nil, &buf, []byte("\n"))
		if err != nil {
			t.Fatalf("CopyRecords(%v): %v", pos, err)
		}
		if n > 0 {
			out = append(out, strings.Split(buf.String(), "\n")...)
		}
		if !more {
			break
		}
		pos = next
	}
	return out
}

// TestSnapshotOnAzure builds a snapshot into Azure storage and pages
// through it, and checks that it reads the same records as the same build
// into a local folder.
func TestSnapshotOnAzure(t *testing.T) {
	az := testBucket(t)
	certs := storetest.NewCertificates(t, 5)
	var rows []certinv.InventoryRow
	for g := range 3 {
		for d := range 20 {
			for j := range 5 {
				rows = append(rows, certinv.InventoryRow{
					GroupID: int64(g), GroupName: []string{certinv.GroupUnassigned, "web", "db"}[g],
					DeviceID: fmt.Sprintf("%040x", g*100+d), DeviceName: fmt.Sprintf("host%d.example.com", g*100+d),
					Path: fmt.Sprintf("LocalMachine\\Store%d", j), CertificateJSON: certs[j].JSON,
				})
			}
		}
	}
	dir, err := blob.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	got := build(t, az, rows, 37)
	want := build(t, dir, rows, 1000)
	if len(got) != len(rows) {
		t.Fatalf("paging the snapshot on Azure read %d records, want %d", len(got), len(rows))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("record %d read from Azure = %s, want %s (the same build in a folder)", i, got[i], want[i])
		}
	}
	for i, r := range rows {
		if !strings.Contains(got[i], r.DeviceID) || !strings.Contains(got[i], certs[i%5].Thumbprint) {
			t.Errorf("record %d = %s, want device %s and thumbprint %s", i, got[i], r.DeviceID, certs[i%5].Thumbprint)
		}
	}
}
