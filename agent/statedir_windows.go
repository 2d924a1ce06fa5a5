//go:build windows

package agent

import (
	"os"
	"path/filepath"
)

func defaultStateDir() string {
	base := os.Getenv("ProgramData")
	if base == "" {
		base = `C:\ProgramData`
	}
	return filepath.Join(base, "certinv-agent")
}
