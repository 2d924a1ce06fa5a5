package httpapi

import (
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strconv"

	"github.com/certinv/certinv"
)

// handleFile serves GET /files/{key...}: a snapshot file of the local
// bucket, for a URL that the LocalSigner signed. The body is the gzip file
// itself (application/gzip, no Content-Encoding: clients gunzip it).
func (s *Server) handleFile(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.LocalFiles == nil {
		return certinv.Errorf(certinv.ENotFound, "this server does not serve files; download URLs point at the storage service")
	}
	ctx := r.Context()
	key := r.URL.Path[len(PathFiles):]
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return certinv.Errorf(certinv.EForbidden, "the download URL's query is malformed; call GET %s for new download URLs", PathExport)
	}
	if err := s.cfg.LocalFiles.Verify(key, q, s.now()); err != nil {
		return err // EForbidden saying what was wrong; internal when misconfigured
	}
	rc, err := s.cfg.Bucket.Open(ctx, key, 0, -1)
	if errors.Is(err, fs.ErrNotExist) {
		return certinv.Errorf(certinv.ENotFound, "the file no longer exists (its export was retired); call GET %s for new download URLs", PathExport)
	} else if err != nil {
		return err
	}
	defer rc.Close()

	h := w.Header()
	h.Set("Content-Type", "application/gzip")
	h.Set("Cache-Control", "private, no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	// A seekable object (blob.Dir's is) gets Range, HEAD and
	// Content-Length from the standard library.
	if rs, ok := rc.(io.ReadSeeker); ok {
		http.ServeContent(w, r, path.Base(key), timeZero, rs)
		return nil
	}
	if sz, ok := rc.(interface{ Size() int64 }); ok {
		h.Set("Content-Length", strconv.FormatInt(sz.Size(), 10))
	}
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return nil
	}
	if _, err := io.Copy(w, rc); err != nil {
		logWriteError(ctx, s.log, err)
	}
	return nil
}
