package certinv

import (
	"context"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// RoleAdmin is the application role (claim roles) that the admin API
// (/api/admin/...) requires. Read-only applications do not have it.
const RoleAdmin = "Certinv.Admin"

// UserGrant gives one user, named by object id (oid) or user principal name
// (upn), the devices of one RBAC group in the export API.
type UserGrant struct {
	User      string // oid, or upn (compared without regard to ASCII case)
	GroupID   int64  // NoGroupID for the devices of no group (Unassigned or None)
	GroupName string
	GrantedAt time.Time
}

// UserGroups keeps which RBAC groups each delegated user may read.
type UserGroups interface {
	// GrantUserGroup gives user the group named group ("Unassigned" or
	// "None": the devices of no group). ENotFound when the group does not
	// exist; granting twice is not an error.
	GrantUserGroup(ctx context.Context, actor, user, group string) error

	// RevokeUserGroup takes the group from user. ENotFound when the user
	// does not hold it.
	RevokeUserGroup(ctx context.Context, actor, user, group string) error

	// UserGrants returns the grants of user (every user's when user is
	// empty), by user then group id.
	UserGrants(ctx context.Context, user string) ([]UserGrant, error)

	// UserGroupIDs returns the ids of the groups granted to the user with
	// object id oid or principal name upn (either may be empty), without
	// duplicates, ascending. It is called on every delegated request.
	UserGroupIDs(ctx context.Context, oid, upn string) ([]int64, error)
}

// GroupRule places devices in an RBAC group. A device goes to the group of
// the first rule that matches it, by ascending Priority, then ID; a device
// that no rule matches has no group (Unassigned). Every condition that is
// not empty must match.
type GroupRule struct {
	ID        int64
	GroupID   int64
	GroupName string
	Priority  int
	// NameGlob matches the device's name (its FQDN) as a whole: * is any
	// run of characters, ? one character; ASCII letters match either case.
	NameGlob string
	// DomainSuffix matches a name equal to it or ending in "." + it:
	// "corp.example.com" matches "db1.corp.example.com". ASCII case-insensitive.
	DomainSuffix string
	// OSGlob matches the device's OS text like NameGlob ("Windows Server*").
	OSGlob string
	// Tag matches a device that has this tag (exactly, case-sensitive).
	Tag string
}

// Limits of rules and tags.
const (
	MaxRulePatternBytes = 255
	MaxTagBytes         = 64
	MaxTagsPerDevice    = 32
	MaxRulePriority     = 1_000_000
)

// Normalize validates r's conditions and puts them in their stored form
// (domain suffix lower-case, without leading or trailing dots). EInvalid
// says what is wrong.
func (r *GroupRule) Normalize() error {
	if strings.TrimSpace(r.GroupName) == "" {
		return Errorf(EInvalid, "a rule needs a group name")
	}
	if len(r.GroupName) > MaxGroupNameBytes {
		return Errorf(EInvalid, "the group name is longer than %d bytes", MaxGroupNameBytes)
	}
	if r.GroupName == GroupNone || r.GroupName == GroupUnassigned {
		return Errorf(EInvalid, "the group %q is where devices go when no rule matches; a rule cannot name it", r.GroupName)
	}
	if r.Priority < 0 || r.Priority > MaxRulePriority {
		return Errorf(EInvalid, "priority must be between 0 and %d", MaxRulePriority)
	}
	r.DomainSuffix = strings.Trim(asciiLower(strings.TrimSpace(r.DomainSuffix)), ".")
	for _, c := range []struct{ name, v string }{
		{"deviceNameGlob", r.NameGlob}, {"domainSuffix", r.DomainSuffix}, {"osGlob", r.OSGlob}, {"tag", r.Tag},
	} {
		if len(c.v) > MaxRulePatternBytes {
			return Errorf(EInvalid, "%s is longer than %d bytes", c.name, MaxRulePatternBytes)
		}
		if !printable(c.v) {
			return Errorf(EInvalid, "%s must be valid UTF-8 without control characters", c.name)
		}
	}
	if r.NameGlob == "" && r.DomainSuffix == "" && r.OSGlob == "" && r.Tag == "" {
		return Errorf(EInvalid, "a rule needs at least one condition: deviceNameGlob, domainSuffix, osGlob or tag")
	}
	if r.Tag != "" {
		if err := ValidateTag(r.Tag); err != nil {
			return err
		}
	}
	return nil
}

// Matches reports whether every condition of r holds for a device of the
// given name, OS and tags. It is the reference that stores' own evaluation
// (SQL, say) must agree with.
func (r *GroupRule) Matches(name, os string, tags []string) bool {
	if r.NameGlob != "" && !MatchGlob(r.NameGlob, name) {
		return false
	}
	if r.DomainSuffix != "" {
		n, d := asciiLower(name), asciiLower(r.DomainSuffix)
		if n != d && !strings.HasSuffix(n, "."+d) {
			return false
		}
	}
	if r.OSGlob != "" && !MatchGlob(r.OSGlob, os) {
		return false
	}
	if r.Tag != "" {
		found := false
		for _, t := range tags {
			if t == r.Tag {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// MatchGlob reports whether s matches pattern as a whole: * matches any run
// of characters (none included), ? exactly one character, and every other
// character itself, ASCII letters in either case.
func MatchGlob(pattern, s string) bool {
	p, str := asciiLower(pattern), asciiLower(s)
	// Iterative match with one backtrack point: linear in practice, and
	// never exponential.
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(str) {
		if pi < len(p) {
			switch pc, pw := utf8.DecodeRuneInString(p[pi:]); pc {
			case '*':
				star, mark = pi, si
				pi += pw
				continue
			case '?':
				_, sw := utf8.DecodeRuneInString(str[si:])
				pi += pw
				si += sw
				continue
			default:
				sc, sw := utf8.DecodeRuneInString(str[si:])
				if pc == sc {
					pi += pw
					si += sw
					continue
				}
			}
		}
		if star < 0 {
			return false
		}
		pi = star + 1
		_, sw := utf8.DecodeRuneInString(str[mark:])
		mark += sw
		si = mark
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// ValidateTag checks a device tag: 1 to MaxTagBytes bytes of valid UTF-8,
// no control characters, no leading or trailing space.
func ValidateTag(tag string) error {
	switch {
	case tag == "" || len(tag) > MaxTagBytes:
		return Errorf(EInvalid, "a tag must be 1 to %d bytes", MaxTagBytes)
	case strings.TrimSpace(tag) != tag:
		return Errorf(EInvalid, "the tag %q has leading or trailing space", tag)
	case !printable(tag):
		return Errorf(EInvalid, "a tag must be valid UTF-8 without control characters")
	}
	return nil
}

// DeviceAccess is how a device is placed and whether it may report.
type DeviceAccess struct {
	DeviceID string
	Known    bool   // the device has reported (it is in the inventory)
	Name, OS string // as last reported
	GroupID  int64  // the group it is exported in now
	Group    string // its name: GroupNone or GroupUnassigned for NoGroupID
	// PinnedGroup is the group set explicitly (at ingest or by an
	// administrator), which rules do not override; empty when rules decide.
	PinnedGroup string
	Tags        []string
	Credential  *DeviceCredential // nil when the device never enrolled
}

// DeviceGroupRules keeps the rules that place devices in groups, the tags
// that rules match and the groups pinned by administrators. A change to
// rules, tags or pins places the devices anew at once, in the same
// transaction, and changes the inventory version when a record would move:
// it shows from the next snapshot.
type DeviceGroupRules interface {
	// AddGroupRule stores a rule (normalized; its group created if needed)
	// and returns it with its ID.
	AddGroupRule(ctx context.Context, actor string, r GroupRule) (*GroupRule, error)
	// DeleteGroupRule deletes a rule; ENotFound when there is none of id.
	DeleteGroupRule(ctx context.Context, actor string, id int64) error
	// GroupRules returns the rules in the order they are evaluated.
	GroupRules(ctx context.Context) ([]GroupRule, error)

	// SetDeviceTags replaces a device's tags (a device that has not
	// reported yet may be tagged ahead of its first report).
	SetDeviceTags(ctx context.Context, actor, deviceID string, tags []string) error
	// PinDeviceGroup places a known device in the named group (created if
	// needed) whatever the rules say; an empty name unpins it, so rules
	// decide again. ENotFound when the device is unknown.
	PinDeviceGroup(ctx context.Context, actor, deviceID, group string) error
	// DeviceAccess returns how a device is placed and enrolled.
	DeviceAccess(ctx context.Context, deviceID string) (*DeviceAccess, error)
}

// DeviceCredential is a device's own reporting credential, stored as the
// SHA-256 of its secret (256 random bits: no slow hash is needed).
type DeviceCredential struct {
	DeviceID   string
	SecretHash [32]byte
	EnrolledAt time.Time
	RevokedAt  time.Time // zero while valid
}

// Revoked reports whether an administrator revoked the device.
func (c *DeviceCredential) Revoked() bool { return !c.RevokedAt.IsZero() }

// DeviceCredentials keeps the devices' reporting credentials.
type DeviceCredentials interface {
	// EnrollDevice stores the credential of a device that has none.
	// EConflict when it has a valid one (an administrator resets it first);
	// EForbidden when it was revoked.
	EnrollDevice(ctx context.Context, deviceID string, secretHash [32]byte) error
	// DeviceCredential returns a device's credential; ENotFound when it
	// never enrolled (or was reset).
	DeviceCredential(ctx context.Context, deviceID string) (*DeviceCredential, error)
	// RevokeDevice refuses the device's reports and enrollments from now
	// on, whether or not it enrolled.
	RevokeDevice(ctx context.Context, actor, deviceID string) error
	// ResetDevice deletes a device's credential and revocation, so that it
	// may enroll again. ENotFound when it has neither.
	ResetDevice(ctx context.Context, actor, deviceID string) error
}

// AuditEntry is one administrative action. It never holds a secret.
type AuditEntry struct {
	ID      int64
	Time    time.Time
	Actor   string // "app:<appid>@<tenant>", "user:<upn or oid>@<tenant>", "cli:<os user>", "device:<id>"
	Action  string // "group.grant", "rule.add", "device.revoke"...
	Target  string // what the action was on: a user, a rule id, a device id
	Details string // the parameters, as JSON
}

// AuditLog is the append-only record of administrative actions. The
// stores of this file write an entry in the same transaction as the action
// it records; AppendAudit records an action done elsewhere (registering an
// application, say).
type AuditLog interface {
	// AppendAudit records e; its ID is assigned, and its Time when zero.
	AppendAudit(ctx context.Context, e AuditEntry) error
	// AuditEntries returns up to limit entries with an ID above afterID,
	// oldest first.
	AuditEntries(ctx context.Context, afterID int64, limit int) ([]AuditEntry, error)
}

// asciiLower lower-cases ASCII letters only, as SQL's lower() does.
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// MaxUserBytes bounds a user's oid or upn.
const MaxUserBytes = 255

// UserKey returns how stores key a user given RBAC groups: the oid or upn,
// trimmed and lower-cased (ASCII), since tokens may spell either in any
// case. EInvalid for an empty, over-long or non-text name.
func UserKey(user string) (string, error) {
	u := strings.TrimSpace(user)
	if u == "" || len(u) > MaxUserBytes || !utf8.ValidString(u) || strings.ContainsFunc(u, unicode.IsControl) {
		return "", Errorf(EInvalid, "a user is an object id (oid) or user principal name (upn) of 1 to %d bytes", MaxUserBytes)
	}
	b := []byte(u)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b), nil
}

// NormalizeTags validates a device's tags and returns them sorted, each
// once: EInvalid for an invalid tag or more than MaxTagsPerDevice.
func NormalizeTags(tags []string) ([]string, error) {
	tags = slices.Clone(tags)
	for _, t := range tags {
		if err := ValidateTag(t); err != nil {
			return nil, err
		}
	}
	slices.Sort(tags)
	tags = slices.Compact(tags)
	if len(tags) > MaxTagsPerDevice {
		return nil, Errorf(EInvalid, "a device has at most %d tags", MaxTagsPerDevice)
	}
	return tags, nil
}
