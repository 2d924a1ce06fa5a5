package postgres

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certinv/certinv"
	"github.com/certinv/certinv/storetest"
	"github.com/jackc/pgx/v5"
)

// The benchmarks run against the CERTINV_TEST_POSTGRES server, each in a
// schema of its own. Run:
//
//	go test ./postgres -run '^$' -bench . -benchtime 3s
//
// CERTINV_BENCH_LINKS sizes the ReadInventory fixture (default 1,000,000).

func benchDevice(n int, at time.Time) certinv.Device {
	return certinv.Device{ID: fmt.Sprintf("%040x", n), Name: fmt.Sprintf("host%d.example.com", n), OS: "Windows Server 2022", CollectedAt: at}
}

// BenchmarkApplyDeviceSets measures reports of 100 certificates the store
// already holds, sent by hash: the same report again (the common case), and
// a new device; batch is the number of sets per call, as IngestBatch sends.
func BenchmarkApplyDeviceSets(b *testing.B) {
	certs := storetest.NewCertificates(b, 100)
	links := make([]certinv.Link, len(certs))
	for i, c := range certs {
		links[i] = certinv.Link{Path: `LocalMachine\Root`, SHA256: c.SHA256}
	}
	for _, kind := range []string{"same", "newdevice"} {
		for _, batch := range []int{1, 100} {
			b.Run(fmt.Sprintf("%s/batch=%d", kind, batch), func(b *testing.B) {
				ctx := context.Background()
				db := openTest(b)
				first := certinv.DeviceSet{Device: benchDevice(0, time.Unix(1, 0)), Links: links}
				for _, c := range certs {
					first.New = append(first.New, c.Stored())
				}
				seed := []certinv.DeviceSet{first}
				for n := 1; n < batch; n++ {
					seed = append(seed, certinv.DeviceSet{Device: benchDevice(n, time.Unix(1, 0)), Links: links})
				}
				if res, err := db.ApplyDeviceSets(ctx, seed); err != nil || res[0].Err != nil {
					b.Fatalf("seed: %v %v", err, res)
				}
				sets := make([]certinv.DeviceSet, batch)
				next := batch
				at := time.Unix(2, 0)
				reports := 0
				start := time.Now()
				for b.Loop() {
					at = at.Add(time.Second)
					for i := range sets {
						n := i
						if kind == "newdevice" {
							n = next
							next++
						}
						sets[i] = certinv.DeviceSet{Device: benchDevice(n, at), Links: links}
					}
					res, err := db.ApplyDeviceSets(ctx, sets)
					if err != nil {
						b.Fatal(err)
					}
					for _, r := range res {
						if r.Err != nil {
							b.Fatal(r.Err)
						}
					}
					reports += batch
				}
				b.ReportMetric(float64(reports)/time.Since(start).Seconds(), "reports/s")
			})
		}
	}
}

// BenchmarkReadInventory measures a full read of a fleet of
// CERTINV_BENCH_LINKS links: 100 per device, 5,000 distinct certificates,
// in 10 groups (the sqlite benchmark's fixture). "fresh" reads the tables
// as written, before any VACUUM: the links' index-only scans visit the heap
// for every row. "vacuumed" reads them after VACUUM, as autovacuum leaves a
// fleet whose reports settled (PostgreSQL 13 and later vacuum insert-only
// tables too).
func BenchmarkReadInventory(b *testing.B) {
	total := 1_000_000
	if v := os.Getenv("CERTINV_BENCH_LINKS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("CERTINV_BENCH_LINKS=%q: want a positive integer", v)
		}
		total = n
	}
	ctx := context.Background()
	db := openTest(b)
	t := time.Now()
	if err := fillInventory(ctx, db, total); err != nil {
		b.Fatal(err)
	}
	b.Logf("fixture of %d links built in %v", total, time.Since(t).Round(time.Millisecond))
	read := func(b *testing.B) {
		var rows, bytes int64
		start := time.Now()
		for b.Loop() {
			n := 0
			_, err := db.ReadInventory(ctx, func(r *certinv.InventoryRow) error {
				n++
				bytes += int64(len(r.CertificateJSON))
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			if n != total {
				b.Fatalf("ReadInventory read %d rows, want %d", n, total)
			}
			rows += int64(n)
		}
		b.ReportMetric(float64(rows)/time.Since(start).Seconds(), "rows/s")
		b.SetBytes(bytes / max(int64(b.N), 1))
	}
	b.Run("fresh", read)
	for _, table := range []string{"links", "devices", "certificates"} {
		if _, err := db.pool.Exec(ctx, "VACUUM "+table); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("vacuumed", read)
}

// fillInventory writes total links straight into the tables with COPY: the
// fixture of a large fleet in seconds, without the cost of the ingest path.
func fillInventory(ctx context.Context, db *DB, total int) error {
	const perDevice, distinct, groups = 100, 5000, 10
	fragment := func(i int) (sha [32]byte, s1 [20]byte, der, js []byte) {
		der = make([]byte, 900)
		binary.BigEndian.PutUint64(der, uint64(i))
		sha, s1 = sha256.Sum256(der), sha1.Sum(der)
		c := &certinv.Certificate{
			SHA256: sha, Thumbprint: strings.ToUpper(hex.EncodeToString(s1[:])), SignatureAlgorithm: "sha256RSA",
			KeySize: 2048, NotBefore: time.Unix(1.7e9, 0), NotAfter: time.Unix(1.8e9, 0), SubjectType: certinv.SubjectCA,
			SerialNumber: fmt.Sprintf("%032X", i), IssuedTo: fmt.Sprintf("CN=Example Root CA %d, O=Example Corp, C=US", i),
			IssuedBy: fmt.Sprintf("CN=Example Root CA %d, O=Example Corp, C=US", i),
			Subject:  certinv.Name{CommonName: fmt.Sprintf("Example Root CA %d", i), Organization: "Example Corp", Country: "US"},
			Issuer:   certinv.Name{CommonName: fmt.Sprintf("Example Root CA %d", i), Organization: "Example Corp", Country: "US"},
			KeyUsage: []string{"Digital Signature", "Certificate Signing", "Off-line CRL Signing", "CRL Signing"},
		}
		return sha, s1, der, certinv.AppendCertificateJSON(nil, c)
	}
	return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		sha1s := make([][]byte, distinct)
		var certRows [][]any
		for i := range distinct {
			sha, s1, der, js := fragment(i)
			sha1s[i] = s1[:]
			certRows = append(certRows, []any{int64(i + 1), sha[:], s1[:], der, js})
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"certificates"}, []string{"id", "sha256", "sha1", "der", "json"}, pgx.CopyFromRows(certRows)); err != nil {
			return fmt.Errorf("copy certificates: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO groups (name) SELECT 'group ' || g FROM generate_series(1, $1) AS g`, groups); err != nil {
			return err
		}
		devices := (total + perDevice - 1) / perDevice
		var devRows [][]any
		for d := range devices {
			devRows = append(devRows, []any{int64(d + 1), fmt.Sprintf("%040x", d), fmt.Sprintf("host%d.example.com", d), "Windows Server 2022", int64(0), int64(d % (groups + 1)), []byte{}})
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"devices"}, []string{"id", "device_id", "name", "os", "collected_at", "group_id", "links_digest"}, pgx.CopyFromRows(devRows)); err != nil {
			return fmt.Errorf("copy devices: %w", err)
		}
		n := 0
		src := pgx.CopyFromFunc(func() ([]any, error) {
			if n == total {
				return nil, nil
			}
			d, j := n/perDevice, n%perDevice
			n++
			cert := (d*7 + j*13) % distinct
			return []any{int64(d + 1), fmt.Sprintf(`LocalMachine\Store%d`, j%4), sha1s[cert], int64(cert + 1)}, nil
		})
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"links"}, []string{"device", "path", "sha1", "certificate"}, src); err != nil {
			return fmt.Errorf("copy links: %w", err)
		}
		_, err := tx.Exec(ctx, `UPDATE meta SET version = version + 1; ANALYZE`)
		return err
	})
}
