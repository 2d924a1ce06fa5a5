package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/certinv/certinv/client"
)

// Enroller trades the organization's enrollment secret for a device's own
// credential; *client.Client is one.
type Enroller interface {
	Enroll(ctx context.Context, secret, deviceID string) (string, error)
}

// CredentialFile is the file of the state folder that keeps the device's
// credential, readable by its owner only.
const CredentialFile = "device-credential"

// bearer returns what the reports are authenticated with: the device's own
// credential, enrolling for it once when the client can and a state folder
// keeps it; else the enrollment secret (a server that does not enroll
// devices takes reports with the secret).
func (a *Agent) bearer(ctx context.Context, out *Outcome) (string, error) {
	if a.credential != "" {
		return a.credential, nil
	}
	en, ok := a.Client.(Enroller)
	if !ok || a.StateDir == "" || a.noEnroll {
		return a.Secret, nil
	}
	path := filepath.Join(a.StateDir, CredentialFile)
	prefix := "cidv1." + a.Device.ID + "."
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		cred := strings.TrimSpace(string(b))
		if !strings.HasPrefix(cred, prefix) {
			return "", fmt.Errorf("the device credential in %s is not one of device %s; remove it, and have an administrator reset the device (certinv device reset --id %s) so that it enrolls again", path, a.Device.ID, a.Device.ID)
		}
		a.credential = cred
		return cred, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("read the device credential: %w", err)
	}

	var cred string
	err = a.retry(ctx, "enrollment", out, func() error {
		var err error
		cred, err = en.Enroll(ctx, a.Secret, a.Device.ID)
		return err
	})
	switch {
	case errors.Is(err, client.ErrEnrollUnsupported):
		a.log().Warn("the server does not enroll devices: reporting with the enrollment secret")
		a.noEnroll = true
		return a.Secret, nil
	case errors.Is(err, client.ErrAlreadyEnrolled):
		return "", fmt.Errorf("device %s is enrolled already, but its credential is not in %s: an administrator runs 'certinv device reset --id %s' to let it enroll again: %w", a.Device.ID, path, a.Device.ID, err)
	case err != nil:
		return "", fmt.Errorf("enroll device %s: %w", a.Device.ID, err)
	}
	if err := writeFileAtomic(path, []byte(cred+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("keep the device credential: %w", err)
	}
	a.log().Info("device enrolled: reports use its own credential from now on", "device_id", a.Device.ID, "file", path)
	a.credential = cred
	return cred, nil
}
