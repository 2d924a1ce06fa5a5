package httpapi

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/certinv/certinv"
)

var timeZero time.Time

// handleHealth serves GET /healthz (liveness): 200 once the server can
// answer the export API (a snapshot is published), 503 before.
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

// ReadinessCheck is one dependency that GET /readyz reports: the database,
// the blob storage, the rate limit store, the latest snapshot.
type ReadinessCheck struct {
	// Name is the check's key in the answer ("database", "blobStorage").
	Name string
	// Check tells whether the dependency can be used now, within ctx's
	// deadline. Details are shown as they are: they must hold no secret
	// (no connection string, no host of a private network). An error is
	// shown by its client-safe message only (certinv.MessageOf) and logged
	// in full.
	Check func(ctx context.Context) (details map[string]any, err error)
	// Optional checks are reported but do not make the server unready: a
	// dependency the server can serve without (a rate limit store that
	// fails open, say).
	Optional bool
}

// Readiness is the answer of GET /readyz.
type Readiness struct {
	Status string                    `json:"status"` // "ready" or "unready"
	Checks map[string]ReadinessState `json:"checks"`
}

// ReadinessState is one check's outcome in a Readiness.
type ReadinessState struct {
	Status   string         `json:"status"` // "ok", "failed" or "degraded" (an optional check that failed)
	Message  string         `json:"message,omitempty"`
	Optional bool           `json:"optional,omitempty"`
	Details  map[string]any `json:"details,omitempty"`
	Millis   float64        `json:"ms"` // how long the check took
}

// ReadinessTimeout bounds each check of GET /readyz.
const ReadinessTimeout = 2 * time.Second

// handleReady serves GET /readyz (readiness): each configured dependency's
// state as JSON, 200 when every required check passed, 503 otherwise. With
// no checks configured it reports the latest snapshot alone, as /healthz.
func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	res := s.Readiness(ctx)
	status := http.StatusOK
	if res.Status != "ready" {
		status = http.StatusServiceUnavailable
		w.Header().Set("Retry-After", "5")
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(ctx, s.log, w, status, res)
	return nil
}

// Readiness runs the readiness checks at once, each within
// ReadinessTimeout, and returns their states.
func (s *Server) Readiness(ctx context.Context) *Readiness {
	checks := s.cfg.Readiness
	if len(checks) == 0 {
		checks = []ReadinessCheck{{Name: "snapshot", Check: s.snapshotCheck}}
	}
	res := &Readiness{Status: "ready", Checks: make(map[string]ReadinessState, len(checks))}
	states := make([]ReadinessState, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, ReadinessTimeout)
			defer cancel()
			start := time.Now()
			details, err := c.Check(cctx)
			st := ReadinessState{Status: "ok", Optional: c.Optional, Details: details,
				Millis: float64(time.Since(start).Microseconds()) / 1000}
			if err == nil && cctx.Err() != nil {
				err = certinv.Errorf(certinv.EUnavailable, "no answer within %v", ReadinessTimeout)
			}
			if err != nil {
				st.Status = "failed"
				if c.Optional {
					st.Status = "degraded"
				}
				st.Message = readinessMessage(err)
				s.log.WarnContext(ctx, "readiness check failed", "check", c.Name, "optional", c.Optional, "err", err)
			}
			states[i] = st
		}()
	}
	wg.Wait()
	for i, c := range checks {
		res.Checks[c.Name] = states[i]
		if states[i].Status == "failed" {
			res.Status = "unready"
		}
	}
	return res
}

// readinessMessage is what /readyz shows of a failed check: the client-safe
// message of a *certinv.Error, nothing of an internal error (which may
// name hosts or carry a driver's detail).
func readinessMessage(err error) string {
	if certinv.KindOf(err) == certinv.EInternal {
		return "the check failed; the server's log has the cause"
	}
	return certinv.MessageOf(err)
}

// snapshotCheck is the readiness check of the latest snapshot: it fails
// when none is published, and reports its id, time and age otherwise.
func (s *Server) snapshotCheck(ctx context.Context) (map[string]any, error) {
	snap, err := s.cfg.Registry.LatestSnapshot(ctx)
	if certinv.KindOf(err) == certinv.ENotFound {
		return nil, certinv.Errorf(certinv.EUnavailable, "no snapshot is published yet: the first one is being built")
	}
	if err != nil {
		return nil, err
	}
	return SnapshotDetails(snap, s.now()), nil
}

// SnapshotDetails describes a snapshot for /readyz: its id, generatedTime,
// age in seconds at now, records and files.
func SnapshotDetails(snap *certinv.Snapshot, now time.Time) map[string]any {
	return map[string]any{
		"id":            snap.ID,
		"generatedTime": snap.GeneratedAt.UTC().Format(certinv.TimeFormat),
		"ageSeconds":    int64(now.Sub(snap.GeneratedAt).Seconds()),
		"records":       snap.Records,
		"files":         snap.Files,
	}
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
