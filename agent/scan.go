package agent

import (
	"context"

	"github.com/certinv/certinv/scan"
)

// ScanCollector returns a Collector that finds the device's certificates
// with package scan, in opts' places (the system's default places when
// opts.Paths is empty).
func ScanCollector(opts scan.Options) Collector {
	return func(ctx context.Context, found func(path string, der []byte) error, warn func(path string, err error)) error {
		return scan.Scan(ctx, opts,
			func(f scan.Found) error { return found(f.Path, f.DER) },
			func(w scan.Warning) { warn(w.Path, w.Err) })
	}
}
