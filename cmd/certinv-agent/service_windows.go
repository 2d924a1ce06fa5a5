//go:build windows

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/windows/svc"

	"github.com/certinv/certinv/agent"
)

// serviceName is the name the agent is registered under (sc.exe create).
const serviceName = "certinv-agent"

// runService runs the agent under the service control manager when it
// started the process: the service's command line (its binPath) holds the
// arguments, Stop and Shutdown end the agent cleanly. Standard error goes
// nowhere under the SCM, so the log goes to agent.log in the state folder
// unless --log-file says otherwise.
func runService() (handled bool, code int) {
	is, err := svc.IsWindowsService()
	if err != nil || !is {
		return false, 0
	}
	h := &handler{}
	if err := svc.Run(serviceName, h); err != nil {
		return true, 1
	}
	return true, h.code
}

type handler struct{ code int }

func (h *handler) Execute(_ []string, req <-chan svc.ChangeRequest, status chan<- svc.Status) (bool, uint32) {
	status <- svc.Status{State: svc.StartPending}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stderr := io.Discard
	dir := agent.DefaultStateDir()
	if err := os.MkdirAll(dir, 0o700); err == nil {
		if f, err := os.OpenFile(filepath.Join(dir, "agent.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err == nil {
			defer f.Close()
			stderr = f
		}
	}
	done := make(chan error, 1)
	go func() { done <- run(ctx, os.Args[1:], io.Discard, stderr) }()
	status <- svc.Status{State: svc.Running, Accepts: svc.AcceptStop | svc.AcceptShutdown}
	for {
		select {
		case c := <-req:
			switch c.Cmd {
			case svc.Interrogate:
				status <- c.CurrentStatus
			case svc.Stop, svc.Shutdown:
				status <- svc.Status{State: svc.StopPending}
				cancel()
				return h.finish(<-done, stderr)
			}
		case err := <-done:
			return h.finish(err, stderr)
		}
	}
}

// finish reports how the agent ended: a non-zero service exit code when it
// failed (the SCM then applies its recovery actions).
func (h *handler) finish(err error, log io.Writer) (bool, uint32) {
	if err == nil {
		return false, 0
	}
	fmt.Fprintf(log, "certinv-agent: %v\n", err)
	h.code = exitCode(err)
	return true, uint32(h.code)
}
