package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// PathEnroll is where an agent trades the organization's enrollment secret
// for its device's own credential.
const PathEnroll = "/api/agent/enroll"

// Errors of Enroll, matched with errors.Is.
var (
	// ErrEnrollUnsupported: the server has no enrollment endpoint (an
	// older server); the agent reports with the enrollment secret itself.
	ErrEnrollUnsupported = errors.New("the server does not enroll devices")
	// ErrAlreadyEnrolled: the device has a credential already, which this
	// agent does not hold; an administrator resets the device
	// (`certinv device reset`) to let it enroll again.
	ErrAlreadyEnrolled = errors.New("the device is enrolled already")
)

// Enroll trades the organization's enrollment secret for deviceID's own
// credential: the server shows it this once and keeps only its hash, so the
// caller must keep it. Refusals are *APIError (401 for a wrong secret, 403
// for a revoked device), ErrAlreadyEnrolled or ErrEnrollUnsupported;
// Retryable tells transport failures worth another try.
func (c *Client) Enroll(ctx context.Context, secret, deviceID string) (string, error) {
	if secret == "" {
		return "", errors.New("enroll: the enrollment secret is empty")
	}
	body, err := json.Marshal(map[string]string{"deviceId": deviceID})
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base.JoinPath(PathEnroll).String(), bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("enroll: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+secret)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("enroll: %w", ctx.Err())
		}
		return "", &transportError{fmt.Errorf("enroll with %s: %w", c.base.Redacted(), stripURL(err))}
	}
	defer resp.Body.Close()
	rb := io.LimitReader(resp.Body, c.maxResponseBytes)
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound, http.StatusMethodNotAllowed:
		api, _ := apiError(resp, rb)
		return "", fmt.Errorf("%w: %w", ErrEnrollUnsupported, api)
	case http.StatusConflict:
		api, _ := apiError(resp, rb)
		return "", fmt.Errorf("%w: %w", ErrAlreadyEnrolled, api)
	default:
		api, _ := apiError(resp, rb)
		return "", api
	}
	var out struct {
		DeviceID         string `json:"deviceId"`
		DeviceCredential string `json:"deviceCredential"`
	}
	if err := json.NewDecoder(rb).Decode(&out); err != nil {
		return "", &transportError{fmt.Errorf("read the answer to the enrollment: %w", err)}
	}
	if out.DeviceID != deviceID || !strings.HasPrefix(out.DeviceCredential, "cidv1."+deviceID+".") {
		return "", fmt.Errorf("enroll: the server answered a credential for another device or of an unknown form")
	}
	return out.DeviceCredential, nil
}
