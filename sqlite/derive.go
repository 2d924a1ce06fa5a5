package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"runtime"

	"golang.org/x/sync/errgroup"
)

// rederiveBatch is how many certificates Rederive reads, derives and
// writes in one round (and one write transaction).
const rederiveBatch = 512

// Rederive makes sure every stored certificate's record fragment comes from
// the parser of the given version. Stores keep the fragment derived at
// ingest, so that snapshots copy it; when the parser changes (a field fixed,
// a field added), its version changes and this derives every fragment anew
// from the stored DER, so that the fix reaches every device without a new
// report. It does nothing when the store is at that version already.
//
// derive returns a certificate's fragment (certinv.AppendCertificateJSON of
// the parsed certificate). A certificate that the new parser refuses keeps
// its old fragment and is counted in failed. Rederive bumps the inventory
// version when it records the new parser version, so the next snapshot
// carries the new fragments. It may be stopped at any point and run again:
// the recorded version changes only once every certificate is done.
func (db *DB) Rederive(ctx context.Context, version int, derive func(der []byte) ([]byte, error)) (changed, failed int, err error) {
	var have int
	if err := db.reader.QueryRowContext(ctx, `SELECT derivation FROM meta WHERE id = 1`).Scan(&have); err != nil {
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
	batch := make([]cert, 0, rederiveBatch)
	var after int64
	for {
		batch = batch[:0]
		rows, err := db.reader.QueryContext(ctx, `SELECT id, der, json FROM certificates WHERE id > ? ORDER BY id LIMIT ?`, after, rederiveBatch)
		if err != nil {
			return changed, failed, fmt.Errorf("read certificates: %w", err)
		}
		for rows.Next() {
			var c cert
			if err := rows.Scan(&c.id, &c.der, &c.json); err != nil {
				rows.Close()
				return changed, failed, fmt.Errorf("read certificates: %w", err)
			}
			batch = append(batch, c)
		}
		if err := rows.Close(); err != nil {
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

		err = db.inTx(ctx, func(tx *sql.Tx) error {
			for i := range batch {
				c := &batch[i]
				if c.err != nil {
					failed++
					db.log.Warn("rederive: the parser now refuses a stored certificate; it keeps its old fields",
						"certificate", c.id, "err", c.err)
					continue
				}
				if bytes.Equal(c.fresh, c.json) {
					continue
				}
				if _, err := tx.ExecContext(ctx, `UPDATE certificates SET json = ? WHERE id = ?`, c.fresh, c.id); err != nil {
					return fmt.Errorf("update certificate %d: %w", c.id, err)
				}
				changed++
			}
			return nil
		})
		if err != nil {
			return changed, failed, err
		}
	}
	// The version grows even when this run changed nothing: an earlier run
	// that was stopped may have changed fragments without recording it.
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE meta SET derivation = ?, version = version + 1 WHERE id = 1`, version)
		return err
	})
	if err != nil {
		return changed, failed, fmt.Errorf("record derivation version: %w", err)
	}
	return changed, failed, nil
}
