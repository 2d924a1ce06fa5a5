package ingest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/certinv/certinv"
)

// BenchmarkIngest measures the whole path (validate, hash, ask the store,
// apply into SQLite on disk) for a report of 100 certificates the server
// already holds, sent as sha256 only and as DER, for the same device again
// and for new devices. Run:
//
//	go test ./ingest -run '^$' -bench Ingest -benchtime 2s
func BenchmarkIngest(b *testing.B) {
	for _, send := range []string{"sha256", "der"} {
		for _, device := range []string{"same", "newdevice"} {
			b.Run(send+"/"+device, func(b *testing.B) {
				f := newFixture(b, 100)
				ctx := context.Background()
				certs := make([]certinv.ReportedCertificate, len(f.certs))
				for i, c := range f.certs {
					certs[i] = der(`LocalMachine\Root`, c)
				}
				if _, err := f.svc.Ingest(ctx, report(dev1, now.Add(-time.Hour), certs...)); err != nil {
					b.Fatal(err)
				}
				if send == "sha256" {
					for i, c := range f.certs {
						certs[i] = byHash(`LocalMachine\Root`, c)
					}
				}
				n := 0
				at := now.Add(-time.Hour)
				start := time.Now()
				for b.Loop() {
					id := dev1
					if device == "newdevice" {
						id = fmt.Sprintf("%040x", n)
					}
					at = at.Add(time.Millisecond)
					if _, err := f.svc.Ingest(ctx, report(id, at, certs...)); err != nil {
						b.Fatal(err)
					}
					n++
				}
				b.ReportMetric(float64(n)/time.Since(start).Seconds(), "reports/s")
			})
		}
	}
}
