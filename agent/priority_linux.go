//go:build linux

package agent

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// On Linux niceness and I/O priority belong to threads, not processes: each
// existing thread of the process is lowered, and the threads made later
// inherit from them.
func lowerPriority() error {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return fmt.Errorf("lower priority: %w", err)
	}
	var first error
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := lowerThread(tid); err != nil && first == nil {
			first = err
		}
	}
	return first
}

const (
	ioprioWhoProcess = 1
	ioprioClassBE    = 2
	ioprioClassShift = 13
	ioprioLowestBE   = ioprioClassBE<<ioprioClassShift | 7
)

func lowerThread(tid int) error {
	// The raw getpriority returns 20 - niceness.
	cur, err := syscall.Getpriority(syscall.PRIO_PROCESS, tid)
	if err == nil && 20-cur < Nice {
		if err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, Nice); err != nil {
			return fmt.Errorf("set niceness of thread %d: %w", tid, err)
		}
	}
	// Leave an idle or already lower I/O class alone.
	prio, _, errno := syscall.Syscall(syscall.SYS_IOPRIO_GET, ioprioWhoProcess, uintptr(tid), 0)
	if errno == 0 {
		class := int(prio) >> ioprioClassShift
		if class == 0 || class == 1 || (class == ioprioClassBE && int(prio)&7 < 7) {
			if _, _, errno := syscall.Syscall(syscall.SYS_IOPRIO_SET, ioprioWhoProcess, uintptr(tid), ioprioLowestBE); errno != 0 {
				return fmt.Errorf("set I/O priority of thread %d: %w", tid, errno)
			}
		}
	}
	return nil
}
