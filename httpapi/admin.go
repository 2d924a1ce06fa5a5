package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/certinv/certinv"
)

// PathAdmin is the prefix of the admin API. Every admin call needs a token
// with the application role certinv.RoleAdmin (claim roles), and every
// change it makes is written to the audit log with the caller as actor.
const PathAdmin = "/api/admin/"

// AdminStore is what the admin API manages; *sqlite.DB is one.
type AdminStore interface {
	Groups(ctx context.Context) ([]certinv.Group, error)
	certinv.UserGroups
	certinv.DeviceGroupRules
	certinv.DeviceCredentials
	certinv.AuditLog
}

// UserGroupsFunc returns the GroupsFunc of delegated access: an application
// sees every group; a user (a token with scp) sees the groups an
// administrator granted to its oid or upn, and nothing else.
func UserGroupsFunc(store certinv.UserGroups) GroupsFunc {
	return func(ctx context.Context, p *certinv.Principal) (bool, []int64, error) {
		if !p.Delegated() {
			return true, nil, nil
		}
		ids, err := store.UserGroupIDs(ctx, p.ObjectID, p.UPN)
		if err != nil {
			return false, nil, fmt.Errorf("groups of user %s: %w", p.ObjectID, err)
		}
		return false, ids, nil
	}
}

// Actor names the caller of an admin call in the audit log.
func Actor(p *certinv.Principal) string {
	if p.Delegated() {
		who := p.UPN
		if who == "" {
			who = p.ObjectID
		}
		return fmt.Sprintf("user:%s app:%s tenant:%s", who, p.AppID, p.TenantID)
	}
	return fmt.Sprintf("app:%s tenant:%s", p.AppID, p.TenantID)
}

// maxAdminBody bounds an admin request's body.
const maxAdminBody = 64 << 10

// adminHandler serves one admin route; actor is the audit log's caller.
type adminHandler func(w http.ResponseWriter, r *http.Request, actor string) error

// adminCall carries the actor to an admin route and its error back.
type adminCall struct {
	actor string
	err   error
}

type adminCallKey struct{}

// newAdminMux routes the admin API.
func (s *Server) newAdminMux() *http.ServeMux {
	mux := http.NewServeMux()
	handle := func(pattern string, h adminHandler) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			call := r.Context().Value(adminCallKey{}).(*adminCall)
			call.err = h(w, r, call.actor)
		})
	}
	handle("GET /api/admin/groups", s.adminGroups)
	handle("GET /api/admin/grants", s.adminGrants)
	handle("PUT /api/admin/users/{user}/groups/{group}", s.adminGrant)
	handle("DELETE /api/admin/users/{user}/groups/{group}", s.adminRevoke)
	handle("GET /api/admin/rules", s.adminRules)
	handle("POST /api/admin/rules", s.adminAddRule)
	handle("DELETE /api/admin/rules/{id}", s.adminDeleteRule)
	handle("GET /api/admin/devices/{id}", s.adminDevice)
	handle("PUT /api/admin/devices/{id}/tags", s.adminTags)
	handle("PUT /api/admin/devices/{id}/group", s.adminPin)
	handle("POST /api/admin/devices/{id}/revoke", s.adminRevokeDevice)
	handle("POST /api/admin/devices/{id}/reset", s.adminResetDevice)
	handle("GET /api/admin/audit", s.adminAudit)
	handle("/api/admin/", func(_ http.ResponseWriter, r *http.Request, _ string) error {
		return certinv.Errorf(certinv.ENotFound, "the admin API has no %s %s; see docs/ADMIN.md", r.Method, truncate(r.URL.Path, 200))
	})
	return mux
}

// handleAdmin serves /api/admin/...: it authenticates the caller, requires
// the admin role, and routes.
func (s *Server) handleAdmin(w http.ResponseWriter, r *http.Request) error {
	token, err := bearer(r)
	if err != nil {
		return err
	}
	p, err := s.cfg.Verifier.Verify(r.Context(), token)
	if err != nil {
		return err
	}
	if !slices.Contains(p.Roles, certinv.RoleAdmin) {
		return certinv.Errorf(certinv.EForbidden, "the admin API needs the application role %s (claim roles), which the token does not carry", certinv.RoleAdmin)
	}
	call := &adminCall{actor: Actor(p)}
	s.adminMux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), adminCallKey{}, call)))
	return call.err
}

// decodeAdminBody reads a JSON object with known fields only.
func decodeAdminBody(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAdminBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return certinv.Errorf(certinv.ETooLarge, "the body is larger than %d bytes", maxAdminBody)
		}
		return certinv.Errorf(certinv.EInvalid, "the body is not the JSON object this call takes: %s", truncate(err.Error(), 160))
	}
	if _, err := dec.Token(); err != io.EOF {
		return certinv.Errorf(certinv.EInvalid, "the body has data after its JSON object")
	}
	return nil
}

type listJSON[T any] struct {
	Value []T `json:"value"`
}

func (s *Server) writeAdmin(w http.ResponseWriter, r *http.Request, status int, v any) error {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(r.Context(), s.log, w, status, v)
	return nil
}

type groupJSON struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

func (s *Server) adminGroups(w http.ResponseWriter, r *http.Request, _ string) error {
	gs, err := s.cfg.Admin.Groups(r.Context())
	if err != nil {
		return err
	}
	out := listJSON[groupJSON]{Value: []groupJSON{}}
	for _, g := range gs {
		out.Value = append(out.Value, groupJSON{g.ID, g.Name})
	}
	return s.writeAdmin(w, r, http.StatusOK, &out)
}

type grantJSON struct {
	User      string `json:"user"`
	GroupID   int64  `json:"groupId"`
	GroupName string `json:"groupName"`
	GrantedAt string `json:"grantedAt"`
}

func (s *Server) adminGrants(w http.ResponseWriter, r *http.Request, _ string) error {
	gs, err := s.cfg.Admin.UserGrants(r.Context(), r.URL.Query().Get("user"))
	if err != nil {
		return err
	}
	out := listJSON[grantJSON]{Value: []grantJSON{}}
	for _, g := range gs {
		out.Value = append(out.Value, grantJSON{g.User, g.GroupID, g.GroupName, g.GrantedAt.UTC().Format(certinv.TimeFormat)})
	}
	return s.writeAdmin(w, r, http.StatusOK, &out)
}

func (s *Server) adminGrant(w http.ResponseWriter, r *http.Request, actor string) error {
	user, group := r.PathValue("user"), r.PathValue("group")
	if err := s.cfg.Admin.GrantUserGroup(r.Context(), actor, user, group); err != nil {
		return err
	}
	return s.writeAdmin(w, r, http.StatusOK, map[string]string{"user": user, "group": group})
}

func (s *Server) adminRevoke(w http.ResponseWriter, r *http.Request, actor string) error {
	if err := s.cfg.Admin.RevokeUserGroup(r.Context(), actor, r.PathValue("user"), r.PathValue("group")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ruleJSON is a rule on the wire.
type ruleJSON struct {
	ID             int64  `json:"id,omitempty"`
	Group          string `json:"group"`
	GroupID        int64  `json:"groupId,omitempty"`
	Priority       int    `json:"priority"`
	DeviceNameGlob string `json:"deviceNameGlob,omitempty"`
	DomainSuffix   string `json:"domainSuffix,omitempty"`
	OSGlob         string `json:"osGlob,omitempty"`
	Tag            string `json:"tag,omitempty"`
}

func ruleOut(r *certinv.GroupRule) ruleJSON {
	return ruleJSON{ID: r.ID, Group: r.GroupName, GroupID: r.GroupID, Priority: r.Priority,
		DeviceNameGlob: r.NameGlob, DomainSuffix: r.DomainSuffix, OSGlob: r.OSGlob, Tag: r.Tag}
}

func (s *Server) adminRules(w http.ResponseWriter, r *http.Request, _ string) error {
	rules, err := s.cfg.Admin.GroupRules(r.Context())
	if err != nil {
		return err
	}
	out := listJSON[ruleJSON]{Value: []ruleJSON{}}
	for i := range rules {
		out.Value = append(out.Value, ruleOut(&rules[i]))
	}
	return s.writeAdmin(w, r, http.StatusOK, &out)
}

func (s *Server) adminAddRule(w http.ResponseWriter, r *http.Request, actor string) error {
	var in ruleJSON
	if err := decodeAdminBody(w, r, &in); err != nil {
		return err
	}
	if in.ID != 0 || in.GroupID != 0 {
		return certinv.Errorf(certinv.EInvalid, "id and groupId are assigned by the server; send group, priority and conditions")
	}
	rule, err := s.cfg.Admin.AddGroupRule(r.Context(), actor, certinv.GroupRule{GroupName: in.Group, Priority: in.Priority,
		NameGlob: in.DeviceNameGlob, DomainSuffix: in.DomainSuffix, OSGlob: in.OSGlob, Tag: in.Tag})
	if err != nil {
		return err
	}
	return s.writeAdmin(w, r, http.StatusCreated, ruleOut(rule))
}

func (s *Server) adminDeleteRule(w http.ResponseWriter, r *http.Request, actor string) error {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return certinv.Errorf(certinv.EInvalid, "a rule id is a positive integer")
	}
	if err := s.cfg.Admin.DeleteGroupRule(r.Context(), actor, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// deviceJSON is a device's placement and enrollment; never its secret.
type deviceJSON struct {
	DeviceID    string   `json:"deviceId"`
	Known       bool     `json:"known"`
	DeviceName  string   `json:"deviceName,omitempty"`
	OSPlatform  string   `json:"osPlatform,omitempty"`
	GroupID     int64    `json:"rbacGroupId"`
	Group       string   `json:"rbacGroupName"`
	PinnedGroup string   `json:"pinnedGroup,omitempty"`
	Tags        []string `json:"tags"`
	Enrolled    bool     `json:"enrolled"`
	EnrolledAt  string   `json:"enrolledAt,omitempty"`
	Revoked     bool     `json:"revoked"`
	RevokedAt   string   `json:"revokedAt,omitempty"`
}

func (s *Server) writeDevice(w http.ResponseWriter, r *http.Request, id string) error {
	a, err := s.cfg.Admin.DeviceAccess(r.Context(), id)
	if err != nil {
		return err
	}
	out := deviceJSON{DeviceID: a.DeviceID, Known: a.Known, DeviceName: a.Name, OSPlatform: a.OS,
		GroupID: a.GroupID, Group: a.Group, PinnedGroup: a.PinnedGroup, Tags: a.Tags}
	if out.Tags == nil {
		out.Tags = []string{}
	}
	if c := a.Credential; c != nil {
		out.Enrolled = c.SecretHash != [32]byte{}
		if !c.EnrolledAt.IsZero() && out.Enrolled {
			out.EnrolledAt = c.EnrolledAt.UTC().Format(certinv.TimeFormat)
		}
		if out.Revoked = c.Revoked(); out.Revoked {
			out.RevokedAt = c.RevokedAt.UTC().Format(certinv.TimeFormat)
		}
	}
	return s.writeAdmin(w, r, http.StatusOK, &out)
}

func (s *Server) adminDevice(w http.ResponseWriter, r *http.Request, _ string) error {
	return s.writeDevice(w, r, r.PathValue("id"))
}

func (s *Server) adminTags(w http.ResponseWriter, r *http.Request, actor string) error {
	var in struct {
		Tags []string `json:"tags"`
	}
	if err := decodeAdminBody(w, r, &in); err != nil {
		return err
	}
	id := r.PathValue("id")
	if err := s.cfg.Admin.SetDeviceTags(r.Context(), actor, id, in.Tags); err != nil {
		return err
	}
	return s.writeDevice(w, r, id)
}

func (s *Server) adminPin(w http.ResponseWriter, r *http.Request, actor string) error {
	var in struct {
		Group *string `json:"group"`
	}
	if err := decodeAdminBody(w, r, &in); err != nil {
		return err
	}
	if in.Group == nil {
		return certinv.Errorf(certinv.EInvalid, `the body must be {"group": "<name>"}; "" lets rules place the device again`)
	}
	id := r.PathValue("id")
	if err := s.cfg.Admin.PinDeviceGroup(r.Context(), actor, id, *in.Group); err != nil {
		return err
	}
	return s.writeDevice(w, r, id)
}

func (s *Server) adminRevokeDevice(w http.ResponseWriter, r *http.Request, actor string) error {
	id := r.PathValue("id")
	if err := s.cfg.Admin.RevokeDevice(r.Context(), actor, id); err != nil {
		return err
	}
	return s.writeDevice(w, r, id)
}

func (s *Server) adminResetDevice(w http.ResponseWriter, r *http.Request, actor string) error {
	id := r.PathValue("id")
	if err := s.cfg.Admin.ResetDevice(r.Context(), actor, id); err != nil {
		return err
	}
	return s.writeDevice(w, r, id)
}

type auditJSON struct {
	ID      int64           `json:"id"`
	Time    string          `json:"time"`
	Actor   string          `json:"actor"`
	Action  string          `json:"action"`
	Target  string          `json:"target"`
	Details json.RawMessage `json:"details"`
}

// adminAudit serves GET /api/admin/audit?after=ID&limit=N (default 1000).
func (s *Server) adminAudit(w http.ResponseWriter, r *http.Request, _ string) error {
	q, err := queryParams(r.URL.RawQuery)
	if err != nil {
		return err
	}
	after, _, err := intParam(q, "after", "after", 0, 1<<62, 0)
	if err != nil {
		return err
	}
	limit, _, err := intParam(q, "limit", "limit", 1, 10000, 1000)
	if err != nil {
		return err
	}
	es, err := s.cfg.Admin.AuditEntries(r.Context(), int64(after), limit)
	if err != nil {
		return err
	}
	out := listJSON[auditJSON]{Value: []auditJSON{}}
	for _, e := range es {
		d := json.RawMessage(e.Details)
		if !json.Valid(d) {
			d, _ = json.Marshal(e.Details)
		}
		out.Value = append(out.Value, auditJSON{e.ID, e.Time.UTC().Format(time.RFC3339Nano), e.Actor, e.Action, e.Target, d})
	}
	return s.writeAdmin(w, r, http.StatusOK, &out)
}
