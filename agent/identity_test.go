package agent

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

func TestDeviceID(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	id, err := DeviceID(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !deviceIDForm.MatchString(id) {
		t.Fatalf("DeviceID() = %q, want 40 lowercase hex characters", id)
	}
	again, err := DeviceID(dir, nil)
	if err != nil || again != id {
		t.Errorf("DeviceID() again = %q, %v; want %q kept from the first call", again, err, id)
	}
	fi, err := os.Stat(filepath.Join(dir, DeviceIDFile))
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("device id file mode = %v, want 0600", fi.Mode().Perm())
	}
	if mid, _, err := machineID(); err == nil {
		if want := deviceIDFrom(mid); id != want {
			t.Errorf("DeviceID() = %s, want %s derived from the machine id", id, want)
		}
	}

	if err := os.WriteFile(filepath.Join(dir, DeviceIDFile), []byte("not-an-id\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := DeviceID(dir, nil); err == nil {
		t.Errorf("DeviceID() of a malformed file = %q, want an error", got)
	}
}

func TestDeviceIDFrom(t *testing.T) {
	a, b := deviceIDFrom("4c4c4544-0042-4810-8053-b4c04f4b4d32"), deviceIDFrom("4c4c4544-0042-4810-8053-b4c04f4b4d33")
	if !deviceIDForm.MatchString(a) || a == b {
		t.Errorf("deviceIDFrom() = %q, %q; want two distinct 40-hex ids", a, b)
	}
	if c := deviceIDFrom("4C4C4544-0042-4810-8053-B4C04F4B4D32\n"); c != a {
		t.Errorf("deviceIDFrom(upper case, newline) = %q, want %q: the same machine", c, a)
	}
	if strings.Contains(a, "4c4c4544") {
		t.Errorf("deviceIDFrom() = %q shows the machine id", a)
	}
}

func TestParseOSRelease(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"ubuntu", "PRETTY_NAME=\"Ubuntu 24.04.1 LTS\"\nNAME=\"Ubuntu\"\nVERSION_ID=\"24.04\"\n", "Ubuntu 24.04"},
		{"fedora", "NAME=\"Fedora Linux\"\nVERSION_ID=40\n", "Fedora Linux 40"},
		{"arch rolling", "NAME=\"Arch Linux\"\nPRETTY_NAME=\"Arch Linux\"\nID=arch\n", "Arch Linux"},
		{"single quotes and comments", "# comment\nNAME='Alpine Linux'\nVERSION_ID='3.20.1'\n", "Alpine Linux 3.20.1"},
		{"escapes", `NAME="My \"Distro\""` + "\nVERSION_ID=1\n", `My "Distro" 1`},
		{"empty", "", "Linux"},
	} {
		if got := parseOSRelease(strings.NewReader(tc.in)); got != tc.want {
			t.Errorf("%s: parseOSRelease(%q) = %q, want %q", tc.name, tc.in, got, tc.want)
		}
	}
	if runtime.GOOS == "linux" {
		if got := OSPlatform(); got == "" || strings.ContainsAny(got, "\"\n") {
			t.Errorf("OSPlatform() = %q on this machine, want a name without quotes", got)
		}
	}
}

func TestParseSystemVersion(t *testing.T) {
	plist := `<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict>
	<key>ProductBuildVersion</key>
	<string>23F79</string>
	<key>ProductName</key>
	<string>macOS</string>
	<key>ProductVersion</key>
	<string>14.5</string>
</dict></plist>`
	for _, tc := range []struct{ in, want string }{
		{plist, "macOS 14.5"},
		{strings.Replace(plist, "<string>macOS</string>", "<string>Mac OS X</string>", 1), "macOS 14.5"},
		{"", "macOS"},
	} {
		if got := parseSystemVersion([]byte(tc.in)); got != tc.want {
			t.Errorf("parseSystemVersion(%.40q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseIOPlatformUUID(t *testing.T) {
	out := `+-o J316sAP  <class IOPlatformExpertDevice, id 0x100000220, registered, matched, active, busy 0 (2 ms), retain 40>
    {
      "IOPlatformSerialNumber" = "C02XXXXXXX"
      "IOPlatformUUID" = "12345678-ABCD-4EF0-9876-0123456789AB"
    }`
	if got := parseIOPlatformUUID([]byte(out)); got != "12345678-ABCD-4EF0-9876-0123456789AB" {
		t.Errorf("parseIOPlatformUUID() = %q, want the UUID", got)
	}
	if got := parseIOPlatformUUID([]byte(`"IOPlatformUUID" = "short"`)); got != "" {
		t.Errorf("parseIOPlatformUUID(malformed) = %q, want empty", got)
	}
}

func TestWindowsProduct(t *testing.T) {
	for _, tc := range []struct{ name, display, build, want string }{
		{"Windows Server 2022 Datacenter", "21H2", "20348", "Windows Server 2022 Datacenter 21H2 (build 20348)"},
		{"Windows 10 Enterprise", "23H2", "22631", "Windows 11 Enterprise 23H2 (build 22631)"},
		{"Windows 10 Pro", "22H2", "19045", "Windows 10 Pro 22H2 (build 19045)"},
		{"", "", "", "Windows"},
	} {
		if got := windowsProduct(tc.name, tc.display, tc.build); got != tc.want {
			t.Errorf("windowsProduct(%q, %q, %q) = %q, want %q", tc.name, tc.display, tc.build, got, tc.want)
		}
	}
}

func TestFQDNChoice(t *testing.T) {
	for _, tc := range []struct{ host, cname, want string }{
		{"web1", "web1.corp.example.", "web1.corp.example"},
		{"WEB1", "Web1.Corp.Example", "web1.corp.example"},
		{"web1", "localhost.", "web1"},
		{"web1", "other.corp.example.", "web1"},
		{"web1", "web1", "web1"},
	} {
		if got := fqdnChoice(tc.host, tc.cname); got != tc.want {
			t.Errorf("fqdnChoice(%q, %q) = %q, want %q", tc.host, tc.cname, got, tc.want)
		}
	}
}

func TestClip(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"abc", 5, "abc"},
		{"abcdef", 3, "abc"},
		{"ab\u00e9", 3, "ab"},
	} {
		if got := clip(tc.in, tc.n); got != tc.want {
			t.Errorf("clip(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

// TestLowerPriority lowers this test process: every thread ends with
// niceness Nice or more.
func TestLowerPriority(t *testing.T) {
	if runtime.GOOS != "linux" {
		return
	}
	if err := LowerPriority(); err != nil {
		t.Fatalf("LowerPriority() = %v", err)
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		b, err := os.ReadFile(filepath.Join("/proc/self/task", task.Name(), "stat"))
		if err != nil {
			continue // the thread ended
		}
		// Fields after the command name, which is in parentheses: the
		// niceness is field 19 of the line, the 17th after ")".
		rest := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		nice, err := strconv.Atoi(rest[16])
		if err != nil {
			t.Fatalf("stat of thread %s: %v", task.Name(), err)
		}
		if nice < Nice {
			t.Errorf("thread %s has niceness %d, want at least %d", task.Name(), nice, Nice)
		}
	}
}
