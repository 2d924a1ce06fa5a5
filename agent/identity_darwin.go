//go:build darwin

package agent

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"time"
)

// machineID reads the hardware UUID (IOPlatformUUID) through ioreg.
func machineID() (id, source string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "/usr/sbin/ioreg", "-rd1", "-c", "IOPlatformExpertDevice").Output()
	if err != nil {
		return "", "", err
	}
	if id := parseIOPlatformUUID(out); id != "" {
		return id, "IOPlatformUUID", nil
	}
	return "", "", errors.New("no IOPlatformUUID in the output of ioreg")
}

func osPlatform() string {
	b, err := os.ReadFile("/System/Library/CoreServices/SystemVersion.plist")
	if err != nil {
		return "macOS"
	}
	return parseSystemVersion(b)
}

func fqdnOS() string { return "" }
