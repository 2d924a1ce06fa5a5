//go:build darwin

package scan

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"time"
)

// The macOS side of the keychains: the system's security tool prints a
// keychain's certificates as PEM. No cgo, so that the agent cross-compiles.

func init() { readKeychain = darwinReadKeychain }

// keychainTimeout bounds one run of security.
const keychainTimeout = 30 * time.Second

func darwinReadKeychain(ctx context.Context, path string, maxBytes int64) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, keychainTimeout)
	defer cancel()
	out := &limitedBuffer{max: maxBytes}
	var stderr limitedBuffer
	stderr.max = 4096
	cmd := exec.CommandContext(ctx, "/usr/bin/security", "find-certificate", "-a", "-p", path)
	cmd.Stdout, cmd.Stderr = out, &stderr
	err := cmd.Run()
	if out.over {
		return nil, fmt.Errorf("security find-certificate printed more than %d bytes", maxBytes)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("security find-certificate: %w", ctx.Err())
		}
		return nil, fmt.Errorf("security find-certificate: %v: %s", err, bytes.TrimSpace(stderr.buf.Bytes()))
	}
	return out.buf.Bytes(), nil
}

// limitedBuffer keeps at most max bytes and fails the writer past them,
// which stops the command.
type limitedBuffer struct {
	buf  bytes.Buffer
	max  int64
	over bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if int64(b.buf.Len()+len(p)) > b.max {
		b.over = true
		return 0, errors.New("output too large")
	}
	return b.buf.Write(p)
}
