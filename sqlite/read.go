package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/certinv/certinv"
)

// readDevicesSQL reads the devices in the export's order, which the
// devices index gives without a sort; readLinksSQL reads one device's links
// in theirs (path, then thumbprint), which is their key's
// (TestReadInventoryPlan). Links carry their certificate's id, not its
// fragment: fragments come from a cache, since most links name
// certificates that many devices share.
const (
	readDevicesSQL = `SELECT id, group_id, device_id, name FROM devices INDEXED BY devices_group_device ORDER BY group_id, device_id`
	readLinksSQL   = `SELECT path, certificate FROM links WHERE device = ? ORDER BY path, sha1, certificate`
)

// fragmentCacheBytes bounds the memory of the fragment cache of one
// ReadInventory, whatever the size of the fleet.
const fragmentCacheBytes = 128 << 20

// fetchChunk is the most certificates one fetch of missing fragments names.
const fetchChunk = 256

// ReadInventory calls fn for every record in one read transaction, ordered by
// group id, device id, path and thumbprint, and returns the version it read.
//
// It reads one device's links at a time, then the fragments of the
// certificates among them that its cache lacks in one query, then calls fn
// for each: memory is bounded by the largest device and the cache.
func (db *DB) ReadInventory(ctx context.Context, fn func(*certinv.InventoryRow) error) (version int64, err error) {
	tx, err := db.reader.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return 0, fmt.Errorf("read inventory: begin: %w", err)
	}
	defer tx.Rollback()
	// The first read fixes the transaction's view of the WAL: every later
	// statement of the transaction sees the same state.
	if err := tx.QueryRowContext(ctx, `SELECT version FROM meta WHERE id = 1`).Scan(&version); err != nil {
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
	r := &inventoryReader{tx: tx, fn: fn, cache: newFragmentCache(budget), fetched: map[int64][]byte{}}
	if err := r.preload(ctx, budget); err != nil {
		return 0, err
	}
	// Devices in export order; each device's links by its key, which is
	// their order. Two narrow statements cost less than one join that
	// carries the device's columns on every row.
	links, err := tx.PrepareContext(ctx, readLinksSQL)
	if err != nil {
		return 0, fmt.Errorf("read inventory: prepare: %w", err)
	}
	defer links.Close()
	devs, err := tx.QueryContext(ctx, readDevicesSQL)
	if err != nil {
		return 0, fmt.Errorf("read inventory: %w", err)
	}
	defer devs.Close()
	var (
		groupID, devRow int64
		certID          int64
		devID, devName  string
		path            sql.RawBytes
	)
	for devs.Next() {
		if err := devs.Scan(&devRow, &groupID, &devID, &devName); err != nil {
			return 0, fmt.Errorf("read inventory: %w", err)
		}
		name, ok := names[groupID]
		if !ok {
			return 0, fmt.Errorf("read inventory: device %s is in unknown group %d", devID, groupID)
		}
		r.row.GroupID, r.row.GroupName = groupID, name
		r.row.DeviceID, r.row.DeviceName = devID, devName
		rows, err := links.QueryContext(ctx, devRow)
		if err != nil {
			return 0, fmt.Errorf("read inventory: links of %s: %w", devID, err)
		}
		for rows.Next() {
			if err := rows.Scan(&path, &certID); err != nil {
				rows.Close()
				return 0, fmt.Errorf("read inventory: links of %s: %w", devID, err)
			}
			r.add(path, certID)
		}
		if err := rows.Close(); err != nil {
			return 0, fmt.Errorf("read inventory: links of %s: %w", devID, err)
		}
		if err := r.flush(ctx); err != nil {
			return 0, err
		}
	}
	if err := devs.Err(); err != nil {
		return 0, fmt.Errorf("read inventory: %w", err)
	}
	return version, nil
}

// inventoryReader holds the links of the device being read.
type inventoryReader struct {
	tx      *sql.Tx
	fn      func(*certinv.InventoryRow) error
	cache   *fragmentCache
	row     certinv.InventoryRow // device fields of the device being read
	paths   []string
	certs   []int64
	frags   [][]byte
	miss    []int64
	fetched map[int64][]byte // the fragments of miss
	args    []any
	stmts   map[int]*sql.Stmt // by number of ids
}

// add buffers one link of the current device; a path that repeats the
// previous one (a certificate twice at one place) shares its string.
func (r *inventoryReader) add(path sql.RawBytes, certID int64) {
	if n := len(r.paths); n > 0 && string(path) == r.paths[n-1] {
		r.paths = append(r.paths, r.paths[n-1])
	} else {
		r.paths = append(r.paths, string(path))
	}
	r.certs = append(r.certs, certID)
}

// flush resolves the buffered links' fragments and calls fn for each.
func (r *inventoryReader) flush(ctx context.Context) error {
	if len(r.certs) == 0 {
		return nil
	}
	r.frags = r.frags[:0]
	r.miss = r.miss[:0]
	for _, id := range r.certs {
		f, ok := r.cache.get(id)
		if !ok {
			r.miss = append(r.miss, id)
		}
		r.frags = append(r.frags, f)
	}
	if len(r.miss) > 0 {
		if err := r.fetch(ctx); err != nil {
			return err
		}
		for i, id := range r.certs {
			if r.frags[i] == nil {
				f, ok := r.fetched[id]
				if !ok {
					return fmt.Errorf("read inventory: certificate %d of device %s is not stored", id, r.row.DeviceID)
				}
				r.frags[i] = f
			}
		}
	}
	for i := range r.certs {
		r.row.Path = r.paths[i]
		r.row.CertificateJSON = r.frags[i]
		if err := r.fn(&r.row); err != nil {
			return err
		}
	}
	r.paths, r.certs = r.paths[:0], r.certs[:0]
	return nil
}

// preload fills the cache with fragments in one pass over the certificates,
// until their bytes reach budget. A fleet whose distinct certificates fit
// (about 100,000 of them in the default budget) is then read without a
// single fetch; a larger one fetches the rest device by device.
func (r *inventoryReader) preload(ctx context.Context, budget int) error {
	rows, err := r.tx.QueryContext(ctx, `SELECT id, json FROM certificates`)
	if err != nil {
		return fmt.Errorf("read inventory: certificates: %w", err)
	}
	defer rows.Close()
	loaded := 0
	for loaded < budget && rows.Next() {
		var id int64
		var j []byte
		if err := rows.Scan(&id, &j); err != nil {
			return fmt.Errorf("read inventory: certificates: %w", err)
		}
		r.cache.put(id, j)
		loaded += len(j)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read inventory: certificates: %w", err)
	}
	return nil
}

// fetch reads the fragments of the certificates in r.miss into r.fetched,
// and into the cache for the devices to come.
func (r *inventoryReader) fetch(ctx context.Context) error {
	clear(r.fetched)
	for start := 0; start < len(r.miss); start += fetchChunk {
		ids := r.miss[start:min(start+fetchChunk, len(r.miss))]
		// Statements are prepared once per size, a power of two: the
		// last ids repeat to fill one.
		size := 1
		for size < len(ids) {
			size *= 2
		}
		stmt, err := r.fetchStmt(ctx, size)
		if err != nil {
			return err
		}
		r.args = r.args[:0]
		for i := range size {
			r.args = append(r.args, ids[min(i, len(ids)-1)])
		}
		rows, err := stmt.QueryContext(ctx, r.args...)
		if err != nil {
			return fmt.Errorf("read inventory: certificates: %w", err)
		}
		for rows.Next() {
			var id int64
			var j []byte
			if err := rows.Scan(&id, &j); err != nil {
				rows.Close()
				return fmt.Errorf("read inventory: certificates: %w", err)
			}
			r.fetched[id] = j
			r.cache.put(id, j)
		}
		if err := rows.Close(); err != nil {
			return fmt.Errorf("read inventory: certificates: %w", err)
		}
	}
	return nil
}

// fetchStmt returns the statement that fetches n fragments, prepared on the
// read transaction once.
func (r *inventoryReader) fetchStmt(ctx context.Context, n int) (*sql.Stmt, error) {
	if s := r.stmts[n]; s != nil {
		return s, nil
	}
	q := `SELECT id, json FROM certificates WHERE id IN (?` + strings.Repeat(",?", n-1) + `)`
	s, err := r.tx.PrepareContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("read inventory: prepare: %w", err)
	}
	if r.stmts == nil {
		r.stmts = map[int]*sql.Stmt{}
	}
	r.stmts[n] = s
	return s, nil
}

// fragmentCache keeps fragments by certificate id within a byte budget.
// When full it drops about a tenth of its entries, in the map's random
// order: the certificates many devices share are soon back, those of one
// device are not missed.
type fragmentCache struct {
	budget, bytes int
	m             map[int64][]byte
}

func newFragmentCache(budget int) *fragmentCache {
	return &fragmentCache{budget: budget, m: map[int64][]byte{}}
}

func (c *fragmentCache) get(id int64) ([]byte, bool) {
	f, ok := c.m[id]
	return f, ok
}

func (c *fragmentCache) put(id int64, f []byte) {
	if _, ok := c.m[id]; ok {
		return
	}
	if c.bytes+len(f) > c.budget {
		target := c.budget - c.budget/10
		for k, v := range c.m {
			if c.bytes+len(f) <= target {
				break
			}
			delete(c.m, k)
			c.bytes -= len(v)
		}
	}
	c.m[id] = f
	c.bytes += len(f)
}
