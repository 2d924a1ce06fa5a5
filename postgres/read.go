package postgres

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/certinv/certinv"
	"github.com/jackc/pgx/v5"
)

// Groups returns the organization's RBAC groups, by id.
func (db *DB) Groups(ctx context.Context) ([]certinv.Group, error) {
	return readGroups(ctx, db.pool)
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func readGroups(ctx context.Context, q querier) ([]certinv.Group, error) {
	rows, err := q.Query(ctx, `SELECT id, name FROM groups ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("read groups: %w", err)
	}
	gs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (certinv.Group, error) {
		var g certinv.Group
		err := r.Scan(&g.ID, &g.Name)
		return g, err
	})
	if err != nil {
		return nil, fmt.Errorf("read groups: %w", err)
	}
	return gs, nil
}

// The inventory is read as one row per device, in the export's order,
// which the devices index (group_id, device_id) gives without a sort; each
// row carries the device's links as an array, in theirs (path, thumbprint),
// which the links key gives (TestReadInventoryPlan). Device ids and paths
// are COLLATE "C" and thumbprints raw bytes, so PostgreSQL's order is the
// bytewise order the export defines. An ARRAY of an ordered subquery keeps
// the subquery's order.
//
// A link is one bytea: its certificate's id (8 bytes, big-endian) then its
// path in UTF-8. One array of them costs the server one walk of the links
// key per device, and a tenth less than an array of paths and another of
// ids (1M links: 0.36 s against 0.38 s after VACUUM, 0.55 s against 0.67 s
// before).
//
// Links carry their certificate's id, not its fragment: fragments come from
// a cache, since most links name certificates that many devices share. The
// cache holds every certificate up to an id, read in one pass before; when
// some do not fit, readInventoryMissSQL also carries, in the links' order,
// the fragments of the links to certificates beyond that id.
const (
	readInventorySQL = `SELECT d.group_id, d.device_id, d.name,
	ARRAY(SELECT int8send(l.certificate) || convert_to(l.path, 'UTF8') FROM links AS l
		WHERE l.device = d.id ORDER BY l.path, l.sha1, l.certificate)
FROM devices AS d ORDER BY d.group_id, d.device_id`

	readInventoryMissSQL = `SELECT d.group_id, d.device_id, d.name,
	ARRAY(SELECT int8send(l.certificate) || convert_to(l.path, 'UTF8') FROM links AS l
		WHERE l.device = d.id ORDER BY l.path, l.sha1, l.certificate),
	ARRAY(SELECT c.json FROM links AS l JOIN certificates AS c ON c.id = l.certificate
		WHERE l.device = d.id AND l.certificate > $1 ORDER BY l.path, l.sha1, l.certificate)
FROM devices AS d ORDER BY d.group_id, d.device_id`
)

// readSettingsSQL reads the version (the first statement of the
// transaction, which fixes its snapshot) and sets the read's planner
// settings: no JIT (compiling the read's expressions costs more than it
// saves), and no sort, so that the planner keeps to the index walks even
// where it guesses a sort of a large fleet cheaper (a sort would hold every
// device's arrays).
const readSettingsSQL = `SELECT version, set_config('jit', 'off', true), set_config('enable_sort', 'off', true) FROM meta WHERE id = 1`

// fragmentCacheBytes bounds the fragments ReadInventory keeps in memory,
// whatever the size of the fleet: about 100,000 certificates' worth.
const fragmentCacheBytes = 128 << 20

// preloadChunk is how many fragments one preload query reads.
const preloadChunk = 4096

// ReadInventory calls fn for every record in one REPEATABLE READ, READ ONLY
// transaction, ordered by group id, device id, path and thumbprint, and
// returns the version it read.
//
// It reads the fragments of certificates into a cache of bounded size
// first, then one row per device with its links' paths and certificate ids,
// decoded as they arrive from the server into one InventoryRow: memory is
// bounded by the cache and the largest device, not the fleet.
func (db *DB) ReadInventory(ctx context.Context, fn func(*certinv.InventoryRow) error) (version int64, err error) {
	tx, err := db.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return 0, fmt.Errorf("read inventory: begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if err := tx.QueryRow(ctx, readSettingsSQL).Scan(&version, nil, nil); err != nil {
		return 0, fmt.Errorf("read inventory version: %w", err)
	}
	groups, err := readGroups(ctx, tx)
	if err != nil {
		return 0, err
	}
	names := certinv.GroupNames(groups)

	budget := fragmentCacheBytes
	if db.fragmentBudget > 0 {
		budget = db.fragmentBudget
	}
	cache, upTo, err := preloadFragments(ctx, tx, budget)
	if err != nil {
		return 0, err
	}
	var rows pgx.Rows
	if upTo == math.MaxInt64 {
		rows, err = tx.Query(ctx, readInventorySQL)
	} else {
		rows, err = tx.Query(ctx, readInventoryMissSQL, upTo)
	}
	if err != nil {
		return 0, fmt.Errorf("read inventory: %w", err)
	}
	defer rows.Close()
	// Every column is read from its wire bytes, which must be binary for
	// all but the text ones (the same in both formats), as pgx asks for them.
	for i, f := range rows.FieldDescriptions() {
		if i != 1 && i != 2 && f.Format != pgx.BinaryFormatCode {
			return 0, fmt.Errorf("read inventory: column %s arrived in text format", f.Name)
		}
	}
	var (
		row          certinv.InventoryRow
		first        = true
		links, jsons arrayReader
	)
	for rows.Next() {
		v := rows.RawValues()
		if (len(v) != 4 && len(v) != 5) || len(v[0]) != 8 {
			return 0, errors.New("read inventory: unexpected row shape")
		}
		groupID := int64(binary.BigEndian.Uint64(v[0]))
		if first || groupID != row.GroupID {
			name, ok := names[groupID]
			if !ok {
				return 0, fmt.Errorf("read inventory: device %s is in unknown group %d", v[1], groupID)
			}
			row.GroupID, row.GroupName = groupID, name
		}
		first = false
		row.DeviceID = string(v[1])
		if string(v[2]) != row.DeviceName {
			row.DeviceName = string(v[2])
		}
		n, err := links.reset(v[3])
		if err != nil {
			return 0, fmt.Errorf("read inventory: links of %s: %w", row.DeviceID, err)
		}
		if len(v) == 5 {
			if _, err := jsons.reset(v[4]); err != nil {
				return 0, fmt.Errorf("read inventory: fragments of %s: %w", row.DeviceID, err)
			}
		}
		for range n {
			l, err := links.next()
			if err != nil || len(l) < 8 {
				return 0, fmt.Errorf("read inventory: links of %s: bad element (%v)", row.DeviceID, err)
			}
			id, path := int64(binary.BigEndian.Uint64(l)), l[8:]
			// Strings are made once per run of a path, not once per record.
			if string(path) != row.Path {
				row.Path = string(path)
			}
			if id <= upTo {
				f, ok := cache[id]
				if !ok {
					return 0, fmt.Errorf("read inventory: certificate %d of device %s is not stored", id, row.DeviceID)
				}
				row.CertificateJSON = f
			} else if row.CertificateJSON, err = jsons.next(); err != nil || row.CertificateJSON == nil {
				return 0, fmt.Errorf("read inventory: certificate %d of device %s: no fragment (%v)", id, row.DeviceID, err)
			}
			if err := fn(&row); err != nil {
				return 0, err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("read inventory: %w", err)
	}
	return version, nil
}

// preloadFragments reads the fragments of certificates in id order until
// their bytes reach budget, in chunks. upTo is the highest id it read, or
// math.MaxInt64 when it read them all: a fleet whose distinct certificates
// fit (about 100,000 in the default budget) is then read without one
// fragment on the wire again.
func preloadFragments(ctx context.Context, tx pgx.Tx, budget int) (cache map[int64][]byte, upTo int64, err error) {
	cache = make(map[int64][]byte)
	loaded := 0
	var after int64
	for {
		rows, err := tx.Query(ctx, `SELECT id, json FROM certificates WHERE id > $1 ORDER BY id LIMIT $2`, after, preloadChunk)
		if err != nil {
			return nil, 0, fmt.Errorf("read inventory: certificates: %w", err)
		}
		n := 0
		for rows.Next() {
			var id int64
			var js []byte
			if err := rows.Scan(&id, &js); err != nil {
				rows.Close()
				return nil, 0, fmt.Errorf("read inventory: certificates: %w", err)
			}
			n++
			after = id
			cache[id] = js
			loaded += len(js)
			if loaded >= budget {
				break
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, 0, fmt.Errorf("read inventory: certificates: %w", err)
		}
		if loaded >= budget {
			return cache, after, nil
		}
		if n < preloadChunk {
			return cache, math.MaxInt64, nil
		}
	}
}

// arrayReader walks the elements of a one-dimensional array in PostgreSQL's
// binary format: a header (dimensions, null flag, element type, then size
// and lower bound of each dimension) and each element as a 4-byte length
// (-1 for NULL) and its bytes.
type arrayReader struct {
	b []byte
	n int
}

// reset starts reading the array b and returns its number of elements.
func (r *arrayReader) reset(b []byte) (int, error) {
	if len(b) < 12 {
		return 0, errors.New("short array")
	}
	switch dims := binary.BigEndian.Uint32(b); dims {
	case 0:
		r.b, r.n = nil, 0
		return 0, nil
	case 1:
		if len(b) < 20 {
			return 0, errors.New("short array")
		}
		n := int32(binary.BigEndian.Uint32(b[12:]))
		if n < 0 {
			return 0, errors.New("negative array size")
		}
		r.b, r.n = b[20:], int(n)
		return r.n, nil
	default:
		return 0, fmt.Errorf("array of %d dimensions", dims)
	}
}

// next returns the next element; nil for NULL.
func (r *arrayReader) next() ([]byte, error) {
	if r.n == 0 || len(r.b) < 4 {
		return nil, errors.New("array ends early")
	}
	r.n--
	size := int32(binary.BigEndian.Uint32(r.b))
	r.b = r.b[4:]
	if size < 0 {
		return nil, nil
	}
	if int(size) > len(r.b) {
		return nil, errors.New("array element runs past its end")
	}
	e := r.b[:size:size]
	r.b = r.b[size:]
	return e, nil
}
