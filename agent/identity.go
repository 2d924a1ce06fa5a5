package agent

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/certinv/certinv"
)

// DeviceIDFile is the file in the state folder that keeps the device id.
const DeviceIDFile = "device-id"

// deviceIDSalt keeps the device id from being the plain hash of the
// machine's id, which other software may publish: the machine id stays
// private, and certinv's id stays stable.
const deviceIDSalt = "certinv-agent device id\x00"

var deviceIDForm = regexp.MustCompile(`^[0-9a-f]{40}$`)

// LoadIdentity returns the device's identity: its id from the state folder
// (made on first use, see DeviceID), its FQDN unless name is given, and its
// operating system.
func LoadIdentity(ctx context.Context, stateDir, name string, log *slog.Logger) (Identity, error) {
	id, err := DeviceID(stateDir, log)
	if err != nil {
		return Identity{}, err
	}
	if name == "" {
		name = FQDN(ctx)
	}
	return Identity{ID: id, Name: clip(name, certinv.MaxDeviceNameBytes), OS: clip(OSPlatform(), certinv.MaxOSBytes)}, nil
}

// DeviceID returns the device id kept in stateDir, making it on first use:
// the SHA-1 of the machine's own id (/etc/machine-id, the MachineGuid of
// Windows, the IOPlatformUUID of macOS) salted for certinv, so that a
// reinstalled agent keeps its id; random when the machine has none. It is
// written once, readable by its owner only; a malformed file is an error,
// never silently replaced, since a new id would make a new device.
func DeviceID(stateDir string, log *slog.Logger) (string, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	path := filepath.Join(stateDir, DeviceIDFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		id := strings.TrimSpace(string(b))
		if !deviceIDForm.MatchString(id) {
			return "", fmt.Errorf("device id file %s does not hold 40 lowercase hex characters; remove it to make a new id (the device then reports as a new device)", path)
		}
		return id, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("read device id: %w", err)
	}
	var id, source string
	if mid, src, err := machineID(); err == nil && strings.TrimSpace(mid) != "" {
		id, source = deviceIDFrom(mid), src
	} else {
		var r [20]byte
		if _, err := rand.Read(r[:]); err != nil {
			return "", fmt.Errorf("make device id: %w", err)
		}
		id, source = hex.EncodeToString(r[:]), "random"
	}
	if err := writeFileAtomic(path, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("keep device id: %w", err)
	}
	log.Info("device id made", "device_id", id, "from", source, "file", path)
	return id, nil
}

// PeekDeviceID returns the id this device reports under, without making
// or writing one: the id in stateDir when the agent has kept one there, else
// the id the agent would derive from the machine's id, else "". `certinv
// scan` shows records under it, so that they match the agent's.
func PeekDeviceID(stateDir string) string {
	if b, err := os.ReadFile(filepath.Join(stateDir, DeviceIDFile)); err == nil {
		if id := strings.TrimSpace(string(b)); deviceIDForm.MatchString(id) {
			return id
		}
	}
	if mid, _, err := machineID(); err == nil && strings.TrimSpace(mid) != "" {
		return deviceIDFrom(mid)
	}
	return ""
}

// deviceIDFrom derives the device id from the machine's id.
func deviceIDFrom(machineID string) string {
	sum := sha1.Sum([]byte(deviceIDSalt + strings.ToLower(strings.TrimSpace(machineID))))
	return hex.EncodeToString(sum[:])
}

// writeFileAtomic writes a new file at path (making its folder, mode 0700),
// so that a crash leaves either no file or the whole one.
func writeFileAtomic(path string, data []byte, perm fs.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(perm); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// FQDN returns the device's fully qualified domain name in lower case: the
// host name when it has a domain, else the canonical name the resolver gives
// it (as `hostname -f`), else the bare host name.
func FQDN(ctx context.Context) string {
	if name := fqdnOS(); name != "" {
		return strings.ToLower(strings.TrimSuffix(name, "."))
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		return "localhost"
	}
	if strings.Contains(host, ".") {
		return strings.ToLower(host)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if cname, err := net.DefaultResolver.LookupCNAME(ctx, host); err == nil {
		return fqdnChoice(host, cname)
	}
	return strings.ToLower(host)
}

// fqdnChoice picks the canonical name when it names the host in a domain.
func fqdnChoice(host, cname string) string {
	cname = strings.ToLower(strings.TrimSuffix(cname, "."))
	host = strings.ToLower(host)
	if strings.HasPrefix(cname, host+".") && !strings.HasPrefix(cname, "localhost") {
		return cname
	}
	return host
}

// OSPlatform returns the operating system's name and version.
func OSPlatform() string { return osPlatform() }

// parseOSRelease returns "NAME VERSION_ID" from an os-release file
// ("Ubuntu 24.04", "Fedora Linux 40"), PRETTY_NAME when there is no version,
// or "Linux".
func parseOSRelease(r io.Reader) string {
	vals := map[string]string{}
	sc := bufio.NewScanner(io.LimitReader(r, 64<<10))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		vals[k] = unquoteShell(v)
	}
	name, ver := vals["NAME"], vals["VERSION_ID"]
	switch {
	case name != "" && ver != "":
		return name + " " + ver
	case vals["PRETTY_NAME"] != "":
		return vals["PRETTY_NAME"]
	case name != "":
		return name
	}
	return "Linux"
}

// unquoteShell undoes the quoting os-release allows: double or single
// quotes, and backslash escapes within double quotes.
func unquoteShell(v string) string {
	v = strings.TrimSpace(v)
	if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
		return v[1 : len(v)-1]
	}
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
		var b strings.Builder
		for i := 0; i < len(v); i++ {
			if v[i] == '\\' && i+1 < len(v) {
				i++
			}
			b.WriteByte(v[i])
		}
		return b.String()
	}
	return v
}

// parseSystemVersion returns "macOS 14.5" from the property list of
// /System/Library/CoreServices/SystemVersion.plist.
func parseSystemVersion(plist []byte) string {
	get := func(key string) string {
		re := regexp.MustCompile(`<key>` + key + `</key>\s*<string>([^<]*)</string>`)
		if m := re.FindSubmatch(plist); m != nil {
			return strings.TrimSpace(string(m[1]))
		}
		return ""
	}
	name, ver := get("ProductName"), get("ProductVersion")
	if name == "" || name == "Mac OS X" {
		name = "macOS"
	}
	if ver == "" {
		return name
	}
	return name + " " + ver
}

// parseIOPlatformUUID finds the IOPlatformUUID in the output of
// `ioreg -rd1 -c IOPlatformExpertDevice`.
func parseIOPlatformUUID(out []byte) string {
	m := regexp.MustCompile(`"IOPlatformUUID"\s*=\s*"([0-9A-Fa-f-]{36})"`).FindSubmatch(out)
	if m == nil {
		return ""
	}
	return string(m[1])
}

// windowsProduct names a Windows version from its registry values
// (HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion). Windows 11 still
// calls itself "Windows 10" in ProductName; its build number tells.
func windowsProduct(productName, displayVersion, build string) string {
	name := strings.TrimSpace(productName)
	if name == "" {
		name = "Windows"
	}
	if n, err := strconv.Atoi(build); err == nil && n >= 22000 && strings.HasPrefix(name, "Windows 10") {
		name = "Windows 11" + strings.TrimPrefix(name, "Windows 10")
	}
	if displayVersion != "" {
		name += " " + displayVersion
	}
	if build != "" {
		name += " (build " + build + ")"
	}
	return name
}

// clip shortens s to at most n bytes at a character boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !isRuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
