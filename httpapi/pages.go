package httpapi

import (
	"bufio"
	"context"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"strconv"

	"github.com/certinv/certinv"
	"github.com/certinv/certinv/snapshot"
)

// pageBufferSize is how much of a page is held before the first bytes go to
// the client. An error within it is still answered with an error body;
// after it, the response can only be cut short.
const pageBufferSize = 64 << 10

// handlePages serves GET /api/machines/CertificateAssessmentByMachine: the
// next records of the caller's traversal, copied from the snapshot files as
// they are and streamed.
func (s *Server) handlePages(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	p, err := s.authorize(r)
	if err != nil {
		return err
	}
	q, err := queryParams(r.URL.RawQuery, "$top", "$skiptoken")
	if err != nil {
		return err
	}
	pageSize, _, err := intParam(q, "pagesize", "pageSize", 1, MaxPageSize, DefaultPageSize)
	if err != nil {
		return err
	}
	top, hasTop, err := intParam(q, "$top", "$top", 1, MaxPageSize, 0)
	if err != nil {
		return err
	}
	all, groups, err := s.groups(ctx, p)
	if err != nil {
		return err
	}
	scope := callerScope(p, all, groups)

	var snap *certinv.Snapshot
	var from snapshot.Position
	tok, continued := q["$skiptoken"]
	if continued {
		st, err := decodeSkiptoken(tok, s.cfg.SkiptokenKey, scope)
		if err != nil {
			return err
		}
		snap, err = s.cfg.Registry.Snapshot(ctx, st.SnapshotID)
		if certinv.KindOf(err) == certinv.ENotFound {
			return certinv.Errorf(certinv.EBadRequest, "the $skiptoken points into an export that has been retired"+restartHint)
		} else if err != nil {
			return err
		}
		if snap.TimePath() != st.ExportDefinition.TimePath {
			return certinv.Errorf(certinv.EBadRequest, "the $skiptoken does not match its export"+restartHint)
		}
		from = snapshot.Position{File: st.ExportFileIndex, Line: st.LineStoppedAt}
	} else {
		if snap, err = s.latest(ctx); err != nil {
			return err
		}
	}
	m, err := s.manifest(ctx, snap)
	if err != nil {
		if continued && errors.Is(err, fs.ErrNotExist) {
			// Retired between the registry lookup and the read.
			return certinv.Errorf(certinv.EBadRequest, "the $skiptoken points into an export that has been retired"+restartHint)
		}
		return err
	}
	if from.File > len(m.Files) {
		return certinv.Errorf(certinv.EBadRequest, "the $skiptoken's position is past the export"+restartHint)
	}
	n := int64(pageSize)
	if hasTop {
		n = int64(top)
	}

	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	cw := &countWriter{w: w}
	bw := bufio.NewWriterSize(cw, pageBufferSize)
	bw.Write(s.pageCtx)
	next, _, more, err := m.CopyRecords(ctx, s.cfg.Bucket, from, n, groupFilter(all, groups), bw, []byte{','})
	if err != nil {
		if cw.failed {
			logWriteError(ctx, s.log, err)
			return nil // the client is gone
		}
		if cw.n == 0 {
			bw.Reset(io.Discard) // nothing sent: answer with an error instead
		}
		if errors.Is(err, fs.ErrNotExist) {
			// Retired between the registry lookup and the read.
			return certinv.Errorf(certinv.EBadRequest, "the export this page reads has been retired"+restartHint)
		}
		return err
	}
	bw.WriteByte(']')
	if more && !hasTop {
		t := skiptoken{ExportFileIndex: next.File, LineStoppedAt: next.Line, SnapshotID: snap.ID, Scope: scope}
		t.ExportDefinition.TimePath = snap.TimePath()
		bw.WriteString(`,"@odata.nextLink":"`)
		bw.WriteString(s.nextPrefix)
		bw.WriteString(strconv.Itoa(pageSize))
		bw.WriteString("&$skiptoken=")
		bw.WriteString(encodeSkiptoken(&t, s.cfg.SkiptokenKey))
		bw.WriteByte('"')
	}
	bw.WriteByte('}')
	if err := bw.Flush(); err != nil {
		if ctx.Err() != nil || cw.failed {
			logWriteError(ctx, s.log, err)
			return nil // the client is gone
		}
		return err
	}
	return nil
}

// latest returns the newest published snapshot; EUnavailable before the
// first one.
func (s *Server) latest(ctx context.Context) (*certinv.Snapshot, error) {
	snap, err := s.cfg.Registry.LatestSnapshot(ctx)
	if certinv.KindOf(err) == certinv.ENotFound {
		return nil, certinv.Errorf(certinv.EUnavailable, "no export is published yet: the first snapshot of the inventory is being built; try again in a minute")
	}
	return snap, err
}

// groupFilter selects the files of the caller's groups.
func groupFilter(all bool, groups []int64) func(*snapshot.File) bool {
	if all {
		return func(*snapshot.File) bool { return true }
	}
	set := make(map[int64]bool, len(groups))
	for _, g := range groups {
		set[g] = true
	}
	return func(f *snapshot.File) bool { return set[f.GroupID] }
}

// countWriter counts what reached the client, and remembers whether writing
// to it failed (the client went away) as opposed to reading a file.
type countWriter struct {
	w      io.Writer
	n      int64
	failed bool
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	if err != nil {
		c.failed = true
	}
	return n, err
}
