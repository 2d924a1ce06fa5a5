package certinv

import (
	"context"
	"time"
)

// Device is a device of the fleet, as its agent describes it.
type Device struct {
	ID          string    // 40 lowercase hex characters, stable for the device
	Name        string    // fully qualified domain name
	OS          string    // operating system, free text ("Windows Server 2022", "Ubuntu 24.04")
	CollectedAt time.Time // when the agent collected the report
}

// Group is an RBAC device group.
type Group struct {
	ID   int64
	Name string
}

// The group a device is exported in when it has none, as the vendor names it:
// GroupNone when the organization has no groups at all, GroupUnassigned when
// it has groups but none holds the device. Both have the id NoGroupID.
const (
	GroupNone       = "None"
	GroupUnassigned = "Unassigned"
	NoGroupID       = int64(0)
)

// ValidDeviceID reports whether id has the form of a device id: 40
// lowercase hexadecimal characters.
func ValidDeviceID(id string) bool {
	if len(id) != 40 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// GroupNames maps the id of each of the organization's groups to the name
// records carry, and NoGroupID to GroupNone when the organization has no
// groups or to GroupUnassigned when it has some.
func GroupNames(groups []Group) map[int64]string {
	names := make(map[int64]string, len(groups)+1)
	for _, g := range groups {
		names[g.ID] = g.Name
	}
	names[NoGroupID] = GroupNone
	if len(groups) > 0 {
		names[NoGroupID] = GroupUnassigned
	}
	return names
}

// Report is one device's full inventory, as an agent sends it: where each
// certificate lives and its bytes. The server derives every exported field.
type Report struct {
	Device Device
	// GroupName, when not empty, places the device in the RBAC group of that
	// name, created if needed. Empty leaves the device's group as it is.
	GroupName    string
	Certificates []ReportedCertificate
}

// ReportedCertificate is one certificate at one place on a device. An agent
// sends DER, or only SHA256 for a certificate the server already holds.
type ReportedCertificate struct {
	Path   string
	DER    []byte
	SHA256 [32]byte // of DER; filled in by the ingest service when DER is given
}

// Limits on one report. The ingest endpoint refuses larger input with
// ETooLarge or EInvalid before it parses anything.
const (
	MaxReportBytes           = 64 << 20 // request body
	MaxCertificatesPerReport = 20000
	MaxCertificateBytes      = 64 << 10 // one DER certificate
	MaxPathBytes             = 2048
	MaxDeviceNameBytes       = 255
	MaxOSBytes               = 255
	MaxGroupNameBytes        = 255
)

// IngestResult is the answer to a report.
type IngestResult struct {
	DeviceID        string
	Stored          int  // certificates in the device's set now
	NewCertificates int  // certificates the server had never seen
	Unchanged       bool // the set equals the one already stored
	Rejected        []RejectedCertificate
}

// RejectedCertificate is a reported certificate that could not be parsed; the
// rest of the report is stored without it.
type RejectedCertificate struct {
	Index  int    // position in the report's certificate list
	Path   string // as reported
	Reason string
}

// DeviceSet is a report made ready for a store: every certificate resolved to
// its SHA-256, and the certificates the store may not hold yet parsed.
type DeviceSet struct {
	Device    Device
	GroupName string // "" leaves the device's group as it is
	Links     []Link // unique per (Path, SHA256)
	New       []StoredCertificate
}

// SetResult is how one DeviceSet was applied.
type SetResult struct {
	// Unchanged is true when the set equals the one already stored: only the
	// device's name, OS and collection time were updated.
	Unchanged bool
	// Err is why the set was not applied; nil when it was.
	Err error
}

// Link is one certificate at one path of a device.
type Link struct {
	Path   string
	SHA256 [32]byte
}

// StoredCertificate is a certificate as stores keep it: once, keyed by the
// SHA-256 of its DER, with its record fragment (AppendCertificateJSON).
type StoredCertificate struct {
	SHA256 [32]byte
	DER    []byte
	JSON   []byte
}

// Inventory is the current state of the fleet, as ingest writes it.
type Inventory interface {
	// OrgID returns the organization's GUID, made when the store was created.
	OrgID(ctx context.Context) (string, error)

	// MissingCertificates returns those of hashes that the store does not hold.
	MissingCertificates(ctx context.Context, hashes [][32]byte) ([][32]byte, error)

	// ApplyDeviceSets replaces each device's set of links with the given one,
	// storing the new certificates it does not hold yet. All sets are written
	// in one transaction, and results[i] tells how sets[i] went. A set that
	// cannot be applied gets its error in results[i].Err (EConflict when its
	// CollectedAt is older than the last report taken for that device; an
	// *UnknownCertificatesError when a link names a certificate the store does
	// not hold and New does not carry) and writes nothing; any other failure
	// returns err and writes nothing at all.
	ApplyDeviceSets(ctx context.Context, sets []DeviceSet) (results []SetResult, err error)

	// SetDeviceGroup places a known device in the named group, created if
	// needed; an empty name takes the device out of its group. ENotFound when
	// the device is unknown.
	SetDeviceGroup(ctx context.Context, deviceID, groupName string) error

	// Groups returns the organization's RBAC groups, by id.
	Groups(ctx context.Context) ([]Group, error)
}

// InventoryRow is one record of the inventory as a store reads it for a
// snapshot. CertificateJSON is valid only until the callback returns.
type InventoryRow struct {
	GroupID         int64
	GroupName       string // GroupNone or GroupUnassigned where the device has no group
	DeviceID        string
	DeviceName      string
	Path            string
	CertificateJSON []byte
}

// InventoryReader reads the inventory for snapshots.
type InventoryReader interface {
	// Version identifies the inventory's state: it changes whenever a read
	// would return different rows, and only grows.
	Version(ctx context.Context) (int64, error)

	// ReadInventory calls fn for every record, in one consistent read (one
	// transaction: reports taken meanwhile are not seen), ordered by group id,
	// then device id, then path, then thumbprint. It returns the version it
	// read. Memory does not grow with the fleet. An error from fn stops the
	// read and is returned.
	ReadInventory(ctx context.Context, fn func(*InventoryRow) error) (version int64, err error)
}

// UnknownCertificatesError answers a report that names certificates by
// SHA-256 alone which the server does not hold. Nothing of the report is
// stored; the agent sends it again with the DER of those certificates.
type UnknownCertificatesError struct {
	SHA256 [][32]byte
}

func (e *UnknownCertificatesError) Error() string { return e.Unwrap().Error() }

// Unwrap returns the client-safe error, of kind EConflict.
func (e *UnknownCertificatesError) Unwrap() error {
	return Errorf(EConflict, "the report names %d certificate(s) by sha256 that the server does not hold; send the report again with their der", len(e.SHA256))
}
