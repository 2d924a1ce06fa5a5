package agent

// Nice is the scheduling niceness LowerPriority gives the agent on Unix: the
// device's own work goes first.
const Nice = 10

// LowerPriority makes the agent yield to the device's own work: on Linux
// every thread gets niceness Nice (if it has less) and the lowest
// best-effort I/O priority; on other Unix systems the process gets
// niceness Nice; on Windows the process enters background mode (lower CPU,
// I/O and memory priority). It never raises a priority an administrator
// lowered further, and returns the first error while doing its best.
func LowerPriority() error { return lowerPriority() }
