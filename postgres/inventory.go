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
	"time"

	"github.com/certinv/certinv"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// certRef is a stored certificate as links name it.
type certRef struct {
	id   int64
	sha1 [20]byte
}

// maxCached bounds the in-process cache of stored certificates (about
// 100 bytes an entry).
const maxCached = 1 << 20

// scanRef reads the sha256, id and sha1 columns of a certificate row.
func scanRef(v [][]byte, idCol int64) (h [32]byte, ref certRef, err error) {
	if len(v[0]) != 32 || len(v[2]) != 20 {
		return h, ref, errors.New("corrupt certificate hash column")
	}
	return [32]byte(v[0]), certRef{id: idCol, sha1: [20]byte(v[2])}, nil
}

// MissingCertificates returns those of hashes that the store does not hold,
// in their order, without duplicates.
func (db *DB) MissingCertificates(ctx context.Context, hashes [][32]byte) ([][32]byte, error) {
	found := make(map[[32]byte]bool, len(hashes))
	learned := make(map[[32]byte]certRef)
	var ask [][]byte
	for _, h := range hashes {
		if _, ok := db.certs.Get(h); ok {
			found[h] = true
		} else {
			ask = append(ask, h[:])
		}
	}
	if len(ask) > 0 {
		rows, err := db.pool.Query(ctx, `SELECT sha256, id, sha1 FROM certificates WHERE sha256 = ANY($1::bytea[])`, ask)
		if err != nil {
			return nil, fmt.Errorf("look up certificates: %w", err)
		}
		var id int64
		for rows.Next() {
			if err := rows.Scan(nil, &id, nil); err != nil {
				rows.Close()
				return nil, fmt.Errorf("look up certificates: %w", err)
			}
			h, ref, err := scanRef(rows.RawValues(), id)
			if err != nil {
				rows.Close()
				return nil, fmt.Errorf("look up certificates: %w", err)
			}
			found[h] = true
			learned[h] = ref
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("look up certificates: %w", err)
		}
	}
	db.certs.Add(learned) // read outside any write: committed rows
	var missing [][32]byte
	for _, h := range hashes {
		if !found[h] {
			missing = append(missing, h)
			found[h] = true // report a duplicate once
		}
	}
	return missing, nil
}

// ApplyDeviceSets replaces each device's set of links with the given one; see
// certinv.Inventory.
//
// It costs two round trips whatever the batch's size (three when it makes
// groups): BEGIN, the write lock and every read the batch needs, pipelined;
// then, once the sets are checked and resolved in memory, every write and
// COMMIT, pipelined. Ids of new devices and certificates are drawn from
// their sequences by the first round trip, so that the writes name rows by
// id and join nothing.
func (db *DB) ApplyDeviceSets(ctx context.Context, sets []certinv.DeviceSet) ([]certinv.SetResult, error) {
	if len(sets) == 0 {
		return []certinv.SetResult{}, nil
	}
	results := make([]certinv.SetResult, len(sets))
	a := newBatchApplier(db, sets)
	err := db.inPipelinedTx(ctx, func(conn *pgxpool.Conn) error {
		if err := a.read(ctx, conn); err != nil {
			return err
		}
		visible := false
		for i := range sets {
			r, setErr, err := a.apply(i)
			if err != nil {
				return fmt.Errorf("apply set of device %s: %w", sets[i].Device.ID, err)
			}
			results[i] = certinv.SetResult{Unchanged: r.unchanged && setErr == nil, Err: setErr}
			visible = visible || r.visible
		}
		return a.write(ctx, conn, visible)
	})
	if err != nil {
		return nil, err
	}
	db.certs.Add(a.learned)
	return results, nil
}

// inPipelinedTx runs fn on one connection whose transaction fn begins and
// commits itself, in the pipelines of its batches ("BEGIN" first in the
// first, "COMMIT" last in the last): two round trips fewer than BEGIN and
// COMMIT of their own. Whatever fn leaves open is rolled back; a connection
// that cannot roll back is closed by the pool.
func (db *DB) inPipelinedTx(ctx context.Context, fn func(conn *pgxpool.Conn) error) error {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer func() {
		if pc := conn.Conn().PgConn(); !pc.IsClosed() && pc.TxStatus() != 'I' {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			if _, err := conn.Exec(rctx, "ROLLBACK"); err != nil {
				db.log.Warn("postgres: roll back a failed write; the pool drops its connection", "err", err)
			}
			cancel()
		}
		conn.Release()
	}()
	return fn(conn)
}

// queueCommit queues COMMIT and checks that it committed: a COMMIT of a
// transaction that failed answers ROLLBACK, not an error.
func queueCommit(b *pgx.Batch) {
	b.Queue("COMMIT").Exec(func(ct pgconn.CommandTag) error {
		if ct.String() != "COMMIT" {
			return fmt.Errorf("commit: the transaction was rolled back (%s)", ct)
		}
		return nil
	})
}

// storedLink is a link row as stored.
type storedLink struct {
	path string
	sha1 []byte
	cert int64
}

// deviceState is a device as stored, or as the sets applied so far in a
// batch left it.
type deviceState struct {
	row       int64 // devices.id: stored, or drawn from the sequence
	stored    bool  // the row existed before the batch
	exists    bool  // stored, or inserted by an earlier set of the batch
	name, os  string
	collected int64  // Unix microseconds
	group     string // the group's name; "" for none
	pinned    bool   // explicit_group is not NULL ...
	pin       string // ... and names this group ("" for none)
	digest    [32]byte
	hasLinks  bool
	tags      []string
	old       []storedLink   // the stored links, read when a set may change them
	links     []certinv.Link // the set to store, when linksNew
	linksNew  bool
	write     bool // the row is to be written

	groupID int64  // as read, until the groups are
	pinID   *int64 // as read, until the groups are
}

// preparedSet is a set's links, normalized, and their digest.
type preparedSet struct {
	links  []certinv.Link
	digest [32]byte
}

// batchApplier checks and resolves a batch of sets in memory, against the
// state read at its start, and collects the writes.
type batchApplier struct {
	db       *DB
	sets     []certinv.DeviceSet
	prepared []preparedSet

	devices    map[string]*deviceState
	order      []*deviceState // touched devices, in first-touched order
	ids        []string       // the order of touched devices' ids
	groupIDs   map[string]int64
	groupNames map[int64]string
	newGroups  []string
	rules      ruleSet
	refs       map[[32]byte]certRef // every certificate known held, or made by the batch
	alloc      map[[32]byte]int64   // ids drawn for certificates the store lacks
	newCerts   []*certinv.StoredCertificate
	learned    map[[32]byte]certRef // for the cache, once committed
}

func newBatchApplier(db *DB, sets []certinv.DeviceSet) *batchApplier {
	a := &batchApplier{
		db:         db,
		sets:       sets,
		prepared:   make([]preparedSet, len(sets)),
		devices:    make(map[string]*deviceState, len(sets)),
		groupIDs:   make(map[string]int64),
		groupNames: make(map[int64]string),
		refs:       make(map[[32]byte]certRef),
		alloc:      make(map[[32]byte]int64),
		learned:    make(map[[32]byte]certRef),
	}
	for i := range sets {
		links := normalize(sets[i].Links)
		a.prepared[i] = preparedSet{links: links, digest: linksDigest(links)}
	}
	return a
}

// read begins the transaction, takes the write lock and reads, in one round
// trip, what the sets need: their devices (new ones get an id), groups,
// rules, tags, the links of devices whose set may change, and which of
// their certificates the store holds (those it lacks and a set carries get
// an id).
func (a *batchApplier) read(ctx context.Context, conn *pgxpool.Conn) error {
	var ids []string
	var setIDs []string
	var setDigests [][]byte
	var ask [][]byte
	var carried []bool
	asked := make(map[[32]byte]bool)
	for i := range a.sets {
		s := &a.sets[i]
		if _, ok := a.devices[s.Device.ID]; !ok {
			a.devices[s.Device.ID] = nil
			ids = append(ids, s.Device.ID)
		}
		setIDs, setDigests = append(setIDs, s.Device.ID), append(setDigests, a.prepared[i].digest[:])
		for _, l := range a.prepared[i].links {
			if ref, ok := a.db.certs.Get(l.SHA256); ok {
				a.refs[l.SHA256] = ref
			} else if !asked[l.SHA256] {
				asked[l.SHA256] = true
				ask = append(ask, l.SHA256[:])
				carried = append(carried, false)
			}
		}
	}
	if len(ask) > 0 {
		index := make(map[[32]byte]int, len(ask))
		for i, h := range ask {
			index[[32]byte(h)] = i
		}
		for i := range a.sets {
			for _, c := range a.sets[i].New {
				if j, ok := index[c.SHA256]; ok {
					carried[j] = true
				}
			}
		}
	}

	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue(`SELECT pg_advisory_xact_lock(`+lockKeySQL+`)`, lockWrite)
	b.Queue(`SELECT w.device_id, coalesce(d.id, nextval($2::text::regclass)), d.id IS NOT NULL,
			coalesce(d.name, ''), coalesce(d.os, ''), coalesce(d.collected_at, 0), coalesce(d.group_id, 0),
			d.explicit_group, coalesce(d.links_digest, ''),
			d.id IS NOT NULL AND EXISTS (SELECT 1 FROM links AS l WHERE l.device = d.id)
		FROM unnest($1::text[]) AS w(device_id) LEFT JOIN devices AS d ON d.device_id = w.device_id`,
		ids, a.db.deviceSeq).Query(a.scanDevices)
	b.Queue(`SELECT id, name FROM groups`).Query(func(rows pgx.Rows) error {
		var id int64
		var name string
		_, err := pgx.ForEachRow(rows, []any{&id, &name}, func() error {
			a.groupIDs[name], a.groupNames[id] = id, name
			return nil
		})
		return err
	})
	b.Queue(rulesSQL).Query(func(rows pgx.Rows) error {
		var err error
		a.rules, err = scanRules(rows)
		return err
	})
	// Tags matter only to rules on tags: the one-time filter skips the
	// lookups when there is none.
	b.Queue(`SELECT device_id, tag FROM device_tags
		WHERE EXISTS (SELECT 1 FROM group_rules WHERE tag <> '') AND device_id = ANY($1::text[])
		ORDER BY device_id, tag`, ids).Query(func(rows pgx.Rows) error {
		var id, tag string
		_, err := pgx.ForEachRow(rows, []any{&id, &tag}, func() error {
			d := a.devices[id]
			d.tags = append(d.tags, tag)
			return nil
		})
		return err
	})
	// The stored links of the devices whose stored set differs from one
	// that the batch brings: what a change is diffed against.
	b.Queue(`SELECT d.device_id, l.path, l.sha1, l.certificate FROM devices AS d JOIN links AS l ON l.device = d.id
		WHERE d.id IN (SELECT s.id FROM unnest($1::text[], $2::bytea[]) AS w(device_id, digest)
			JOIN devices AS s ON s.device_id = w.device_id WHERE s.links_digest <> w.digest)`,
		setIDs, setDigests).Query(func(rows pgx.Rows) error {
		var id string
		var l storedLink
		_, err := pgx.ForEachRow(rows, []any{&id, &l.path, &l.sha1, &l.cert}, func() error {
			d := a.devices[id]
			d.old = append(d.old, storedLink{path: l.path, sha1: slices.Clone(l.sha1), cert: l.cert})
			return nil
		})
		return err
	})
	if len(ask) > 0 {
		b.Queue(`SELECT w.h, c.id, coalesce(c.sha1, ''), CASE WHEN c.id IS NULL AND w.carried THEN nextval($3::text::regclass) END
			FROM unnest($1::bytea[], $2::bool[]) AS w(h, carried) LEFT JOIN certificates AS c ON c.sha256 = w.h`,
			ask, carried, a.db.certSeq).Query(a.scanCertificates)
	}
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("read the batch's devices: %w", err)
	}
	for id, d := range a.devices {
		if d == nil {
			return fmt.Errorf("device %s: not read", id)
		}
		var ok bool
		if d.group, ok = a.groupName(d.groupID); !ok {
			return fmt.Errorf("device %s is in unknown group %d", id, d.groupID)
		}
		if d.pinID != nil {
			d.pinned = true
			if d.pin, ok = a.groupName(*d.pinID); !ok {
				return fmt.Errorf("device %s is pinned to unknown group %d", id, *d.pinID)
			}
		}
	}
	return nil
}

// groupName returns the name of group id ("" for NoGroupID).
func (a *batchApplier) groupName(id int64) (string, bool) {
	if id == certinv.NoGroupID {
		return "", true
	}
	name, ok := a.groupNames[id]
	return name, ok
}

func (a *batchApplier) scanDevices(rows pgx.Rows) error {
	var (
		id       string
		d        deviceState
		pin      *int64
		group    int64
		digest   []byte
		hasLinks bool
	)
	_, err := pgx.ForEachRow(rows, []any{&id, &d.row, &d.stored, &d.name, &d.os, &d.collected, &group, &pin, &digest, &hasLinks}, func() error {
		dev := &deviceState{row: d.row, stored: d.stored, exists: d.stored, name: d.name, os: d.os, collected: d.collected, hasLinks: hasLinks}
		if d.stored {
			if len(digest) != 32 {
				return fmt.Errorf("device %s: corrupt links digest", id)
			}
			dev.digest = [32]byte(digest)
		}
		// Group ids become names once the groups are read.
		dev.groupID, dev.pinID = group, pin
		a.devices[id] = dev
		return nil
	})
	return err
}

func (a *batchApplier) scanCertificates(rows pgx.Rows) error {
	var held, drawn *int64
	_, err := pgx.ForEachRow(rows, []any{nil, &held, nil, &drawn}, func() error {
		v := rows.RawValues()
		if len(v[0]) != 32 {
			return errors.New("look up certificates: corrupt hash")
		}
		h := [32]byte(v[0])
		switch {
		case held != nil:
			_, ref, err := scanRef(v, *held)
			if err != nil {
				return fmt.Errorf("look up certificates: %w", err)
			}
			a.refs[h] = ref
			a.learned[h] = ref
		case drawn != nil:
			a.alloc[h] = *drawn
		}
		return nil
	})
	return err
}

type applyResult struct {
	unchanged bool // the links equal the stored ones
	visible   bool // a read would see different rows
}

// place returns the name of the group the rules (or the pin) give a device
// of the given name and OS.
func (a *batchApplier) place(d *deviceState, name, os string) string {
	if d.pinned {
		return d.pin
	}
	g, _ := a.groupName(a.rules.match(name, os, d.tags)) // rules name existing groups
	return g
}

// apply checks set i against the state so far and records its writes. A
// set that cannot be applied returns setErr and changes nothing; err is a
// set that no store could take (a certificate that is not what it claims).
//
// Placement follows the sqlite store's triggers: a new device goes to the
// group its set names (pinned there), else to its rules' group; a known
// device whose set names another group is pinned there; one whose name or
// OS changes is placed anew (its pin, else its rules).
func (a *batchApplier) apply(i int) (r applyResult, setErr, err error) {
	s := &a.sets[i]
	links, digest := a.prepared[i].links, a.prepared[i].digest
	collected := s.Device.CollectedAt.UnixMicro()
	name, os := s.Device.Name, s.Device.OS

	dev := a.devices[s.Device.ID]
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
		_, known := a.groupIDs[group]
		createGroup = !known
	}
	renamed := dev.exists && (name != dev.name || os != dev.os)

	// The common case: the same set again. Only the device's fields change.
	if dev.exists && digest == dev.digest && !createGroup && group == dev.group {
		r.unchanged = true
		r.visible = name != dev.name && len(links) > 0
		if renamed {
			if g := a.place(dev, name, os); g != dev.group {
				r.visible = r.visible || dev.hasLinks
				dev.group = g
			}
		}
		a.touch(s.Device.ID, dev)
		dev.name, dev.os, dev.collected = name, os, collected
		return r, nil, nil
	}

	// Resolve every link to a held certificate or one that New carries.
	var unknown [][32]byte
	var carried []*certinv.StoredCertificate
	seen := make(map[[32]byte]bool, len(links))
	for _, l := range links {
		if seen[l.SHA256] {
			continue
		}
		seen[l.SHA256] = true
		if _, ok := a.refs[l.SHA256]; ok {
			continue
		}
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
		if _, ok := a.alloc[c.SHA256]; !ok {
			return r, nil, fmt.Errorf("new certificate %s: no id was drawn for it", hex.EncodeToString(c.SHA256[:]))
		}
	}

	// Every check passed: record the writes.
	if createGroup {
		a.groupIDs[group] = 0 // made before the writes
		a.newGroups = append(a.newGroups, group)
		// The first group turns every "None" into "Unassigned": count any
		// new group as a visible change.
		r.visible = true
	}
	for _, c := range carried {
		ref := certRef{id: a.alloc[c.SHA256], sha1: sha1.Sum(c.DER)}
		a.refs[c.SHA256] = ref
		a.learned[c.SHA256] = ref
		a.newCerts = append(a.newCerts, c)
	}
	linksChanged := !dev.exists || digest != dev.digest
	r.unchanged = !linksChanged
	nameOrGroup := dev.exists && (name != dev.name || group != dev.group)
	r.visible = r.visible || (linksChanged && (len(links) > 0 || dev.exists)) || (nameOrGroup && len(links) > 0)

	final := group
	switch {
	case !dev.exists && group != "":
		dev.pinned, dev.pin = true, group
	case !dev.exists:
		final = a.place(dev, name, os)
	case group != dev.group || renamed:
		if group != dev.group {
			dev.pinned, dev.pin = group != "", group
		}
		final = a.place(dev, name, os)
		r.visible = r.visible || (final != dev.group && dev.hasLinks)
	}

	a.touch(s.Device.ID, dev)
	dev.exists = true
	dev.name, dev.os, dev.collected, dev.group = name, os, collected, final
	if linksChanged {
		dev.digest = digest
		dev.links = links
		dev.linksNew = true
		dev.hasLinks = len(links) > 0
	}
	return r, nil, nil
}

// touch records that device id's row is to be written.
func (a *batchApplier) touch(id string, dev *deviceState) {
	if !dev.write {
		dev.write = true
		a.order = append(a.order, dev)
		a.ids = append(a.ids, id)
	}
}

// write makes the batch's new groups (a round trip of its own, rare), COPYs
// the new links when there are many, then sends every other write and
// COMMIT in one pipelined round trip: new certificates, new devices,
// changed devices, the links no longer wanted deleted and the new ones
// inserted (a change of one certificate writes one row), and the version.
func (a *batchApplier) write(ctx context.Context, conn *pgxpool.Conn, visible bool) error {
	if len(a.newGroups) > 0 {
		rows, err := conn.Query(ctx, `INSERT INTO groups (name) SELECT n FROM unnest($1::text[]) WITH ORDINALITY AS g(n, i) ORDER BY i RETURNING id, name`, a.newGroups)
		if err != nil {
			return fmt.Errorf("make groups: %w", err)
		}
		var id int64
		var name string
		if _, err := pgx.ForEachRow(rows, []any{&id, &name}, func() error {
			a.groupIDs[name] = id
			return nil
		}); err != nil {
			return fmt.Errorf("make groups: %w", err)
		}
	}
	groupID := func(name string) (int64, error) {
		if name == "" {
			return certinv.NoGroupID, nil
		}
		if id := a.groupIDs[name]; id > 0 {
			return id, nil
		}
		return 0, fmt.Errorf("group %q has no id", name)
	}

	b := &pgx.Batch{}
	if len(a.newCerts) > 0 {
		var ids []int64
		var s256, s1, der, js [][]byte
		for _, c := range a.newCerts {
			ref := a.refs[c.SHA256]
			ids = append(ids, ref.id)
			s256, s1, der, js = append(s256, c.SHA256[:]), append(s1, ref.sha1[:]), append(der, c.DER), append(js, c.JSON)
		}
		b.Queue(`INSERT INTO certificates (id, sha256, sha1, der, json) OVERRIDING SYSTEM VALUE
			SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::bytea[], $4::bytea[], $5::bytea[])`, ids, s256, s1, der, js)
	}
	var ins, upd deviceColumns
	var add, del linkColumns
	for i, d := range a.order {
		g, err := groupID(d.group)
		if err != nil {
			return err
		}
		var pin *int64
		if d.pinned {
			p, err := groupID(d.pin)
			if err != nil {
				return err
			}
			pin = &p
		}
		cols := &upd
		if !d.stored {
			cols = &ins
		}
		cols.add(d, a.ids[i], g, pin)
		if !d.linksNew {
			continue
		}
		// Diff the stored links against the wanted ones, by (path, certificate).
		type key struct {
			path string
			cert int64
		}
		have := make(map[key]bool, len(d.old))
		wanted := make(map[key]bool, len(d.links))
		for _, l := range d.links {
			wanted[key{l.Path, a.refs[l.SHA256].id}] = true
		}
		for _, l := range d.old {
			k := key{l.path, l.cert}
			if wanted[k] {
				have[k] = true
			} else {
				del.add(d.row, l.path, l.sha1, l.cert)
			}
		}
		for _, l := range d.links {
			ref := a.refs[l.SHA256]
			if !have[key{l.Path, ref.id}] {
				add.add(d.row, l.Path, ref.sha1[:], ref.id)
			}
		}
	}
	if len(ins.rows) > 0 {
		b.Queue(`INSERT INTO devices (id, device_id, name, os, collected_at, group_id, explicit_group, links_digest) OVERRIDING SYSTEM VALUE
			SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bytea[])`,
			ins.args()...)
	}
	if len(upd.rows) > 0 {
		b.Queue(`UPDATE devices AS d SET name = w.name, os = w.os, collected_at = w.collected_at, group_id = w.group_id,
				explicit_group = w.explicit_group, links_digest = w.digest
			FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bytea[])
				AS w(id, device_id, name, os, collected_at, group_id, explicit_group, digest)
			WHERE d.id = w.id`, upd.args()...)
	}
	if len(del.devices) > 0 {
		b.Queue(`DELETE FROM links AS l USING unnest($1::bigint[], $2::text[], $3::bytea[], $4::bigint[]) AS w(device, path, sha1, certificate)
			WHERE l.device = w.device AND l.path = w.path AND l.sha1 = w.sha1 AND l.certificate = w.certificate`, del.args()...)
	}
	switch n := len(add.devices); {
	case n >= copyLinks:
		// Many rows: COPY them, a round trip of its own that costs the
		// server a third less than an INSERT from arrays.
		if _, err := conn.CopyFrom(ctx, pgx.Identifier{"links"}, []string{"device", "path", "sha1", "certificate"}, &add); err != nil {
			return fmt.Errorf("copy links: %w", err)
		}
	case n > 0:
		b.Queue(`INSERT INTO links (device, path, sha1, certificate)
			SELECT * FROM unnest($1::bigint[], $2::text[], $3::bytea[], $4::bigint[])`, add.args()...)
	}
	if visible {
		b.Queue(`UPDATE meta SET version = version + 1 WHERE id = 1`)
	}
	queueCommit(b)
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("write the batch: %w", err)
	}
	return nil
}

// deviceColumns are device rows as the arrays of one statement.
type deviceColumns struct {
	rows            []int64
	deviceIDs       []string
	names, oses     []string
	collected, grps []int64
	pins            []*int64
	digests         [][]byte
}

func (c *deviceColumns) add(d *deviceState, id string, group int64, pin *int64) {
	c.rows, c.deviceIDs = append(c.rows, d.row), append(c.deviceIDs, id)
	c.names, c.oses = append(c.names, d.name), append(c.oses, d.os)
	c.collected, c.grps = append(c.collected, d.collected), append(c.grps, group)
	c.pins, c.digests = append(c.pins, pin), append(c.digests, d.digest[:])
}

func (c *deviceColumns) args() []any {
	return []any{c.rows, c.deviceIDs, c.names, c.oses, c.collected, c.grps, c.pins, c.digests}
}

// linkColumns are link rows as the arrays of one statement.
type linkColumns struct {
	devices []int64
	paths   []string
	sha1s   [][]byte
	certs   []int64

	next int   // rows copied so far, as a CopyFromSource
	row  []any // the row Values returns
}

func (c *linkColumns) add(device int64, path string, sha1 []byte, cert int64) {
	c.devices, c.paths, c.sha1s, c.certs = append(c.devices, device), append(c.paths, path), append(c.sha1s, sha1), append(c.certs, cert)
}

func (c *linkColumns) args() []any { return []any{c.devices, c.paths, c.sha1s, c.certs} }

// copyLinks is the number of new links from which a batch COPYs them.
const copyLinks = 1000

// linkColumns is a pgx.CopyFromSource of its rows.
var _ pgx.CopyFromSource = (*linkColumns)(nil)

// Next advances to the next row to copy.
func (c *linkColumns) Next() bool {
	c.next++
	return c.next <= len(c.devices)
}

// Values returns the row to copy.
func (c *linkColumns) Values() ([]any, error) {
	i := c.next - 1
	c.row = append(c.row[:0], c.devices[i], c.paths[i], c.sha1s[i], c.certs[i])
	return c.row, nil
}

// Err returns nil: the rows are in memory.
func (c *linkColumns) Err() error { return nil }

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

// SetDeviceGroup places a known device in the named group, created if
// needed, and pins it there; an empty name takes it out of its group and
// lets rules place it. ENotFound when the device is unknown.
func (db *DB) SetDeviceGroup(ctx context.Context, deviceID, groupName string) error {
	return db.inWriteTx(ctx, func(tx pgx.Tx) error {
		var id, current int64
		var hasLinks bool
		err := tx.QueryRow(ctx, `SELECT id, group_id, EXISTS (SELECT 1 FROM links WHERE device = devices.id) FROM devices WHERE device_id = $1`, deviceID).Scan(&id, &current, &hasLinks)
		if errors.Is(err, pgx.ErrNoRows) {
			return certinv.Errorf(certinv.ENotFound, "device %q is not in the inventory", deviceID)
		}
		if err != nil {
			return fmt.Errorf("read device %s: %w", deviceID, err)
		}
		var groupID int64
		created := false
		if groupName != "" {
			err := tx.QueryRow(ctx, `SELECT id FROM groups WHERE name = $1`, groupName).Scan(&groupID)
			if errors.Is(err, pgx.ErrNoRows) {
				err = tx.QueryRow(ctx, `INSERT INTO groups (name) VALUES ($1) RETURNING id`, groupName).Scan(&groupID)
				created = true
			}
			if err != nil {
				return fmt.Errorf("group %q: %w", groupName, err)
			}
		}
		if groupID == current && !created {
			return nil
		}
		// A group given pins the device there; none lets its rules decide
		// (the sqlite store's trigger devices_place_on_update).
		var pin *int64
		if groupID != certinv.NoGroupID {
			pin = &groupID
		}
		if _, err := tx.Exec(ctx, `UPDATE devices SET explicit_group = $1 WHERE id = $2`, pin, id); err != nil {
			return fmt.Errorf("update device %s: %w", deviceID, err)
		}
		if _, _, _, err := placeOne(ctx, tx, id); err != nil {
			return err
		}
		if hasLinks || created {
			if _, err := tx.Exec(ctx, `UPDATE meta SET version = version + 1 WHERE id = 1`); err != nil {
				return fmt.Errorf("bump inventory version: %w", err)
			}
		}
		return nil
	})
}
