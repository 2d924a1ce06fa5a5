//go:build unix && !linux

package agent

import (
	"fmt"
	"syscall"
)

func lowerPriority() error {
	cur, err := syscall.Getpriority(syscall.PRIO_PROCESS, 0)
	if err == nil && cur >= Nice {
		return nil
	}
	if err := syscall.Setpriority(syscall.PRIO_PROCESS, 0, Nice); err != nil {
		return fmt.Errorf("set niceness: %w", err)
	}
	return nil
}
