//go:build darwin

package agent

func defaultStateDir() string { return "/Library/Application Support/certinv-agent" }
