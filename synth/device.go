package synth

import (
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
)

// family is a device's operating-system family: it decides store paths.
type family int

const (
	windows family = iota
	debian         // Ubuntu and Debian
	rhel
	macOS
)

// device is what a device's certificates depend on.
type device struct {
	index    int
	id       string
	family   family
	server   bool
	os       string
	host     string // short name
	fqdn     string
	region   string // servers
	role     string // servers: web, sql, k8s-node...
	dept     string // laptops: finance, engineering...
	fabrikam bool   // a laptop of the acquired company's domain
	user     string // laptops: the primary user's login
}

// The fleet's make-up, in percent of devices.
var deviceKinds = []struct {
	weight int
	family family
	server bool
	oses   []string
	osW    []int
}{
	{36, windows, false, []string{"Windows 11"}, []int{1}},
	{8, windows, false, []string{"Windows 10"}, []int{1}},
	{16, windows, true, []string{"Windows Server 2016", "Windows Server 2019", "Windows Server 2022", "Windows Server 2025"}, []int{1, 3, 5, 2}},
	{14, debian, true, []string{"Ubuntu 20.04", "Ubuntu 22.04", "Ubuntu 24.04"}, []int{1, 3, 3}},
	{3, debian, true, []string{"Debian 11", "Debian 12"}, []int{1, 2}},
	{10, rhel, true, []string{"RHEL 8", "RHEL 9"}, []int{2, 3}},
	{13, macOS, false, []string{"macOS 13", "macOS 14", "macOS 15"}, []int{1, 3, 4}},
}

var (
	kindWeights = func() []int {
		w := make([]int, len(deviceKinds))
		for i, k := range deviceKinds {
			w[i] = k.weight
		}
		return w
	}()
	regions        = []string{"eu-west", "eu-north", "us-east", "us-west", "ap-southeast"}
	regionWeights  = []int{3, 1, 3, 2, 1}
	windowsRoles   = []string{"web", "app", "sql", "fs", "dc", "rds"}
	windowsRoleW   = []int{4, 4, 3, 2, 1, 2}
	linuxRoles     = []string{"web", "api", "app", "db", "k8s-node", "build", "proxy", "mq"}
	linuxRoleW     = []int{4, 3, 3, 2, 3, 1, 1, 1}
	departments    = []string{"finance", "engineering", "sales", "hr", "marketing", "legal", "it", "operations"}
	departmentW    = []int{3, 6, 4, 1, 2, 1, 2, 2}
	firstNames     = []string{"anna", "ben", "carla", "david", "elena", "farid", "grace", "hiro", "ines", "jonas", "keira", "liam", "maya", "nils", "olga", "pedro", "quinn", "rosa", "sven", "tara", "umar", "vera", "wei", "yara", "zoe"}
	lastNames      = []string{"adams", "bauer", "chen", "dubois", "evans", "fischer", "garcia", "hansen", "ito", "jensen", "kowalski", "lopez", "muller", "nakamura", "okafor", "patel", "rossi", "silva", "tanaka", "novak", "weber", "young", "zhang", "moreau", "larsen"}
	base36         = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	base36Pow7     = uint64(78364164096)       // 36^7
	nameMultiplier = uint64(48271 * 48271 * 7) // odd and not a multiple of 3: a bijection modulo 36^7
)

// deviceID is the device's stable id: 40 lowercase hex characters from the
// seed and the index.
func deviceID(seed int64, index int) string {
	h := sha1.New()
	h.Write([]byte("certinv/synth device"))
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(seed)))
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(index)))
	return hex.EncodeToString(h.Sum(nil))
}

// uniqueToken returns 7 base-36 characters that look random and differ for
// every index below 36^7: an affine bijection of the index, offset by the
// seed.
func uniqueToken(offset uint64, index int) string {
	x := (uint64(index)%base36Pow7*nameMultiplier + offset) % base36Pow7
	var b [7]byte
	for i := 6; i >= 0; i-- {
		b[i] = base36[x%36]
		x /= 36
	}
	return string(b[:])
}

func describe(seed int64, nameOffset uint64, index int, r *rng) *device {
	k := deviceKinds[r.weighted(kindWeights)]
	d := &device{
		index:  index,
		id:     deviceID(seed, index),
		family: k.family,
		server: k.server,
		os:     k.oses[r.weighted(k.osW)],
	}
	switch {
	case d.server:
		d.region = regions[r.weighted(regionWeights)]
		domain := "contoso.local"
		if d.family == windows {
			d.role = windowsRoles[r.weighted(windowsRoleW)]
		} else {
			d.role = linuxRoles[r.weighted(linuxRoleW)]
			domain = "prod." + orgDomain
			if r.chance(0.25) {
				domain = "dev." + orgDomain
			}
		}
		d.host = fmt.Sprintf("%s-%04d", d.role, index+1)
		d.fqdn = d.host + "." + d.region + "." + domain
	default:
		d.dept = departments[r.weighted(departmentW)]
		d.user = firstNames[r.intn(len(firstNames))] + "." + lastNames[r.intn(len(lastNames))]
		token := uniqueToken(nameOffset, index)
		switch {
		case d.family == macOS:
			d.host = "MBP-C02" + token
		case r.chance(0.7):
			d.host = "LAPTOP-" + token
		default:
			d.host = "DESKTOP-" + token
		}
		domain := "corp." + orgDomain
		if r.chance(0.22) {
			d.fabrikam = true
			domain = "corp.fabrikam.com"
		}
		d.fqdn = d.host + "." + domain
	}
	return d
}

// linux reports whether d runs Linux.
func (d *device) linux() bool { return d.family == debian || d.family == rhel }

// groupCatalog lists the RBAC groups an organization of Fleet.Groups groups
// has, broadest first: with K groups, the first K exist (and branch offices
// past the catalog's end). A device goes to one of those it matches, most
// often the last.
var groupCatalog = []struct {
	name  string
	match func(*device) bool
}{
	{"Servers-EU", func(d *device) bool { return d.server && strings.HasPrefix(d.region, "eu-") }},
	{"Workstations", func(d *device) bool { return !d.server }},
	{"Servers-US", func(d *device) bool { return d.server && strings.HasPrefix(d.region, "us-") }},
	{"Finance Laptops", func(d *device) bool { return d.dept == "finance" }},
	{"Engineering Laptops", func(d *device) bool { return d.dept == "engineering" }},
	{"Servers-APAC", func(d *device) bool { return d.server && strings.HasPrefix(d.region, "ap-") }},
	{"Mac Fleet", func(d *device) bool { return d.family == macOS }},
	{"Domain Controllers", func(d *device) bool { return d.role == "dc" }},
	{"Sales Laptops", func(d *device) bool { return d.dept == "sales" }},
	{"Linux Web Tier", func(d *device) bool { return d.linux() && (d.role == "web" || d.role == "proxy") }},
	{"Kubernetes Nodes", func(d *device) bool { return d.role == "k8s-node" }},
	{"HR Laptops", func(d *device) bool { return d.dept == "hr" }},
	{"Database Servers", func(d *device) bool { return d.role == "sql" || d.role == "db" }},
	{"Fabrikam Workstations", func(d *device) bool { return d.fabrikam }},
	{"Build Agents", func(d *device) bool { return d.role == "build" }},
	{"Legal Laptops", func(d *device) bool { return d.dept == "legal" }},
	{"Marketing Laptops", func(d *device) bool { return d.dept == "marketing" }},
	{"IT Admin Workstations", func(d *device) bool { return d.dept == "it" }},
	{"Remote Desktop Hosts", func(d *device) bool { return d.role == "rds" }},
	{"File Servers", func(d *device) bool { return d.role == "fs" }},
	{"Operations Laptops", func(d *device) bool { return d.dept == "operations" }},
	{"Message Queues", func(d *device) bool { return d.role == "mq" }},
	{"API Servers", func(d *device) bool { return d.role == "api" || d.role == "app" }},
	{"Windows 10 Legacy", func(d *device) bool { return d.os == "Windows 10" }},
}

// groupNames returns the names of an organization's k groups.
func groupNames(k int) []string {
	names := make([]string, 0, k)
	for i := 0; i < k; i++ {
		if i < len(groupCatalog) {
			names = append(names, groupCatalog[i].name)
		} else {
			names = append(names, fmt.Sprintf("Branch Office %03d", i-len(groupCatalog)+1))
		}
	}
	return names
}

// unassignedShare is the share of devices left out of every group when the
// organization has groups, so that the export's Unassigned group appears.
const unassignedShare = 0.05

// group returns the group of d among names, or "".
func group(d *device, names []string, r *rng) string {
	if len(names) == 0 || r.chance(unassignedShare) {
		return ""
	}
	catalog := min(len(names), len(groupCatalog))
	if branches := len(names) - catalog; branches > 0 && r.intn(len(names)) >= catalog {
		return names[catalog+r.intn(branches)]
	}
	// Most devices go to the most specific group they match, some to a
	// broader one, as organizations that grew their groups over time have it.
	var matches []int
	for i := catalog - 1; i >= 0; i-- {
		if groupCatalog[i].match(d) {
			matches = append(matches, i)
		}
	}
	switch {
	case len(matches) == 0:
		return names[r.intn(catalog)]
	case len(matches) > 1 && r.chance(0.25):
		return names[matches[1+r.intn(len(matches)-1)]]
	}
	return names[matches[0]]
}
