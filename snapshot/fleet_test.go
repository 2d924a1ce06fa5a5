package snapshot_test

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/certinv/certinv"
)

// This file holds the test doubles of the builder's two small interfaces:
// an inventory over a slice and a registry in memory. They are real
// implementations of the contracts in package certinv, as far as a snapshot
// build uses them.

// rowsSource is a certinv.InventoryReader over rows ordered as a store reads
// them. Each call of fn sees the same row struct and a CertificateJSON buffer
// that is overwritten afterwards, as a store's would be: a builder that keeps
// either after fn returns writes wrong records.
type rowsSource struct {
	version int64
	rows    []certinv.InventoryRow
	reads   atomic.Int32
	// afterRow, when set, is called after each row with its index; an error
	// stops the read.
	afterRow func(i int) error
}

func (s *rowsSource) Version(ctx context.Context) (int64, error) { return s.version, ctx.Err() }

func (s *rowsSource) ReadInventory(ctx context.Context, fn func(*certinv.InventoryRow) error) (int64, error) {
	s.reads.Add(1)
	var row certinv.InventoryRow
	var scratch []byte
	for i := range s.rows {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return 0, err
			}
		}
		row = s.rows[i]
		scratch = append(scratch[:0], s.rows[i].CertificateJSON...)
		row.CertificateJSON = scratch
		if err := fn(&row); err != nil {
			return 0, err
		}
		for j := range scratch {
			scratch[j] = 'X'
		}
		if s.afterRow != nil {
			if err := s.afterRow(i); err != nil {
				return 0, err
			}
		}
	}
	return s.version, nil
}

// memRegistry is a certinv.SnapshotRegistry in memory.
type memRegistry struct {
	mu         sync.Mutex
	now        func() time.Time
	published  []certinv.PublishedSnapshot // newest first
	retired    map[string]bool
	publishErr error
}

func (r *memRegistry) PublishSnapshot(ctx context.Context, s *certinv.Snapshot) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.publishErr != nil {
		return r.publishErr
	}
	if len(r.published) > 0 {
		r.published[0].SupersededAt = r.now()
	}
	r.published = slices.Insert(r.published, 0, certinv.PublishedSnapshot{Snapshot: *s})
	return nil
}

func (r *memRegistry) LatestSnapshot(ctx context.Context) (*certinv.Snapshot, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.published) == 0 {
		return nil, certinv.Errorf(certinv.ENotFound, "no snapshot yet")
	}
	s := r.published[0].Snapshot
	return &s, nil
}

func (r *memRegistry) Snapshot(ctx context.Context, id string) (*certinv.Snapshot, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.published {
		if p.ID == id {
			s := p.Snapshot
			return &s, nil
		}
	}
	return nil, certinv.Errorf(certinv.ENotFound, "snapshot %s is unknown or retired", id)
}

func (r *memRegistry) Snapshots(ctx context.Context) ([]certinv.PublishedSnapshot, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.published), nil
}

func (r *memRegistry) RetireSnapshot(ctx context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	i := slices.IndexFunc(r.published, func(p certinv.PublishedSnapshot) bool { return p.ID == id })
	if i < 0 {
		return errors.New("retire of an unknown snapshot")
	}
	r.published = slices.Delete(r.published, i, i+1)
	if r.retired == nil {
		r.retired = make(map[string]bool)
	}
	r.retired[id] = true
	return nil
}

// group is an RBAC group of a test fleet and how many records it has.
type group struct {
	id      int64
	name    string
	records int
}

// fleet returns rows for the given groups, ordered as a store reads them,
// made from a pool of realistic certificates: records of about 1 KB, with
// the repetition of a real fleet (most devices hold the same roots).
func fleet(seed uint64, groups []group) []certinv.InventoryRow {
	rows, _ := fleetRecords(seed, groups)
	return rows
}

// fleetRecords returns the rows of fleet and the same records as
// certinv.Records, with their certificates.
func fleetRecords(seed uint64, groups []group) ([]certinv.InventoryRow, []certinv.Record) {
	rng := rand.New(rand.NewPCG(seed, 1))
	certs := certPool(rng, 400)
	var rows []certinv.InventoryRow
	var recs []certinv.Record
	device := 0
	for _, g := range groups {
		for n := 0; n < g.records; device++ {
			id := sha1.Sum(fmt.Appendf(nil, "device-%d-%d", seed, device))
			deviceID := hex.EncodeToString(id[:])
			name := fmt.Sprintf("host-%06d.corp.contoso.com", device)
			perDevice := 50 + rng.IntN(150)
			for c := 0; c < perDevice && n < g.records; c++ {
				cert := &certs[rng.IntN(len(certs))]
				rows = append(rows, certinv.InventoryRow{
					GroupID:         g.id,
					GroupName:       g.name,
					DeviceID:        deviceID,
					DeviceName:      name,
					Path:            cert.path(c),
					CertificateJSON: cert.json,
				})
				r := &rows[len(rows)-1]
				recs = append(recs, certinv.Record{DeviceID: r.DeviceID, DeviceName: r.DeviceName, Path: r.Path,
					Certificate: cert.cert, RBACGroupID: g.id, RBACGroupName: g.name})
				n++
			}
		}
	}
	return rows, recs
}

type testCert struct {
	thumb string
	json  []byte
	cert  *certinv.Certificate
}

func (c *testCert) path(i int) string {
	switch i % 3 {
	case 0:
		return `LocalMachine\Root\` + c.thumb
	case 1:
		return `LocalMachine\CA\` + c.thumb
	default:
		return fmt.Sprintf("/etc/ssl/certs/ca-%03d.pem", i)
	}
}

func certPool(rng *rand.Rand, n int) []testCert {
	orgs := []string{"DigiCert Inc", "Let's Encrypt", "Contoso Ltd", "GlobalSign nv-sa", "Microsoft Corporation", "Internet Security Research Group"}
	algs := []string{"sha256RSA", "sha384ECDSA", "sha1RSA", "RSASSA-PSS", "Ed25519"}
	out := make([]testCert, n)
	for i := range out {
		der := fmt.Appendf(nil, "der-%d-%d", i, rng.Uint64())
		s1 := sha1.Sum(der)
		s256 := sha256.Sum256(der)
		org := orgs[rng.IntN(len(orgs))]
		cn := fmt.Sprintf("%s Root CA %d", strings.Fields(org)[0], i)
		nb := time.Date(2015+rng.IntN(10), time.Month(1+rng.IntN(12)), 1+rng.IntN(28), rng.IntN(24), 0, 0, 0, time.UTC)
		c := &certinv.Certificate{
			SHA256:             s256,
			Thumbprint:         strings.ToUpper(hex.EncodeToString(s1[:])),
			SignatureAlgorithm: algs[rng.IntN(len(algs))],
			KeySize:            []int{2048, 4096, 256, 384}[rng.IntN(4)],
			NotBefore:          nb,
			NotAfter:           nb.AddDate(10, 0, 0),
			SubjectType:        certinv.SubjectCA,
			SerialNumber:       strings.ToUpper(hex.EncodeToString(s256[:16])),
			IssuedTo:           fmt.Sprintf("CN=%s, OU=www.example.com, O=%s, C=US", cn, org),
			IssuedBy:           fmt.Sprintf("CN=%s, OU=www.example.com, O=%s, C=US", cn, org),
			Subject:            certinv.Name{CommonName: cn, Organization: org, OrganizationalUnit: "www.example.com", Country: "US"},
			Issuer:             certinv.Name{CommonName: cn, Organization: org, OrganizationalUnit: "www.example.com", Country: "US"},
			KeyUsage:           []string{"Digital Signature", "Certificate Signing", "Off-line CRL Signing", "CRL Signing"},
			ExtendedKeyUsage:   []string{"Server Authentication", "Client Authentication"},
			SelfSigned:         true,
		}
		out[i] = testCert{thumb: c.Thumbprint, json: certinv.AppendCertificateJSON(nil, c), cert: c}
	}
	return out
}

// lines returns the expected NDJSON line of each row, encoded by the domain
// package independently of the builder.
func lines(rows []certinv.InventoryRow) [][]byte {
	out := make([][]byte, len(rows))
	for i := range rows {
		r := &rows[i]
		out[i] = certinv.AppendRecordJSON(nil, r.DeviceID, r.DeviceName, r.Path, r.CertificateJSON, r.GroupID, r.GroupName)
	}
	return out
}

// clock is a fake clock that moves only when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
