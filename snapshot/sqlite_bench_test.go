package snapshot_test

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/certinv/certinv"
	"github.com/certinv/certinv/blob"
	"github.com/certinv/certinv/ingest"
	"github.com/certinv/certinv/snapshot"
	"github.com/certinv/certinv/sqlite"
	"github.com/certinv/certinv/synth"
)

// BenchmarkRatiosSQLite measures what `certinv snapshot` does, a build that
// reads the embedded store, against a floor measured in the same run: the
// same records, already in memory, encoded as NDJSON (copying each stored
// certificate fragment, as the build does) and gzipped at the same level,
// in members of the same size, on the same cores. Its ratio is the build's
// whole overhead over compression: the database read, the file writes and
// syncs, the manifest.
//
//	CERTINV_BENCH_RECORDS=1000000 go test -run '^$' -bench RatiosSQLite -v ./snapshot
//
// The fleet is made by synth through the real ingest path (about 35 s for a
// million records); CERTINV_BENCH_DB names an existing certinv.db to use
// instead (it is only read: snapshots are registered in memory).
func BenchmarkRatiosSQLite(b *testing.B) {
	ctx := context.Background()
	db := benchDB(b)
	org, err := db.OrgID(ctx)
	if err != nil {
		b.Fatal(err)
	}

	// The floor's input: every record in memory, each distinct fragment once.
	frags := map[string][]byte{}
	var rows []certinv.InventoryRow
	if _, err := db.ReadInventory(ctx, func(r *certinv.InventoryRow) error {
		frag, ok := frags[string(r.CertificateJSON)]
		if !ok {
			frag = append([]byte(nil), r.CertificateJSON...)
			frags[string(frag)] = frag
		}
		row := *r
		row.CertificateJSON = frag
		rows = append(rows, row)
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	var raw int64
	var line []byte
	for i := range rows {
		r := &rows[i]
		line = certinv.AppendRecordJSON(line[:0], r.DeviceID, r.DeviceName, r.Path, r.CertificateJSON, r.GroupID, r.GroupName)
		raw += int64(len(line)) + 1
	}

	for b.Loop() {
		dir, err := blob.NewDir(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		bl := &snapshot.Builder{Source: db, Registry: &memRegistry{now: time.Now}, Bucket: dir, OrgID: org}
		var records int64
		build := func() {
			s, err := bl.Build(ctx)
			if err != nil {
				b.Fatal(err)
			}
			records = s.Records
			if err := dir.DeleteContainer(ctx, snapshot.Container(s.ID)); err != nil {
				b.Fatal(err)
			}
		}
		floor := func() {
			copyFloor(rows, snapshot.DefaultLevel, snapshot.DefaultLinesPerMember, runtime.GOMAXPROCS(0))
		}
		tBuild, tFloor := alternate(build, floor, 3)
		if records != int64(len(rows)) {
			b.Fatalf("build wrote %d records, the store holds %d", records, len(rows))
		}
		b.ReportMetric(float64(tBuild)/float64(tFloor), "build/floor")
		b.Logf("\n"+
			"records %d (%.0f MB NDJSON, %d distinct certificates), cores %d, gzip level %d\n"+
			"build from SQLite  %v  %.0f records/s\n"+
			"floor (in memory)  %v  %.0f records/s\n"+
			"build/floor        %.2f",
			len(rows), float64(raw)/1e6, len(frags), runtime.GOMAXPROCS(0), snapshot.DefaultLevel,
			tBuild, float64(len(rows))/tBuild.Seconds(),
			tFloor, float64(len(rows))/tFloor.Seconds(),
			float64(tBuild)/float64(tFloor))
	}
}

// copyFloor is buildFloor with the build's own encoding: each line made by
// AppendRecordJSON from the stored fragment.
func copyFloor(rows []certinv.InventoryRow, level, chunk, workers int) int64 {
	recs := make([]lineRecord, len(rows))
	for i := range rows {
		recs[i] = lineRecord{&rows[i]}
	}
	return encodeFloor(recs, level, chunk, workers)
}

// lineRecord encodes an InventoryRow as the builder does.
type lineRecord struct{ r *certinv.InventoryRow }

func (l lineRecord) AppendJSON(dst []byte) []byte {
	return certinv.AppendRecordJSON(dst, l.r.DeviceID, l.r.DeviceName, l.r.Path, l.r.CertificateJSON, l.r.GroupID, l.r.GroupName)
}

// benchDB opens CERTINV_BENCH_DB, or makes a synthetic fleet of about
// CERTINV_BENCH_RECORDS records (60 per device) through the ingest service.
func benchDB(b *testing.B) *sqlite.DB {
	ctx := context.Background()
	path := os.Getenv("CERTINV_BENCH_DB")
	if path == "" {
		path = filepath.Join(b.TempDir(), "certinv.db")
	}
	db, err := sqlite.Open(ctx, path, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	if os.Getenv("CERTINV_BENCH_DB") != "" {
		return db
	}
	fleet := &synth.Fleet{Devices: max(1, benchRecords(b)/60), CertsPerDevice: 60, Groups: 8, Seed: 1,
		Now: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	svc := &ingest.Service{Store: db}
	var batch []*certinv.Report
	flush := func() {
		if _, errs, err := svc.IngestBatch(ctx, batch); err != nil {
			b.Fatal(err)
		} else {
			for _, err := range errs {
				if err != nil {
					b.Fatal(err)
				}
			}
		}
		batch = batch[:0]
	}
	err = fleet.Generate(ctx, runtime.GOMAXPROCS(0), func(r *certinv.Report) error {
		if batch = append(batch, r); len(batch) == 500 {
			flush()
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	flush()
	return db
}
