package sqlite

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/certinv/certinv"
)

// certRef is a stored certificate as links name it.
type certRef struct {
	id   int64
	sha1 [20]byte
}

// lookupChunk is the most hashes one lookup statement carries. Statements
// are prepared for powers of two up to it, the last chunk padded by
// repeating a hash, so a handful of statements serve every size.
const lookupChunk = 256

func lookupSQL(n int) string {
	return `SELECT sha256, id, sha1 FROM certificates WHERE sha256 IN (?` + strings.Repeat(",?", n-1) + `)`
}

// insertLinksChunk is the most rows one link insert carries; a set is
// inserted in chunks of powers of two, which needs no padding.
const insertLinksChunk = 64

func insertLinksSQL(n int) string {
	return `INSERT INTO links (device, path, sha1, certificate) VALUES (?,?,?,?)` + strings.Repeat(",(?,?,?,?)", n-1)
}

// maxCached bounds the in-process cache of stored certificates (about
// 100 bytes an entry).
const maxCached = 1 << 18

// lookup adds to found the stored certificates among hashes, and to learned
// those it had to read from the database. It runs on tx when tx is not nil,
// on the reader pool otherwise.
func (db *DB) lookup(ctx context.Context, tx *sql.Tx, hashes [][32]byte, found, learned map[[32]byte]certRef) error {
	pool := db.reader
	if tx != nil {
		pool = db.writer
	}
	uncached := hashes[:0:0]
	for _, h := range hashes {
		if r, ok := db.certs.Get(h); ok {
			found[h] = r
		} else {
			uncached = append(uncached, h)
		}
	}
	hashes = uncached
	args := make([]any, 0, min(len(hashes), lookupChunk))
	for start := 0; start < len(hashes); start += lookupChunk {
		chunk := hashes[start:min(start+lookupChunk, len(hashes))]
		size := 1
		for size < len(chunk) {
			size *= 2
		}
		stmt, err := db.stmt(ctx, pool, lookupSQL(size))
		if err != nil {
			return err
		}
		if tx != nil {
			stmt = tx.StmtContext(ctx, stmt)
		}
		args = args[:0]
		for i := range chunk {
			args = append(args, chunk[i][:])
		}
		for len(args) < size {
			args = append(args, args[len(args)-1])
		}
		if err := scanRefs(ctx, stmt, args, found, learned); err != nil {
			return fmt.Errorf("look up certificates: %w", err)
		}
	}
	return nil
}

func scanRefs(ctx context.Context, stmt *sql.Stmt, args []any, found, learned map[[32]byte]certRef) error {
	rows, err := stmt.QueryContext(ctx, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	var h, s1 sql.RawBytes
	for rows.Next() {
		var ref certRef
		if err := rows.Scan(&h, &ref.id, &s1); err != nil {
			return err
		}
		if len(h) != 32 || len(s1) != 20 {
			return fmt.Errorf("certificate %d: corrupt hash column", ref.id)
		}
		copy(ref.sha1[:], s1)
		found[[32]byte(h)] = ref
		learned[[32]byte(h)] = ref
	}
	return rows.Err()
}

// MissingCertificates returns those of hashes that the store does not hold,
// in their order, without duplicates.
func (db *DB) MissingCertificates(ctx context.Context, hashes [][32]byte) ([][32]byte, error) {
	found := make(map[[32]byte]certRef, len(hashes))
	learned := make(map[[32]byte]certRef)
	if err := db.lookup(ctx, nil, hashes, found, learned); err != nil {
		return nil, err
	}
	db.certs.Add(learned) // read outside any write: committed rows
	var missing [][32]byte
	for _, h := range hashes {
		if _, ok := found[h]; !ok {
			missing = append(missing, h)
			found[h] = certRef{} // report a duplicate once
		}
	}
	return missing, nil
}

// ApplyDeviceSets replaces each device's set of links with the given one; see
// certinv.Inventory.
func (db *DB) ApplyDeviceSets(ctx context.Context, sets []certinv.DeviceSet) ([]certinv.SetResult, error) {
	results := make([]certinv.SetResult, len(sets))
	a := applier{db: db, learned: make(map[[32]byte]certRef)}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		a.tx = tx
		visible := false
		for i := range sets {
			r, setErr, err := a.apply(ctx, &sets[i])
			if err != nil {
				return fmt.Errorf("apply set of device %s: %w", sets[i].Device.ID, err)
			}
			results[i] = certinv.SetResult{Unchanged: r.unchanged && setErr == nil, Err: setErr}
			visible = visible || r.visible
		}
		if visible {
			if _, err := tx.ExecContext(ctx, `UPDATE meta SET version = version + 1 WHERE id = 1`); err != nil {
				return fmt.Errorf("bump inventory version: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	db.certs.Add(a.learned)
	return results, nil
}

// applier applies device sets within one write transaction, reusing its
// buffers from set to set.
type applier struct {
	db      *DB
	tx      *sql.Tx
	links   []certinv.Link
	hashes  [][32]byte
	found   map[[32]byte]certRef
	learned map[[32]byte]certRef // certificates read or written, for the cache after commit
	args    []any
}

type applyResult struct {
	unchanged bool // the links equal the stored ones
	visible   bool // a read would see different rows
}

// storedDevice is a device row.
type storedDevice struct {
	id          int64
	name, os    string
	collectedAt int64
	groupID     int64
	digest      []byte
}

// The statements of the writer, prepared at Open: the writer's one
// connection is busy with the transaction when they are used.
const (
	sqlDevice   = `SELECT id, name, os, collected_at, group_id, links_digest FROM devices WHERE device_id = ?`
	sqlGroup    = `SELECT id FROM groups WHERE name = ?`
	sqlTouch    = `UPDATE devices SET name = ?, os = ?, collected_at = ? WHERE id = ?`
	sqlNewgroup = `INSERT INTO groups (name) VALUES (?) RETURNING id`
	sqlUpdate   = `UPDATE devices SET name = ?, os = ?, collected_at = ?, group_id = ?, links_digest = ? WHERE id = ?`
	sqlInsert   = `INSERT INTO devices (device_id, name, os, collected_at, group_id, links_digest) VALUES (?, ?, ?, ?, ?, ?) RETURNING id`
	sqlNewcert  = `INSERT INTO certificates (sha256, sha1, der, json) VALUES (?, ?, ?, ?) RETURNING id`
	sqlLinks    = `SELECT path, sha1, certificate FROM links WHERE device = ?`
	sqlUnlink   = `DELETE FROM links WHERE device = ? AND path = ? AND sha1 = ? AND certificate = ?`
)

// writerStatements returns the SQL of every statement the writer uses.
func writerStatements() []string {
	qs := []string{sqlDevice, sqlGroup, sqlTouch, sqlNewgroup, sqlUpdate, sqlInsert, sqlNewcert, sqlLinks, sqlUnlink}
	for n := 1; n <= lookupChunk; n *= 2 {
		qs = append(qs, lookupSQL(n))
	}
	for n := 1; n <= insertLinksChunk; n *= 2 {
		qs = append(qs, insertLinksSQL(n))
	}
	return qs
}

func (a *applier) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	s, err := a.db.stmt(ctx, a.db.writer, query)
	if err != nil {
		return nil, err
	}
	return a.tx.StmtContext(ctx, s), nil
}

// apply applies one set. A set that cannot be applied returns setErr and
// writes nothing; err is a failure of the database.
func (a *applier) apply(ctx context.Context, s *certinv.DeviceSet) (r applyResult, setErr, err error) {
	links := a.normalize(s.Links)
	digest := linksDigest(links)
	collected := s.Device.CollectedAt.UnixMicro()

	// The device as stored.
	var dev storedDevice
	exists := true
	get, err := a.stmt(ctx, sqlDevice)
	if err != nil {
		return r, nil, err
	}
	err = get.QueryRowContext(ctx, s.Device.ID).Scan(&dev.id, &dev.name, &dev.os, &dev.collectedAt, &dev.groupID, &dev.digest)
	if errors.Is(err, sql.ErrNoRows) {
		exists, err = false, nil
	}
	if err != nil {
		return r, nil, fmt.Errorf("read device: %w", err)
	}
	if exists && collected < dev.collectedAt {
		return r, certinv.Errorf(certinv.EConflict,
			"the report of device %s was collected at %s, before the last report taken for it (%s); send a newer report",
			s.Device.ID, s.Device.CollectedAt.UTC().Format(certinv.TimeFormat),
			timeOfMicro(dev.collectedAt).Format(certinv.TimeFormat)), nil
	}

	// The group the device goes to.
	groupID := dev.groupID // 0 for a new device
	createGroup := false
	if s.GroupName != "" {
		get, err := a.stmt(ctx, sqlGroup)
		if err != nil {
			return r, nil, err
		}
		err = get.QueryRowContext(ctx, s.GroupName).Scan(&groupID)
		if errors.Is(err, sql.ErrNoRows) {
			createGroup, err = true, nil
		}
		if err != nil {
			return r, nil, fmt.Errorf("read group: %w", err)
		}
	}

	// The common case: the same set again. Only the device's fields change.
	if exists && bytes.Equal(digest[:], dev.digest) && !createGroup && groupID == dev.groupID {
		upd, err := a.stmt(ctx, sqlTouch)
		if err != nil {
			return r, nil, err
		}
		if _, err := upd.ExecContext(ctx, s.Device.Name, s.Device.OS, collected, dev.id); err != nil {
			return r, nil, fmt.Errorf("update device: %w", err)
		}
		r.unchanged = true
		r.visible = s.Device.Name != dev.name && len(links) > 0
		return r, nil, nil
	}

	// Resolve every link to a stored certificate or one that New carries.
	a.hashes = a.hashes[:0]
	for i, l := range links {
		if i == 0 || l.SHA256 != links[i-1].SHA256 {
			a.hashes = append(a.hashes, l.SHA256)
		}
	}
	slices.SortFunc(a.hashes, func(x, y [32]byte) int { return bytes.Compare(x[:], y[:]) })
	a.hashes = slices.Compact(a.hashes)
	clear(a.found)
	if a.found == nil {
		a.found = make(map[[32]byte]certRef, len(a.hashes))
	}
	if err := a.db.lookup(ctx, a.tx, a.hashes, a.found, a.learned); err != nil {
		return r, nil, err
	}
	var toInsert []*certinv.StoredCertificate
	var unknown [][32]byte
	for _, h := range a.hashes {
		if _, ok := a.found[h]; ok {
			continue
		}
		if c := findNew(s.New, h); c != nil {
			toInsert = append(toInsert, c)
		} else {
			unknown = append(unknown, h)
		}
	}
	if len(unknown) > 0 {
		return r, &certinv.UnknownCertificatesError{SHA256: unknown}, nil
	}

	// Every check passed: write.
	if createGroup {
		ins, err := a.stmt(ctx, sqlNewgroup)
		if err != nil {
			return r, nil, err
		}
		if err := ins.QueryRowContext(ctx, s.GroupName).Scan(&groupID); err != nil {
			return r, nil, fmt.Errorf("create group: %w", err)
		}
		// The first group turns every "None" into "Unassigned": count any
		// new group as a visible change.
		r.visible = true
	}
	for _, c := range toInsert {
		ref, err := a.insertCertificate(ctx, c)
		if err != nil {
			return r, nil, err
		}
		a.found[c.SHA256] = ref
		a.learned[c.SHA256] = ref
	}

	if exists {
		upd, err := a.stmt(ctx, sqlUpdate)
		if err != nil {
			return r, nil, err
		}
		if _, err := upd.ExecContext(ctx, s.Device.Name, s.Device.OS, collected, groupID, digest[:], dev.id); err != nil {
			return r, nil, fmt.Errorf("update device: %w", err)
		}
	} else {
		ins, err := a.stmt(ctx, sqlInsert)
		if err != nil {
			return r, nil, err
		}
		if err := ins.QueryRowContext(ctx, s.Device.ID, s.Device.Name, s.Device.OS, collected, groupID, digest[:]).Scan(&dev.id); err != nil {
			return r, nil, fmt.Errorf("insert device: %w", err)
		}
	}

	linksChanged := !exists || !bytes.Equal(digest[:], dev.digest)
	if linksChanged {
		if err := a.replaceLinks(ctx, dev.id, exists, links); err != nil {
			return r, nil, err
		}
	}
	r.unchanged = !linksChanged
	nameOrGroup := exists && (s.Device.Name != dev.name || groupID != dev.groupID)
	r.visible = r.visible || (linksChanged && (len(links) > 0 || exists)) || (nameOrGroup && len(links) > 0)
	return r, nil, nil
}

// normalize returns links sorted by (path, sha256), without duplicates, in
// a buffer of a's.
func (a *applier) normalize(links []certinv.Link) []certinv.Link {
	a.links = append(a.links[:0], links...)
	slices.SortFunc(a.links, compareLinks)
	a.links = slices.Compact(a.links)
	return a.links
}

func compareLinks(x, y certinv.Link) int {
	if c := strings.Compare(x.Path, y.Path); c != 0 {
		return c
	}
	return bytes.Compare(x.SHA256[:], y.SHA256[:])
}

// linksDigest is the SHA-256 of a normalized set of links: each path
// length-prefixed, then the certificate's hash.
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

// insertCertificate stores c, which the store does not hold.
func (a *applier) insertCertificate(ctx context.Context, c *certinv.StoredCertificate) (certRef, error) {
	if sha256.Sum256(c.DER) != c.SHA256 {
		return certRef{}, fmt.Errorf("new certificate %s: SHA256 is not the hash of its DER", hex.EncodeToString(c.SHA256[:]))
	}
	if len(c.JSON) == 0 {
		return certRef{}, fmt.Errorf("new certificate %s: no JSON fragment", hex.EncodeToString(c.SHA256[:]))
	}
	ref := certRef{sha1: sha1.Sum(c.DER)}
	ins, err := a.stmt(ctx, sqlNewcert)
	if err != nil {
		return ref, err
	}
	if err := ins.QueryRowContext(ctx, c.SHA256[:], ref.sha1[:], c.DER, c.JSON).Scan(&ref.id); err != nil {
		return ref, fmt.Errorf("insert certificate %s: %w", hex.EncodeToString(c.SHA256[:]), err)
	}
	return ref, nil
}

// linkKey is a link row of one device.
type linkKey struct {
	path string
	cert int64
}

// replaceLinks makes device's links the given ones (every hash in a.found):
// a new device's are inserted; a known device's are diffed against the
// stored ones, so that a change of one certificate writes one row.
func (a *applier) replaceLinks(ctx context.Context, device int64, exists bool, links []certinv.Link) error {
	want := links
	if exists {
		sel, err := a.stmt(ctx, sqlLinks)
		if err != nil {
			return err
		}
		rows, err := sel.QueryContext(ctx, device)
		if err != nil {
			return fmt.Errorf("read links: %w", err)
		}
		type stored struct {
			path string
			sha1 []byte
			cert int64
		}
		var old []stored
		for rows.Next() {
			var l stored
			if err := rows.Scan(&l.path, &l.sha1, &l.cert); err != nil {
				rows.Close()
				return fmt.Errorf("read links: %w", err)
			}
			old = append(old, l)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read links: %w", err)
		}
		wanted := make(map[linkKey]bool, len(links))
		for _, l := range links {
			wanted[linkKey{l.Path, a.found[l.SHA256].id}] = true
		}
		have := make(map[linkKey]bool, len(old))
		del, err := a.stmt(ctx, sqlUnlink)
		if err != nil {
			return err
		}
		for _, l := range old {
			k := linkKey{l.path, l.cert}
			if wanted[k] {
				have[k] = true
				continue
			}
			if _, err := del.ExecContext(ctx, device, l.path, l.sha1, l.cert); err != nil {
				return fmt.Errorf("delete link: %w", err)
			}
		}
		want = nil
		for _, l := range links {
			if !have[linkKey{l.Path, a.found[l.SHA256].id}] {
				want = append(want, l)
			}
		}
	}
	for len(want) > 0 {
		n := insertLinksChunk
		for n > len(want) {
			n /= 2
		}
		ins, err := a.stmt(ctx, insertLinksSQL(n))
		if err != nil {
			return err
		}
		a.args = a.args[:0]
		for i := range want[:n] {
			ref := a.found[want[i].SHA256]
			a.args = append(a.args, device, want[i].Path, ref.sha1[:], ref.id)
		}
		if _, err := ins.ExecContext(ctx, a.args...); err != nil {
			return fmt.Errorf("insert links: %w", err)
		}
		want = want[n:]
	}
	return nil
}

// SetDeviceGroup places a known device in the named group, created if
// needed; an empty name takes it out of its group. ENotFound when the device
// is unknown.
func (db *DB) SetDeviceGroup(ctx context.Context, deviceID, groupName string) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		var id, current int64
		var hasLinks bool
		err := tx.QueryRowContext(ctx, `SELECT id, group_id, EXISTS (SELECT 1 FROM links WHERE device = devices.id) FROM devices WHERE device_id = ?`, deviceID).Scan(&id, &current, &hasLinks)
		if errors.Is(err, sql.ErrNoRows) {
			return certinv.Errorf(certinv.ENotFound, "device %q is not in the inventory", deviceID)
		}
		if err != nil {
			return fmt.Errorf("read device %s: %w", deviceID, err)
		}
		var groupID int64
		created := false
		if groupName != "" {
			err := tx.QueryRowContext(ctx, `SELECT id FROM groups WHERE name = ?`, groupName).Scan(&groupID)
			if errors.Is(err, sql.ErrNoRows) {
				err = tx.QueryRowContext(ctx, `INSERT INTO groups (name) VALUES (?) RETURNING id`, groupName).Scan(&groupID)
				created = true
			}
			if err != nil {
				return fmt.Errorf("group %q: %w", groupName, err)
			}
		}
		if groupID == current && !created {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE devices SET group_id = ? WHERE id = ?`, groupID, id); err != nil {
			return fmt.Errorf("update device %s: %w", deviceID, err)
		}
		if hasLinks || created {
			if _, err := tx.ExecContext(ctx, `UPDATE meta SET version = version + 1 WHERE id = 1`); err != nil {
				return fmt.Errorf("bump inventory version: %w", err)
			}
		}
		return nil
	})
}

// Groups returns the organization's RBAC groups, by id.
func (db *DB) Groups(ctx context.Context) ([]certinv.Group, error) {
	return readGroups(ctx, db.reader)
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func readGroups(ctx context.Context, q querier) ([]certinv.Group, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, name FROM groups ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("read groups: %w", err)
	}
	defer rows.Close()
	var gs []certinv.Group
	for rows.Next() {
		var g certinv.Group
		if err := rows.Scan(&g.ID, &g.Name); err != nil {
			return nil, fmt.Errorf("read groups: %w", err)
		}
		gs = append(gs, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read groups: %w", err)
	}
	return gs, nil
}
