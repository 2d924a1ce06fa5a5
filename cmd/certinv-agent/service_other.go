//go:build !windows

package main

// runService runs the agent under a service manager that needs more than a
// process (Windows only); elsewhere systemd and launchd run it as it is.
func runService() (handled bool, code int) { return false, 0 }
