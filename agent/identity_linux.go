//go:build linux

package agent

import (
	"errors"
	"os"
	"strings"
)

// machineID reads the systemd machine id (D-Bus's on older systems).
func machineID() (id, source string, err error) {
	for _, p := range []string{"/etc/machine-id", "/var/lib/dbus/machine-id"} {
		b, err := os.ReadFile(p)
		if err == nil && len(strings.TrimSpace(string(b))) >= 16 {
			return string(b), p, nil
		}
	}
	return "", "", errors.New("no machine id")
}

func osPlatform() string {
	for _, p := range []string{"/etc/os-release", "/usr/lib/os-release"} {
		if f, err := os.Open(p); err == nil {
			defer f.Close()
			return parseOSRelease(f)
		}
	}
	return "Linux"
}

func fqdnOS() string { return "" }
