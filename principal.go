package certinv

import "slices"

// The permissions of the export API, as the vendor names them.
const (
	RoleVulnerabilityReadAll = "Vulnerability.Read.All" // application permission, claim roles
	ScopeVulnerabilityRead   = "Vulnerability.Read"     // delegated permission, claim scp
)

// Principal is the caller of a request, from a validated bearer token.
type Principal struct {
	Issuer   string
	TenantID string   // tid
	AppID    string   // appid (v1) or azp (v2)
	ObjectID string   // oid: the user of a delegated token, the app's service principal otherwise
	UPN      string   // upn or preferred_username of a delegated token
	Roles    []string // application permissions
	Scopes   []string // delegated permissions (scp, split on spaces)
}

// Delegated reports whether the token acts for a user (it carries scp).
func (p *Principal) Delegated() bool { return len(p.Scopes) > 0 }

// CanReadVulnerabilities reports whether p may call the export API: an
// application with Vulnerability.Read.All or a user with Vulnerability.Read.
func (p *Principal) CanReadVulnerabilities() bool {
	return slices.Contains(p.Roles, RoleVulnerabilityReadAll) ||
		slices.Contains(p.Scopes, ScopeVulnerabilityRead)
}
