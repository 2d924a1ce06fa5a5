package httpapi

import (
	"net/http"
	"time"

	"github.com/certinv/certinv"
)

var timeZero time.Time

// handleHealth serves GET /healthz: 200 once the server can answer the
// export API (a snapshot is published), 503 before.
func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) error {
	ready := false
	if s.cfg.Ready != nil {
		ready = s.cfg.Ready()
	} else {
		_, err := s.latest(r.Context())
		if err != nil && certinv.KindOf(err) != certinv.EUnavailable {
			return err
		}
		ready = err == nil
	}
	if !ready {
		return certinv.Errorf(certinv.EUnavailable, "not ready: the first snapshot of the inventory is being built")
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(r.Context(), s.log, w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

// handleJWKS serves the embedded issuer's keys.
func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.JWKS == nil {
		return certinv.Errorf(certinv.ENotFound, "this server does not issue tokens; get keys from the configured identity provider")
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(s.cfg.JWKS()); err != nil {
		logWriteError(r.Context(), s.log, err)
	}
	return nil
}
