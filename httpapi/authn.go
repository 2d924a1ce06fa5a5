package httpapi

import (
	"net/http"
	"strings"

	"github.com/certinv/certinv"
)

// bearer returns the token of an "Authorization: Bearer <token>" header.
func bearer(r *http.Request) (string, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", certinv.Errorf(certinv.EUnauthorized, "the request has no Authorization header; send Authorization: Bearer <access token>")
	}
	scheme, token, ok := strings.Cut(h, " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", certinv.Errorf(certinv.EUnauthorized, "the Authorization header is not of the form Bearer <access token>")
	}
	return token, nil
}

// authorize returns the caller of an export API request: a valid token whose
// principal has Vulnerability.Read.All (roles) or Vulnerability.Read (scp).
func (s *Server) authorize(r *http.Request) (*certinv.Principal, error) {
	token, err := bearer(r)
	if err != nil {
		return nil, err
	}
	p, err := s.cfg.Verifier.Verify(r.Context(), token)
	if err != nil {
		return nil, err
	}
	if !p.CanReadVulnerabilities() {
		return nil, certinv.Errorf(certinv.EForbidden, "the token grants neither the application permission %s (roles) nor the delegated permission %s (scp)",
			certinv.RoleVulnerabilityReadAll, certinv.ScopeVulnerabilityRead)
	}
	return p, nil
}
