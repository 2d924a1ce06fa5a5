//go:build windows

package agent

import (
	"fmt"

	"golang.org/x/sys/windows"
)

func lowerPriority() error {
	if err := windows.SetPriorityClass(windows.CurrentProcess(), windows.PROCESS_MODE_BACKGROUND_BEGIN); err != nil {
		// Background mode is refused to some processes; below normal is
		// the next best thing.
		if err2 := windows.SetPriorityClass(windows.CurrentProcess(), windows.BELOW_NORMAL_PRIORITY_CLASS); err2 != nil {
			return fmt.Errorf("lower priority: %w", err)
		}
	}
	return nil
}
