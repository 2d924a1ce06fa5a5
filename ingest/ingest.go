// Package ingest turns agents' reports into the inventory: it validates a
// report, resolves each certificate to its SHA-256, parses with certparse
// only the certificates the store does not hold yet, and replaces the
// device's set of links in one store call. The HTTP endpoint and
// `certinv seed` share it, so a report means the same whichever way it came.
package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/certinv/certinv"
	"github.com/certinv/certinv/certparse"
)

// MaxFutureSkew is how far in the future a report's CollectedAt may be: an
// agent's clock may run ahead a little, but a report from tomorrow would
// make every true report until then look stale.
const MaxFutureSkew = time.Hour

// Service ingests reports into a store.
type Service struct {
	Store certinv.Inventory
	Now   func() time.Time // nil means time.Now
	Log   *slog.Logger     // nil means no logging
}

// Ingest validates r and replaces its device's set of certificates with the
// report's. A report that cannot be taken returns a *certinv.Error (EInvalid
// or ETooLarge for a malformed report; EConflict for a stale one; a
// *certinv.UnknownCertificatesError when it names by hash certificates the
// server does not hold) and writes nothing. Certificates that fail to parse
// are listed in the result's Rejected, and the rest is stored.
func (s *Service) Ingest(ctx context.Context, r *certinv.Report) (*certinv.IngestResult, error) {
	results, errs, err := s.IngestBatch(ctx, []*certinv.Report{r})
	if err != nil {
		return nil, err
	}
	if errs[0] != nil {
		return nil, errs[0]
	}
	return results[0], nil
}

// IngestBatch ingests several reports in one store transaction, as Ingest
// does each. errs[i] says why report i was not taken (and results[i] is
// then nil); err is a failure of the store, after which nothing is written.
func (s *Service) IngestBatch(ctx context.Context, rs []*certinv.Report) (results []*certinv.IngestResult, errs []error, err error) {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	log := s.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	results = make([]*certinv.IngestResult, len(rs))
	errs = make([]error, len(rs))
	preps := make([]*prepared, len(rs))
	t := now()

	// Validate and hash every report; gather the hashes of all of them.
	var hashes [][32]byte
	seen := make(map[[32]byte]bool)
	for i, r := range rs {
		p, err := prepare(r, t)
		if err != nil {
			errs[i] = err
			continue
		}
		preps[i] = p
		for _, l := range p.links {
			if !seen[l.SHA256] {
				seen[l.SHA256] = true
				hashes = append(hashes, l.SHA256)
			}
		}
	}
	if !anyPrepared(preps) {
		return results, errs, nil
	}

	// Parse only what the store lacks, once across the batch.
	var missing [][32]byte
	if len(hashes) > 0 {
		missing, err = s.Store.MissingCertificates(ctx, hashes)
		if err != nil {
			return nil, nil, fmt.Errorf("ingest: %w", err)
		}
	}
	parsed := make(map[[32]byte]*parseResult, len(missing))
	for _, h := range missing {
		parsed[h] = nil
	}
	var sets []certinv.DeviceSet
	var setOf []int // sets[k] is the set of report setOf[k]
	for i, p := range preps {
		if p == nil {
			continue
		}
		set, res, err := p.resolve(parsed)
		if err != nil {
			errs[i] = err
			continue
		}
		for _, rej := range res.Rejected {
			log.InfoContext(ctx, "ingest: certificate rejected", "device", res.DeviceID, "index", rej.Index, "path", rej.Path, "reason", rej.Reason)
		}
		results[i] = res
		sets = append(sets, set)
		setOf = append(setOf, i)
	}
	if len(sets) == 0 {
		return results, errs, nil
	}

	applied, err := s.Store.ApplyDeviceSets(ctx, sets)
	if err != nil {
		return nil, nil, fmt.Errorf("ingest: %w", err)
	}
	for k, i := range setOf {
		if applied[k].Err != nil {
			errs[i], results[i] = applied[k].Err, nil
			continue
		}
		results[i].Unchanged = applied[k].Unchanged
		log.DebugContext(ctx, "ingest: report taken", "device", results[i].DeviceID,
			"stored", results[i].Stored, "new", results[i].NewCertificates, "unchanged", results[i].Unchanged)
	}
	return results, errs, nil
}

func anyPrepared(ps []*prepared) bool {
	for _, p := range ps {
		if p != nil {
			return true
		}
	}
	return false
}

// prepared is a valid report with every certificate hashed and its links
// de-duplicated.
type prepared struct {
	r     *certinv.Report
	links []certinv.Link
	index []int               // index[k] is the report position of links[k]
	der   map[[32]byte][]byte // DER by hash, for the certificates sent with it
}

// parseResult is a certificate parsed for the store, or why it could not be.
type parseResult struct {
	stored certinv.StoredCertificate
	reason string
}

// prepare validates r, hashes its certificates and de-duplicates its links.
func prepare(r *certinv.Report, now time.Time) (*prepared, error) {
	if r == nil {
		return nil, certinv.Errorf(certinv.EInvalid, "the report is empty")
	}
	if err := validateDevice(r, now); err != nil {
		return nil, err
	}
	if len(r.Certificates) > certinv.MaxCertificatesPerReport {
		return nil, certinv.Errorf(certinv.ETooLarge, "the report holds %d certificates; at most %d are allowed per device", len(r.Certificates), certinv.MaxCertificatesPerReport)
	}
	p := &prepared{r: r, links: make([]certinv.Link, 0, len(r.Certificates)), index: make([]int, 0, len(r.Certificates))}
	type key struct {
		path string
		sha  [32]byte
	}
	dup := make(map[key]bool, len(r.Certificates))
	for i := range r.Certificates {
		c := &r.Certificates[i]
		if err := validText(fmt.Sprintf("certificates[%d].path", i), c.Path, certinv.MaxPathBytes, true); err != nil {
			return nil, err
		}
		sum := c.SHA256
		switch {
		case len(c.DER) > certinv.MaxCertificateBytes:
			return nil, certinv.Errorf(certinv.ETooLarge, "certificates[%d].der is %d bytes; a certificate may have at most %d", i, len(c.DER), certinv.MaxCertificateBytes)
		case len(c.DER) > 0:
			sum = sha256.Sum256(c.DER)
			if c.SHA256 != ([32]byte{}) && c.SHA256 != sum {
				return nil, certinv.Errorf(certinv.EInvalid, "certificates[%d].sha256 is %s, but its der hashes to %s; send the sha256 of the der, or leave it out", i, hex.EncodeToString(c.SHA256[:]), hex.EncodeToString(sum[:]))
			}
			if p.der == nil {
				p.der = make(map[[32]byte][]byte)
			}
			p.der[sum] = c.DER
		case sum == [32]byte{}:
			return nil, certinv.Errorf(certinv.EInvalid, "certificates[%d] has neither der nor sha256; send one of them", i)
		}
		k := key{c.Path, sum}
		if dup[k] {
			continue
		}
		dup[k] = true
		p.links = append(p.links, certinv.Link{Path: c.Path, SHA256: sum})
		p.index = append(p.index, i)
	}
	return p, nil
}

// resolve builds the report's device set. parsed holds an entry for every
// hash the store lacks; resolve parses those it has the DER of, once.
func (p *prepared) resolve(parsed map[[32]byte]*parseResult) (certinv.DeviceSet, *certinv.IngestResult, error) {
	res := &certinv.IngestResult{DeviceID: p.r.Device.ID}
	set := certinv.DeviceSet{Device: p.r.Device, GroupName: p.r.GroupName, Links: make([]certinv.Link, 0, len(p.links))}
	var unknown [][32]byte
	added := make(map[[32]byte]bool)
	for k, l := range p.links {
		pr, isMissing := parsed[l.SHA256]
		if !isMissing {
			set.Links = append(set.Links, l)
			continue
		}
		if pr == nil {
			der, ok := p.der[l.SHA256]
			if !ok {
				if !added[l.SHA256] {
					added[l.SHA256] = true
					unknown = append(unknown, l.SHA256)
				}
				continue
			}
			pr = parse(l.SHA256, der)
			parsed[l.SHA256] = pr
		}
		if pr.reason != "" {
			i := p.index[k]
			res.Rejected = append(res.Rejected, certinv.RejectedCertificate{Index: i, Path: p.r.Certificates[i].Path, Reason: pr.reason})
			continue
		}
		set.Links = append(set.Links, l)
		if !added[l.SHA256] {
			added[l.SHA256] = true
			set.New = append(set.New, pr.stored)
		}
	}
	if len(unknown) > 0 {
		return set, nil, &certinv.UnknownCertificatesError{SHA256: unknown}
	}
	res.Stored = len(set.Links)
	res.NewCertificates = len(set.New)
	return set, res, nil
}

// parse parses one certificate the store lacks.
func parse(sum [32]byte, der []byte) *parseResult {
	frag, err := certparse.Fragment(der)
	if err != nil {
		return &parseResult{reason: certinv.MessageOf(err)}
	}
	return &parseResult{stored: certinv.StoredCertificate{SHA256: sum, DER: der, JSON: frag}}
}

// validateDevice checks the report's device and group.
func validateDevice(r *certinv.Report, now time.Time) error {
	d := &r.Device
	if !certinv.ValidDeviceID(d.ID) {
		return certinv.Errorf(certinv.EInvalid, "deviceId %q is not a device id: it must be 40 lowercase hexadecimal characters", truncate(d.ID))
	}
	if err := validText("deviceName", d.Name, certinv.MaxDeviceNameBytes, true); err != nil {
		return err
	}
	if err := validText("osPlatform", d.OS, certinv.MaxOSBytes, false); err != nil {
		return err
	}
	if err := validText("rbacGroupName", r.GroupName, certinv.MaxGroupNameBytes, false); err != nil {
		return err
	}
	if r.GroupName == certinv.GroupNone || r.GroupName == certinv.GroupUnassigned {
		return certinv.Errorf(certinv.EInvalid, "rbacGroupName %q is reserved for devices without a group; name another group, or send none", r.GroupName)
	}
	if d.CollectedAt.IsZero() {
		return certinv.Errorf(certinv.EInvalid, "collectedAt is missing; send the time the report was collected")
	}
	if limit := now.Add(MaxFutureSkew); d.CollectedAt.After(limit) {
		return certinv.Errorf(certinv.EInvalid, "collectedAt %s is in the future; it may be at most %v ahead of the server's clock (%s)",
			d.CollectedAt.UTC().Format(time.RFC3339), MaxFutureSkew, now.UTC().Format(time.RFC3339))
	}
	return nil
}

// validText checks a text field: valid UTF-8, no control characters, at
// most max bytes, and not empty when required.
func validText(field, s string, max int, required bool) error {
	if s == "" {
		if required {
			return certinv.Errorf(certinv.EInvalid, "%s is empty; it is required", field)
		}
		return nil
	}
	if len(s) > max {
		return certinv.Errorf(certinv.EInvalid, "%s is %d bytes long; at most %d are allowed", field, len(s), max)
	}
	if !utf8.ValidString(s) {
		return certinv.Errorf(certinv.EInvalid, "%s is not valid UTF-8", field)
	}
	for i, c := range s {
		if unicode.IsControl(c) {
			return certinv.Errorf(certinv.EInvalid, "%s holds the control character %U at byte %d; control characters are not allowed", field, c, i)
		}
	}
	return nil
}

// truncate shortens s for an error message.
func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
