//go:build !linux && !darwin && !windows

package agent

import (
	"errors"
	"os"
	"runtime"
	"strings"
)

// machineID reads /etc/hostid where the system keeps one (the BSDs).
func machineID() (id, source string, err error) {
	b, err := os.ReadFile("/etc/hostid")
	if err == nil && len(strings.TrimSpace(string(b))) >= 16 {
		return string(b), "/etc/hostid", nil
	}
	return "", "", errors.New("no machine id")
}

func osPlatform() string {
	if f, err := os.Open("/etc/os-release"); err == nil {
		defer f.Close()
		return parseOSRelease(f)
	}
	return runtime.GOOS
}

func fqdnOS() string { return "" }
