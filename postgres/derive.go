package postgres

import (
	"bytes"
	"context"
	"fmt"
	"runtime"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"
)

// rederiveBatch is how many certificates Rederive reads, derives and
// writes in one round (and one write transaction).
const rederiveBatch = 512

// Rederive makes sure every stored certificate's record fragment comes from
// the parser of the given version, as the sqlite store's Rederive does:
// when the parser changes, it derives every fragment anew from the stored
// DER, so that the fix reaches every device without a new report. It does
// nothing when the store is at that version already.
//
// derive returns a certificate's fragment. A certificate that the new parser
// refuses keeps its old fragment and is counted in failed. Rederive bumps
// the inventory version when it records the new parser version (unlike the
// sqlite store, also when this run changed nothing: an interrupted earlier
// run may have). It may be stopped at any
// point and run again, by any replica: the recorded version changes only
// once every certificate is done.
func (db *DB) Rederive(ctx context.Context, version int, derive func(der []byte) ([]byte, error)) (changed, failed int, err error) {
	var have int
	if err := db.pool.QueryRow(ctx, `SELECT derivation FROM meta WHERE id = 1`).Scan(&have); err != nil {
		return 0, 0, fmt.Errorf("read derivation version: %w", err)
	}
	if have == version {
		return 0, 0, nil
	}
	type cert struct {
		id        int64
		der, json []byte
		fresh     []byte
		err       error
	}
	var after int64
	for {
		rows, err := db.pool.Query(ctx, `SELECT id, der, json FROM certificates WHERE id > $1 ORDER BY id LIMIT $2`, after, rederiveBatch)
		if err != nil {
			return changed, failed, fmt.Errorf("read certificates: %w", err)
		}
		batch, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (cert, error) {
			var c cert
			err := r.Scan(&c.id, &c.der, &c.json)
			return c, err
		})
		if err != nil {
			return changed, failed, fmt.Errorf("read certificates: %w", err)
		}
		if len(batch) == 0 {
			break
		}
		after = batch[len(batch)-1].id

		// Parsing is the cost (self-signature checks): spread it over cores.
		var g errgroup.Group
		g.SetLimit(runtime.GOMAXPROCS(0))
		for i := range batch {
			g.Go(func() error {
				batch[i].fresh, batch[i].err = derive(batch[i].der)
				return nil
			})
		}
		g.Wait()

		var ids []int64
		var jsons [][]byte
		for i := range batch {
			c := &batch[i]
			if c.err != nil {
				failed++
				db.log.Warn("rederive: the parser now refuses a stored certificate; it keeps its old fields",
					"certificate", c.id, "err", c.err)
				continue
			}
			if !bytes.Equal(c.fresh, c.json) {
				ids, jsons = append(ids, c.id), append(jsons, c.fresh)
			}
		}
		if len(ids) > 0 {
			_, err := db.pool.Exec(ctx, `UPDATE certificates AS c SET json = u.json
				FROM unnest($1::bigint[], $2::bytea[]) AS u(id, json) WHERE c.id = u.id`, ids, jsons)
			if err != nil {
				return changed, failed, fmt.Errorf("update certificates: %w", err)
			}
			changed += len(ids)
		}
	}
	// The version is bumped whether or not this run changed a fragment: an
	// earlier, interrupted run may have changed some, and a snapshot must
	// carry them. A new parser version is rare; one spare build is cheap.
	err = db.inWriteTx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE meta SET derivation = $1, version = version + 1 WHERE id = 1`, version)
		return err
	})
	if err != nil {
		return changed, failed, fmt.Errorf("record derivation version: %w", err)
	}
	return changed, failed, nil
}
