package postgres

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/certinv/certinv"
	"github.com/jackc/pgx/v5"
)

// certCache remembers which certificates the store holds, by SHA-256.
// Certificate rows are never deleted nor changed, so an entry, once
// committed, stays true for every replica. Entries are added only after the
// transaction that saw or made them commits. The cache stops growing at
// maxCached entries: the certificates seen first, the fleet's root stores,
// are the ones most reports name.
type certCache struct {
	mu sync.RWMutex
	m  map[[32]byte]struct{}
}

const maxCached = 1 << 20

func (c *certCache) has(h [32]byte) bool {
	c.mu.RLock()
	_, ok := c.m[h]
	c.mu.RUnlock()
	return ok
}

func (c *certCache) add(hs map[[32]byte]bool) {
	if len(hs) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[[32]byte]struct{})
	}
	for h := range hs {
		if len(c.m) >= maxCached {
			return
		}
		c.m[h] = struct{}{}
	}
}

// held returns which of hashes the store holds: those in the cache, and
// those the database has. Those read from the database are added to learned.
func (db *DB) held(ctx context.Context, hashes [][32]byte, learned map[[32]byte]bool) (map[[32]byte]bool, error) {
	found := make(map[[32]byte]bool, len(hashes))
	var ask [][]byte
	for _, h := range hashes {
		if db.certs.has(h) {
			found[h] = true
		} else if !found[h] {
			ask = append(ask, h[:])
		}
	}
	if len(ask) == 0 {
		return found, nil
	}
	rows, err := db.pool.Query(ctx, `SELECT sha256 FROM certificates WHERE sha256 = ANY($1::bytea[])`, ask)
	if err != nil {
		return nil, fmt.Errorf("look up certificates: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		raw := rows.RawValues()[0]
		if len(raw) != 32 {
			return nil, errors.New("look up certificates: corrupt sha256 column")
		}
		h := [32]byte(raw)
		found[h] = true
		learned[h] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("look up certificates: %w", err)
	}
	return found, nil
}

// MissingCertificates returns those of hashes that the store does not hold,
// in their order, without duplicates.
func (db *DB) MissingCertificates(ctx context.Context, hashes [][32]byte) ([][32]byte, error) {
	learned := make(map[[32]byte]bool)
	found, err := db.held(ctx, hashes, learned)
	if err != nil {
		return nil, err
	}
	db.certs.add(learned) // read outside any write: committed rows
	var missing [][32]byte
	for _, h := range hashes {
		if !found[h] {
			missing = append(missing, h)
			found[h] = true // report a duplicate once
		}
	}
	return missing, nil
}

// deviceState is a device as stored, or as the sets applied so far in a
// batch left it.
type deviceState struct {
	exists    bool
	name, os  string
	collected int64 // Unix microseconds
	group     string
	digest    [32]byte
	links     []certinv.Link // the set to store, when linksChanged
	hasLinks  bool
	write     bool // the row is to be written
	linksNew  bool // the links are to be replaced by links
}

// ApplyDeviceSets replaces each device's set of links with the given one; see
// certinv.Inventory.
//
// It costs four round trips whatever the batch's size: BEGIN; the write
// lock with every device, group and unknown certificate the batch names;
// then, once the sets are checked and resolved in memory, every write as
// one pipelined batch of set-based statements (arrays through unnest);
// COMMIT.
func (db *DB) ApplyDeviceSets(ctx context.Context, sets []certinv.DeviceSet) ([]certinv.SetResult, error) {
	results := make([]certinv.SetResult, len(sets))
	learned := make(map[[32]byte]bool)
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		clear(learned)
		a, err := db.readBatchState(ctx, tx, sets, learned)
		if err != nil {
			return err
		}
		visible := false
		for i := range sets {
			r, setErr, err := a.apply(&sets[i])
			if err != nil {
				return fmt.Errorf("apply set of device %s: %w", sets[i].Device.ID, err)
			}
			results[i] = certinv.SetResult{Unchanged: r.unchanged && setErr == nil, Err: setErr}
			visible = visible || r.visible
		}
		return a.write(ctx, tx, visible)
	})
	if err != nil {
		return nil, err
	}
	for h := range learnedNew(results, sets) {
		learned[h] = true
	}
	db.certs.add(learned)
	return results, nil
}

// learnedNew returns the certificates that applied sets carried: committed
// now, so the cache may hold them.
func learnedNew(results []certinv.SetResult, sets []certinv.DeviceSet) map[[32]byte]bool {
	m := make(map[[32]byte]bool)
	for i := range sets {
		if results[i].Err != nil {
			continue
		}
		for _, c := range sets[i].New {
			m[c.SHA256] = true
		}
	}
	return m
}

// batchApplier checks and resolves a batch of sets in memory, against the
// state read at its start, and collects the writes.
type batchApplier struct {
	devices   map[string]*deviceState
	order     []string // device ids in first-touched order
	groups    map[string]bool
	newGroups []string
	held      map[[32]byte]bool
	newCerts  []*certinv.StoredCertificate
}

// readBatchState takes the write lock and reads, in one round trip, what
// the sets need: their devices, the groups, and which of their certificates
// the store holds.
func (db *DB) readBatchState(ctx context.Context, tx pgx.Tx, sets []certinv.DeviceSet, learned map[[32]byte]bool) (*batchApplier, error) {
	a := &batchApplier{
		devices: make(map[string]*deviceState, len(sets)),
		groups:  make(map[string]bool),
		held:    make(map[[32]byte]bool),
	}
	var ids []string
	var ask [][]byte
	asked := make(map[[32]byte]bool)
	for i := range sets {
		ids = append(ids, sets[i].Device.ID)
		for _, l := range sets[i].Links {
			if db.certs.has(l.SHA256) {
				a.held[l.SHA256] = true
			} else if !asked[l.SHA256] {
				asked[l.SHA256] = true
				ask = append(ask, l.SHA256[:])
			}
		}
	}
	b := &pgx.Batch{}
	b.Queue(`SELECT pg_advisory_xact_lock(`+lockKeySQL+`)`, lockWrite)
	b.Queue(`SELECT d.device_id, d.name, d.os, d.collected_at, coalesce(g.name, ''), d.links_digest,
			EXISTS (SELECT 1 FROM links WHERE device = d.id)
		FROM devices AS d LEFT JOIN groups AS g ON g.id = d.group_id
		WHERE d.device_id = ANY($1::text[])`, ids).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var id string
			var digest []byte
			d := &deviceState{exists: true}
			if err := rows.Scan(&id, &d.name, &d.os, &d.collected, &d.group, &digest, &d.hasLinks); err != nil {
				return fmt.Errorf("read devices: %w", err)
			}
			if len(digest) != 32 {
				return fmt.Errorf("read devices: device %s: corrupt links digest", id)
			}
			d.digest = [32]byte(digest)
			a.devices[id] = d
		}
		return rows.Err()
	})
	b.Queue(`SELECT name FROM groups`).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var name string
			if err := rows.Scan(&name); err != nil {
				return fmt.Errorf("read groups: %w", err)
			}
			a.groups[name] = true
		}
		return rows.Err()
	})
	if len(ask) > 0 {
		b.Queue(`SELECT sha256 FROM certificates WHERE sha256 = ANY($1::bytea[])`, ask).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				raw := rows.RawValues()[0]
				if len(raw) != 32 {
					return errors.New("look up certificates: corrupt sha256 column")
				}
				a.held[[32]byte(raw)] = true
				learned[[32]byte(raw)] = true
			}
			return rows.Err()
		})
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("read the batch's devices: %w", err)
	}
	return a, nil
}

type applyResult struct {
	unchanged bool // the links equal the stored ones
	visible   bool // a read would see different rows
}

// apply checks one set against the state so far and records its writes. A
// set that cannot be applied returns setErr and changes nothing; err is a
// set that no store could take (a certificate that is not what it claims).
func (a *batchApplier) apply(s *certinv.DeviceSet) (r applyResult, setErr, err error) {
	links := normalize(s.Links)
	digest := linksDigest(links)
	collected := s.Device.CollectedAt.UnixMicro()

	dev, ok := a.devices[s.Device.ID]
	if !ok {
		dev = &deviceState{}
	}
	if dev.exists && collected < dev.collected {
		return r, certinv.Errorf(certinv.EConflict,
			"the report of device %s was collected at %s, before the last report taken for it (%s); send a newer report",
			s.Device.ID, s.Device.CollectedAt.UTC().Format(certinv.TimeFormat),
			time.UnixMicro(dev.collected).UTC().Format(certinv.TimeFormat)), nil
	}

	group := dev.group
	createGroup := false
	if s.GroupName != "" {
		group = s.GroupName
		createGroup = !a.groups[group]
	}

	// The common case: the same set again. Only the device's fields change.
	if dev.exists && digest == dev.digest && !createGroup && group == dev.group {
		r.unchanged = true
		r.visible = s.Device.Name != dev.name && len(links) > 0
		a.touch(s.Device.ID, dev)
		dev.name, dev.os, dev.collected = s.Device.Name, s.Device.OS, collected
		return r, nil, nil
	}

	// Resolve every link to a held certificate or one that New carries.
	var unknown [][32]byte
	var carried []*certinv.StoredCertificate
	seen := make(map[[32]byte]bool, len(links))
	for _, l := range links {
		if seen[l.SHA256] || a.held[l.SHA256] {
			continue
		}
		seen[l.SHA256] = true
		if c := findNew(s.New, l.SHA256); c != nil {
			carried = append(carried, c)
		} else {
			unknown = append(unknown, l.SHA256)
		}
	}
	if len(unknown) > 0 {
		slices.SortFunc(unknown, func(x, y [32]byte) int { return bytes.Compare(x[:], y[:]) })
		return r, &certinv.UnknownCertificatesError{SHA256: unknown}, nil
	}
	for _, c := range carried {
		if sha256.Sum256(c.DER) != c.SHA256 {
			return r, nil, fmt.Errorf("new certificate %s: SHA256 is not the hash of its DER", hex.EncodeToString(c.SHA256[:]))
		}
		if len(c.JSON) == 0 {
			return r, nil, fmt.Errorf("new certificate %s: no JSON fragment", hex.EncodeToString(c.SHA256[:]))
		}
	}

	// Every check passed: record the writes.
	if createGroup {
		a.groups[group] = true
		a.newGroups = append(a.newGroups, group)
		// The first group turns every "None" into "Unassigned": count any
		// new group as a visible change.
		r.visible = true
	}
	for _, c := range carried {
		a.held[c.SHA256] = true
		a.newCerts = append(a.newCerts, c)
	}
	linksChanged := !dev.exists || digest != dev.digest
	r.unchanged = !linksChanged
	nameOrGroup := dev.exists && (s.Device.Name != dev.name || group != dev.group)
	r.visible = r.visible || (linksChanged && (len(links) > 0 || dev.exists)) || (nameOrGroup && len(links) > 0)

	a.touch(s.Device.ID, dev)
	dev.exists = true
	dev.name, dev.os, dev.collected, dev.group = s.Device.Name, s.Device.OS, collected, group
	if linksChanged {
		dev.digest = digest
		dev.links = slices.Clone(links)
		dev.linksNew = true
		dev.hasLinks = len(links) > 0
	}
	return r, nil, nil
}

// touch records that device id's row is to be written.
func (a *batchApplier) touch(id string, dev *deviceState) {
	if _, ok := a.devices[id]; !ok {
		a.devices[id] = dev
	}
	if !dev.write {
		dev.write = true
		a.order = append(a.order, id)
	}
}

// write sends every write of the batch in one pipelined round trip: new
// groups, new certificates, every touched device's row (an upsert), the
// links of the devices whose set changed (rows no longer wanted deleted,
// new ones inserted: a change of one certificate writes one row), and the
// version.
func (a *batchApplier) write(ctx context.Context, tx pgx.Tx, visible bool) error {
	b := &pgx.Batch{}
	if len(a.newGroups) > 0 {
		b.Queue(`INSERT INTO groups (name) SELECT n FROM unnest($1::text[]) WITH ORDINALITY AS g(n, i) ORDER BY i`, a.newGroups)
	}
	if len(a.newCerts) > 0 {
		var s256, s1, der, js [][]byte
		for _, c := range a.newCerts {
			sum := sha1.Sum(c.DER)
			s256, s1, der, js = append(s256, c.SHA256[:]), append(s1, sum[:]), append(der, c.DER), append(js, c.JSON)
		}
		b.Queue(`INSERT INTO certificates (sha256, sha1, der, json)
			SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::bytea[], $4::bytea[])`, s256, s1, der, js)
	}
	if len(a.order) > 0 {
		n := len(a.order)
		ids, names, oses, groups := make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
		collected, digests := make([]int64, 0, n), make([][]byte, 0, n)
		var linked []string
		var lDev, lPath []string
		var lHash [][]byte
		for _, id := range a.order {
			d := a.devices[id]
			ids, names, oses, groups = append(ids, id), append(names, d.name), append(oses, d.os), append(groups, d.group)
			collected, digests = append(collected, d.collected), append(digests, d.digest[:])
			if d.linksNew {
				linked = append(linked, id)
				for i := range d.links {
					lDev, lPath, lHash = append(lDev, id), append(lPath, d.links[i].Path), append(lHash, d.links[i].SHA256[:])
				}
			}
		}
		b.Queue(`INSERT INTO devices (device_id, name, os, collected_at, group_id, links_digest)
			SELECT w.device_id, w.name, w.os, w.collected_at, coalesce(g.id, 0), w.digest
			FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::bytea[])
				AS w(device_id, name, os, collected_at, group_name, digest)
			LEFT JOIN groups AS g ON g.name = w.group_name
			ON CONFLICT (device_id) DO UPDATE SET name = excluded.name, os = excluded.os,
				collected_at = excluded.collected_at, group_id = excluded.group_id,
				links_digest = excluded.links_digest`,
			ids, names, oses, collected, groups, digests)
		if len(linked) > 0 {
			b.Queue(`DELETE FROM links AS l USING (
					SELECT l.device, l.path, l.sha1, l.certificate FROM links AS l
					JOIN devices AS d ON d.id = l.device WHERE d.device_id = ANY($1::text[])
					EXCEPT `+wantedFrom(2)+`
				) AS gone
				WHERE l.device = gone.device AND l.path = gone.path AND l.sha1 = gone.sha1 AND l.certificate = gone.certificate`,
				linked, lDev, lPath, lHash)
			b.Queue(`INSERT INTO links (device, path, sha1, certificate) `+wantedFrom(1)+` ON CONFLICT DO NOTHING`,
				lDev, lPath, lHash)
		}
	}
	if visible {
		b.Queue(`UPDATE meta SET version = version + 1 WHERE id = 1`)
	}
	if b.Len() == 0 {
		return nil
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("write the batch: %w", err)
	}
	return nil
}

// wantedFrom is the query of wanted link rows with its three arrays from
// parameter $first on.
func wantedFrom(first int) string {
	return fmt.Sprintf(`SELECT d.id, w.path, c.sha1, c.id
		FROM unnest($%d::text[], $%d::text[], $%d::bytea[]) AS w(device_id, path, sha256)
		JOIN devices AS d ON d.device_id = w.device_id
		JOIN certificates AS c ON c.sha256 = w.sha256`, first, first+1, first+2)
}

// normalize returns links sorted by (path, sha256), without duplicates.
func normalize(links []certinv.Link) []certinv.Link {
	out := slices.Clone(links)
	slices.SortFunc(out, compareLinks)
	return slices.Compact(out)
}

func compareLinks(x, y certinv.Link) int {
	if c := strings.Compare(x.Path, y.Path); c != 0 {
		return c
	}
	return bytes.Compare(x.SHA256[:], y.SHA256[:])
}

// linksDigest is the SHA-256 of a normalized set of links: each path
// length-prefixed, then the certificate's hash (as the sqlite store makes it).
func linksDigest(links []certinv.Link) [32]byte {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	for _, l := range links {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(l.Path)))])
		h.Write([]byte(l.Path))
		h.Write(l.SHA256[:])
	}
	return [32]byte(h.Sum(nil))
}

func findNew(cs []certinv.StoredCertificate, h [32]byte) *certinv.StoredCertificate {
	for i := range cs {
		if cs[i].SHA256 == h {
			return &cs[i]
		}
	}
	return nil
}
