// Package synth makes a realistic, deterministic synthetic fleet: the
// reports that the agents of N devices would send, for load tests, demos and
// `certinv seed`. The same Fleet always yields the same bytes.
//
// Every device holds a large subset of the public roots of a real CA bundle
// (embedded, so every machine makes the same fleet) in its operating
// system's stores, the organization's internal authorities, and leaf
// certificates with the variety a real fleet has: expired, expiring within
// 30, 60 and 90 days, not yet valid; SHA-1, MD5 and RSASSA-PSS signatures
// besides SHA-2 RSA, ECDSA and Ed25519 ones; RSA 1024 to 4096, ECDSA P-256
// and P-384 and Ed25519 keys; self-signed leaves; server, client,
// code-signing, e-mail and time-stamping purposes; certificates shared by
// many devices (a vendor's code-signing certificate, a wildcard) and
// certificates of one device.
//
// Signatures are deterministic (PKCS #1 v1.5, RFC 6979 ECDSA, Ed25519, PSS
// with a seeded salt), keys come from a fixed pool made once per process,
// and each device draws from its own random stream seeded by (seed, index),
// so that devices are made in parallel and delivered in order.
package synth

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/certinv/certinv"
)

// DefaultCertsPerDevice is the number of certificates of a device when
// Fleet.CertsPerDevice is zero.
const DefaultCertsPerDevice = 60

// Fleet describes a synthetic fleet. The same Fleet yields byte-identical
// reports.
type Fleet struct {
	Devices        int
	CertsPerDevice int   // certificates (records) per device; 0 means DefaultCertsPerDevice
	Groups         int   // number of RBAC groups; 0 = the organization has no groups
	Seed           int64 // selects the fleet: device ids, names, certificates
	// Now is the reference time of validity windows and collection times.
	// Callers pass time.Now() truncated to the day, so that a fixed seed on
	// a given day yields the same bytes. It must not be zero.
	Now time.Time
}

// state is what every device of a fleet is made from.
type state struct {
	seed       int64
	perDevice  int
	now        time.Time
	keys       *keyPool
	roots      []*rootCert
	pki        *pki
	groups     []string
	nameOffset uint64
	shared     []sharedLeaf
}

func (f *Fleet) validate() error {
	switch {
	case f.Devices < 0:
		return certinv.Errorf(certinv.EInvalid, "devices must be 0 or more, not %d", f.Devices)
	case f.CertsPerDevice < 0 || f.CertsPerDevice > certinv.MaxCertificatesPerReport:
		return certinv.Errorf(certinv.EInvalid, "certificates per device must be between 1 and %d (0 for %d), not %d",
			certinv.MaxCertificatesPerReport, DefaultCertsPerDevice, f.CertsPerDevice)
	case f.Groups < 0 || f.Groups > maxGroups:
		return certinv.Errorf(certinv.EInvalid, "groups must be between 0 and %d, not %d", maxGroups, f.Groups)
	case f.Now.IsZero():
		return certinv.Errorf(certinv.EInvalid, "the fleet's reference time (Now) is not set")
	}
	return nil
}

// maxGroups bounds Fleet.Groups: far more than an organization has.
const maxGroups = 10000

func newState(f *Fleet) (*state, error) {
	keys, err := loadPool()
	if err != nil {
		return nil, fmt.Errorf("synth: make key pool: %w", err)
	}
	roots, err := loadRoots()
	if err != nil {
		return nil, fmt.Errorf("synth: load ca bundle: %w", err)
	}
	now := f.Now.UTC().Truncate(time.Second)
	p, err := newPKI(keys, f.Seed, now)
	if err != nil {
		return nil, fmt.Errorf("synth: make authorities: %w", err)
	}
	perDevice := f.CertsPerDevice
	if perDevice == 0 {
		perDevice = DefaultCertsPerDevice
	}
	s := &state{
		seed:       f.Seed,
		perDevice:  perDevice,
		now:        now,
		keys:       keys,
		roots:      roots,
		pki:        p,
		groups:     groupNames(f.Groups),
		nameOffset: newRNG(f.Seed, "names", 0).uint64() % base36Pow7,
	}
	if s.shared, err = newSharedPool(s); err != nil {
		return nil, fmt.Errorf("synth: make shared leaves: %w", err)
	}
	return s, nil
}

// Generate calls fn for each device's report, in device order, from a
// pipeline of workers goroutines (at least one) that yields the same
// sequence whatever their number. It stops at the first error of fn, which
// it returns, or when ctx is done.
//
// Each report and its Certificates slice are fn's to keep. DER slices may be
// shared between reports (a root is the same bytes on every device): fn
// must not modify them.
func (f *Fleet) Generate(ctx context.Context, workers int, fn func(*certinv.Report) error) error {
	if err := f.validate(); err != nil {
		return err
	}
	s, err := newState(f)
	if err != nil {
		return err
	}
	workers = max(workers, 1)

	type result struct {
		report *certinv.Report
		err    error
	}
	type job struct {
		index int
		out   chan<- result
	}
	g, ctx := errgroup.WithContext(ctx)
	jobs := make(chan job)
	// order holds each device's result channel in device order; its
	// capacity bounds the reports made ahead of fn.
	order := make(chan chan result, 4*workers)

	g.Go(func() error {
		defer close(jobs)
		defer close(order)
		for i := 0; i < f.Devices; i++ {
			out := make(chan result, 1)
			select {
			case order <- out:
			case <-ctx.Done():
				return nil
			}
			select {
			case jobs <- job{i, out}:
			case <-ctx.Done():
				return nil
			}
		}
		return nil
	})
	for range workers {
		g.Go(func() error {
			for j := range jobs {
				r, err := s.report(j.index)
				j.out <- result{r, err}
			}
			return nil
		})
	}
	g.Go(func() error {
		for out := range order {
			if err := ctx.Err(); err != nil {
				return err
			}
			var res result
			select {
			case res = <-out:
			case <-ctx.Done():
				return ctx.Err()
			}
			if res.err != nil {
				return res.err
			}
			if err := fn(res.report); err != nil {
				return err
			}
		}
		return ctx.Err()
	})
	return g.Wait()
}

// report makes the report of the index-th device.
func (s *state) report(index int) (*certinv.Report, error) {
	r := newRNG(s.seed, "device", uint64(index))
	d := describe(s.seed, s.nameOffset, index, r)
	rep := &certinv.Report{
		Device: certinv.Device{
			ID:          d.id,
			Name:        d.fqdn,
			OS:          d.os,
			CollectedAt: s.now.Add(-time.Duration(r.between(60, 86399)) * time.Second),
		},
		GroupName: group(d, s.groups, r),
	}
	b := &builder{s: s, d: d, r: r, out: make([]certinv.ReportedCertificate, 0, s.perDevice)}

	// A quarter of the device's certificates are its own and the
	// organization's; the rest are public roots. The authorities cost no
	// signature but the leaves do, so the leaves get at least half of that
	// quarter.
	budget := (s.perDevice + 3) / 4
	cas := b.caEntries()
	b.leafBudget = budget - min(len(cas), budget/2)
	switch d.family {
	case windows:
		b.windowsLeaves()
	case debian, rhel:
		b.linuxLeaves()
	case macOS:
		b.macLeaves()
	}
	for b.room() {
		b.extra()
	}
	for _, e := range cas {
		if len(b.out) >= budget {
			break
		}
		b.add(e.path, e.cert)
	}
	// Past what the root stores hold, the rest are more leaves.
	if rest := b.roots(s.perDevice - len(b.out)); rest > 0 {
		b.leafBudget = b.leaves + rest
		for b.room() {
			b.extra()
		}
	}
	if b.err != nil {
		return nil, fmt.Errorf("synth: device %d: %w", index, b.err)
	}
	rep.Certificates = b.out
	return rep, nil
}
