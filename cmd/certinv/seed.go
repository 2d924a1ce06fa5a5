package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/certinv/certinv"
	"github.com/certinv/certinv/ingest"
	"github.com/certinv/certinv/synth"
)

func runSeed(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("seed", stderr)
	var so storeOptions
	so.register(fs)
	devices := fs.Int("devices", 0, "number of devices to make (required)")
	certs := fs.Int("certs-per-device", 60, "certificates per device")
	groups := fs.Int("groups", 4, "RBAC device groups (0: the organization has none)")
	seed := fs.Int64("seed", 1, "seed: the same seed on the same day makes the same fleet")
	batch := fs.Int("batch", 200, "devices per ingest transaction")
	if err := parse(fs, args); err != nil {
		return err
	}
	switch {
	case *devices < 1 || *devices > 10_000_000:
		return &usageError{"seed: --devices must be between 1 and 10000000"}
	case *certs < 1 || *certs > certinv.MaxCertificatesPerReport:
		return &usageError{fmt.Sprintf("seed: --certs-per-device must be between 1 and %d", certinv.MaxCertificatesPerReport)}
	case *groups < 0 || *groups > 1000:
		return &usageError{"seed: --groups must be between 0 and 1000"}
	case *batch < 1 || *batch > 10_000:
		return &usageError{"seed: --batch must be between 1 and 10000"}
	}
	if err := so.check("seed", needs{}); err != nil {
		return err
	}
	log, _ := newLogger(stderr, "warn")
	e, err := openEnv(ctx, &so, needs{}, log)
	if err != nil {
		return err
	}
	defer e.Close()
	fleet := &synth.Fleet{
		Devices:        *devices,
		CertsPerDevice: *certs,
		Groups:         *groups,
		Seed:           *seed,
		Now:            time.Now().UTC().Truncate(24 * time.Hour),
	}
	fmt.Fprintf(stdout, "seeding %d devices with about %d certificates each into %s\n", *devices, *certs, e.where)
	n, err := seedFleet(ctx, e, fleet, *batch, stdout)
	if err != nil {
		return err
	}
	devs, certsN, links, err := e.store.Stats(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "seeded %d devices; the store holds %d devices, %d distinct certificates, %d records\n", n, devs, certsN, links)
	return nil
}

// seedFleet pushes fleet through the ingest service in batches, showing
// progress on w every two seconds. It returns the number of devices taken.
func seedFleet(ctx context.Context, e *env, fleet *synth.Fleet, batchSize int, w io.Writer) (int, error) {
	svc := &ingest.Service{Store: e.store, Now: time.Now, Log: e.log}
	start := time.Now()
	lastShown := start
	var done, certs int
	batch := make([]*certinv.Report, 0, batchSize)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		_, errs, err := svc.IngestBatch(ctx, batch)
		if err != nil {
			return fmt.Errorf("ingest: %w", err)
		}
		for i, err := range errs {
			if err != nil {
				return fmt.Errorf("ingest device %s: %w", batch[i].Device.ID, err)
			}
		}
		for _, r := range batch {
			certs += len(r.Certificates)
		}
		done += len(batch)
		batch = batch[:0]
		if now := time.Now(); now.Sub(lastShown) >= 2*time.Second || done == fleet.Devices {
			lastShown = now
			el := now.Sub(start).Seconds()
			fmt.Fprintf(w, "  %d/%d devices, %d records (%.0f devices/s, %s elapsed)\n",
				done, fleet.Devices, certs, float64(done)/el, now.Sub(start).Round(time.Second))
		}
		return nil
	}
	err := fleet.Generate(ctx, runtime.GOMAXPROCS(0), func(r *certinv.Report) error {
		batch = append(batch, r)
		if len(batch) == batchSize {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil && errors.Is(err, context.Canceled) {
		return done, fmt.Errorf("seed interrupted after %d devices (they are stored): %w", done, err)
	}
	return done, err
}
