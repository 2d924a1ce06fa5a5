package postgres

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/certinv/certinv"

	"github.com/certinv/certinv/storetest"
)

func TestAccess(t *testing.T) {
	storetest.RunAccess(t, func(t *testing.T) storetest.AccessStore { return openTest(t) })
}

// BenchmarkPlaceAll measures placing every device anew when a rule is added
// and deleted, on a fleet of CERTINV_BENCH_DEVICES devices (10,000 by
// default) under 10 rules (the sqlite benchmark's fixture).
func BenchmarkPlaceAll(b *testing.B) {
	n := 10000
	if v, err := strconv.Atoi(os.Getenv("CERTINV_BENCH_DEVICES")); err == nil && v > 0 {
		n = v
	}
	ctx := context.Background()
	db := openTest(b)
	c := storetest.NewCertificates(b, 1)[0]
	for start := 0; start < n; start += 1000 {
		var sets []certinv.DeviceSet
		for i := start; i < min(start+1000, n); i++ {
			s := certinv.DeviceSet{Device: certinv.Device{ID: fmt.Sprintf("%040x", i), Name: fmt.Sprintf("host%d.site%d.example.com", i, i%20), OS: []string{"Windows Server 2022", "Ubuntu 24.04", "macOS 15"}[i%3], CollectedAt: time.Unix(1, 0)},
				Links: []certinv.Link{{Path: "p", SHA256: c.SHA256}}}
			if i == 0 {
				s.New = []certinv.StoredCertificate{c.Stored()}
			}
			sets = append(sets, s)
		}
		if _, err := db.ApplyDeviceSets(ctx, sets); err != nil {
			b.Fatal(err)
		}
	}
	for i := range 9 {
		if _, err := db.AddGroupRule(ctx, "bench", certinv.GroupRule{GroupName: fmt.Sprint("site", i), Priority: i, DomainSuffix: fmt.Sprintf("site%d.example.com", i)}); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		r, err := db.AddGroupRule(ctx, "bench", certinv.GroupRule{GroupName: "windows", Priority: 0, OSGlob: "windows*"})
		if err != nil {
			b.Fatal(err)
		}
		if err := db.DeleteGroupRule(ctx, "bench", r.ID); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/2/float64(n), "ns/device/change")
}
