package agent

// DefaultStateDir returns the folder the agent keeps its state in (the
// device id) when none is given: systemd's $STATE_DIRECTORY when it sets
// one, else /var/lib/certinv-agent on Linux and other Unix systems,
// /Library/Application Support/certinv-agent on macOS, and
// %ProgramData%\certinv-agent on Windows.
func DefaultStateDir() string { return defaultStateDir() }
