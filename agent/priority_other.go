//go:build !unix && !windows

package agent

func lowerPriority() error { return nil }
