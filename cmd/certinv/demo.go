package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/certinv/certinv/synth"
)

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", stderr)
	o := serveOptions{store: storeOptions{data: "certinv-demo"}}
	o.register(fs)
	devices := fs.Int("devices", 1000, "devices of the demo fleet, made when the data folder holds none")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := o.check("demo"); err != nil {
		return err
	}
	if *devices < 1 || *devices > 1_000_000 {
		return &usageError{"demo: --devices must be between 1 and 1000000"}
	}
	log, err := newLogger(stderr, o.logLevel)
	if err != nil {
		return err
	}
	e, err := openEnv(ctx, &o.store, needs{bucket: true, keys: true}, log)
	if err != nil {
		return err
	}
	defer e.Close()

	have, _, _, err := e.store.Stats(ctx)
	if err != nil {
		return err
	}
	if have == 0 {
		fleet := &synth.Fleet{Devices: *devices, CertsPerDevice: 60, Groups: 4, Seed: 1, Now: time.Now().UTC().Truncate(24 * time.Hour)}
		fmt.Fprintf(stdout, "making a demo fleet of %d devices in %s\n", *devices, e.where)
		if _, err := seedFleet(ctx, e, fleet, 200, stdout); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stdout, "%s already holds %d devices: serving them\n", e.where, have)
	}

	return serve(ctx, e, &o, func(_, publicURL string) {
		self := "certinv"
		if exe, err := os.Executable(); err == nil && filepath.Base(filepath.Dir(exe)) != "exe" {
			self = exe // an installed binary; `go run` builds into a temporary .../exe/ folder
		} else {
			self = "go run ./cmd/certinv"
		}
		fmt.Fprintf(stdout, `
certinv is serving the demo fleet at %[1]s (Ctrl-C stops it).
The first snapshot is built now; /healthz answers 200 once it is published.

Get a token (valid one hour) and fetch the first page of the inventory:

  TOKEN=$(%[2]s token %[3]s --role Vulnerability.Read.All)
  curl -sH "Authorization: Bearer $TOKEN" '%[1]s/api/machines/CertificateAssessmentByMachine?pageSize=2'

Follow "@odata.nextLink" for the next page. The same snapshot as gzip files:

  curl -sH "Authorization: Bearer $TOKEN" '%[1]s/api/machines/CertificateAssessmentExport?sasValidHours=1'

Agents report with the enrollment secret in %[4]s (see docs/API.md).
`, publicURL, self, o.store.commandFlags(), e.keys.EnrollmentSecretPath())
	})
}
