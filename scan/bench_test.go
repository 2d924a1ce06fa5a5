package scan

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"testing"
	"time"
)

// defaultFinds scans this machine's default places once and returns the
// DER of every find.
func defaultFinds(b *testing.B) [][]byte {
	b.Helper()
	var ders [][]byte
	err := Scan(context.Background(), Options{}, func(f Found) error {
		ders = append(ders, append([]byte(nil), f.DER...))
		return nil
	}, func(Warning) {})
	if err != nil {
		b.Fatal(err)
	}
	if len(ders) == 0 {
		b.Fatal("no certificate in this machine's default places")
	}
	return ders
}

func scanDefault(b *testing.B) int {
	n := 0
	err := Scan(context.Background(), Options{}, func(Found) error { n++; return nil }, func(Warning) {})
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// floor is the least a scan could cost per certificate: parse the DER
// with crypto/x509 and hash it, in memory.
func floor(ders [][]byte) {
	for _, d := range ders {
		x509.ParseCertificate(d) // errors (negative serials...) cost the same
		sha256.Sum256(d)
	}
}

// BenchmarkDefaultPlaces measures a scan of this machine's default places
// (walk, links, reads, container decoding, framing, SHA-256) against the
// floor, in the same run: ns/cert of each and their ratio.
func BenchmarkDefaultPlaces(b *testing.B) {
	ders := defaultFinds(b)
	b.Run("scan", func(b *testing.B) {
		for b.Loop() {
			scanDefault(b)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(ders)), "ns/cert")
		b.ReportMetric(float64(len(ders)), "certs")
	})
	b.Run("floor", func(b *testing.B) {
		for b.Loop() {
			floor(ders)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(ders)), "ns/cert")
	})
	b.Run("ratio", func(b *testing.B) {
		var scan, fl time.Duration
		for b.Loop() {
			t0 := time.Now()
			scanDefault(b)
			t1 := time.Now()
			floor(ders)
			scan, fl = scan+t1.Sub(t0), fl+time.Since(t1)
		}
		b.ReportMetric(float64(scan)/float64(fl), "scan/floor")
	})
}

// BenchmarkParseFile measures the parsers on the fixtures, per file.
func BenchmarkParseFile(b *testing.B) {
	for _, name := range []string{"bundle.pem", "chain.p7b", "nopass.pfx", "store.jks"} {
		data := readFixtureB(b, name)
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				ParseFile(name, data, nil)
			}
		})
	}
}
