package synth

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/certinv/certinv"
)

// BenchmarkGenerate measures devices per second with the default mix, over
// GOMAXPROCS workers: b.N devices per run.
func BenchmarkGenerate(b *testing.B) {
	if _, err := loadPool(); err != nil {
		b.Fatal(err)
	}
	f := Fleet{Devices: b.N, Groups: 12, Seed: 1, Now: time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)}
	b.ResetTimer()
	start := time.Now()
	records := 0
	err := f.Generate(context.Background(), runtime.GOMAXPROCS(0), func(r *certinv.Report) error {
		records += len(r.Certificates)
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "devices/s")
	b.ReportMetric(float64(records)/float64(b.N), "records/device")
}
