package synth

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/certinv/certinv"
)

// BenchmarkGenerate measures devices per second with the default mix
// (60 certificates a device), b.N devices per run, with one worker and with
// GOMAXPROCS workers.
func BenchmarkGenerate(b *testing.B) {
	if _, err := loadPool(); err != nil {
		b.Fatal(err)
	}
	for _, workers := range []int{1, runtime.GOMAXPROCS(0)} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			f := Fleet{Devices: b.N, Groups: 12, Seed: 1, Now: time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)}
			b.ResetTimer()
			start := time.Now()
			records := 0
			err := f.Generate(context.Background(), workers, func(r *certinv.Report) error {
				records += len(r.Certificates)
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "devices/s")
			b.ReportMetric(float64(records)/float64(b.N), "records/device")
		})
	}
}
