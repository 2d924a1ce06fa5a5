package httpapi

import (
	"net/http"
	"time"

	"github.com/certinv/certinv"
)

// exportResponse is the body of CertificateAssessmentExport.
type exportResponse struct {
	Context       string   `json:"@odata.context"`
	ExportFiles   []string `json:"exportFiles"`
	GeneratedTime string   `json:"generatedTime"`
}

// handleExport serves GET /api/machines/CertificateAssessmentExport: signed
// URLs of the latest snapshot's files of the caller's groups.
func (s *Server) handleExport(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	p, err := s.authorize(r)
	if err != nil {
		return err
	}
	q, err := queryParams(r.URL.RawQuery)
	if err != nil {
		return err
	}
	hours, _, err := intParam(q, "sasvalidhours", "sasValidHours", 1, MaxSASValidHours, DefaultSASValidHours)
	if err != nil {
		return err
	}
	all, groups, err := s.groups(ctx, p)
	if err != nil {
		return err
	}
	snap, err := s.latest(ctx)
	if err != nil {
		return err
	}
	m, err := s.manifest(ctx, snap)
	if err != nil {
		return err
	}
	include := groupFilter(all, groups)
	start := s.now().UTC().Truncate(time.Second)
	expiry := start.Add(time.Duration(hours) * time.Hour)
	resp := exportResponse{Context: s.exportCtx, ExportFiles: []string{}, GeneratedTime: snap.GeneratedAt.UTC().Format(certinv.TimeFormat)}
	for i := range m.Files {
		f := &m.Files[i]
		if !include(f) {
			continue
		}
		u, err := s.cfg.Signer.SignedURL(ctx, f.Key, start, expiry)
		if err != nil {
			return err
		}
		resp.ExportFiles = append(resp.ExportFiles, u)
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(ctx, s.log, w, http.StatusOK, &resp)
	return nil
}
