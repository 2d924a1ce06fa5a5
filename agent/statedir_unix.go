//go:build !windows && !darwin

package agent

import (
	"os"
	"strings"
)

func defaultStateDir() string {
	if d := os.Getenv("STATE_DIRECTORY"); d != "" {
		first, _, _ := strings.Cut(d, ":")
		return first
	}
	return "/var/lib/certinv-agent"
}
