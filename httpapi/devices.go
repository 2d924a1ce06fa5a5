package httpapi

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/certinv/certinv"
)

// PathEnroll is where an agent trades the organization's enrollment secret
// for its device's own credential.
const PathEnroll = "/api/agent/enroll"

// deviceCredentialPrefix starts every device credential, so the report
// endpoint tells one from the enrollment secret without a lookup:
// "cidv1.<device id>.<43 characters of URL-safe base64>".
const deviceCredentialPrefix = "cidv1."

// maxEnrollBytes bounds an enrollment's body.
const maxEnrollBytes = 4 << 10

// enrollResponse is the answer to an enrollment. The credential is shown
// this once; the server keeps only its SHA-256.
type enrollResponse struct {
	DeviceID         string `json:"deviceId"`
	DeviceCredential string `json:"deviceCredential"`
}

// handleEnroll serves POST /api/agent/enroll: {"deviceId": "..."} with the
// enrollment secret as bearer token gives the device its own credential.
func (s *Server) handleEnroll(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	secret, err := bearer(r)
	if err != nil {
		return err
	}
	if !s.isEnrollmentSecret(secret) {
		return certinv.Errorf(certinv.EUnauthorized, "the enrollment secret is not valid")
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxEnrollBytes))
	dec.DisallowUnknownFields()
	var in struct {
		DeviceID string `json:"deviceId"`
	}
	if err := dec.Decode(&in); err != nil {
		return certinv.Errorf(certinv.EInvalid, `the body must be {"deviceId": "<40 lowercase hex characters>"}`)
	}
	if _, err := dec.Token(); err != io.EOF {
		return certinv.Errorf(certinv.EInvalid, "the body has data after its JSON object")
	}
	if !certinv.ValidDeviceID(in.DeviceID) {
		return certinv.Errorf(certinv.EInvalid, "deviceId must be 40 lowercase hex characters")
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return err
	}
	secretPart := base64.RawURLEncoding.EncodeToString(raw[:])
	if err := s.cfg.Devices.EnrollDevice(ctx, in.DeviceID, sha256.Sum256([]byte(secretPart))); err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(ctx, s.log, w, http.StatusOK, &enrollResponse{
		DeviceID:         in.DeviceID,
		DeviceCredential: deviceCredentialPrefix + in.DeviceID + "." + secretPart,
	})
	return nil
}

func (s *Server) isEnrollmentSecret(secret string) bool {
	got := secretDigest(secret)
	return subtle.ConstantTimeCompare(got[:], s.cfg.EnrollmentSecretHash[:]) == 1
}

// authenticateReport checks the bearer token of a report: a device
// credential (it returns the device it is bound to) or, unless
// RequireDeviceCredentials, the organization's enrollment secret ("").
// The body is not read yet.
func (s *Server) authenticateReport(r *http.Request) (boundDevice string, err error) {
	token, err := bearer(r)
	if err != nil {
		return "", err
	}
	if rest, ok := strings.CutPrefix(token, deviceCredentialPrefix); ok && s.cfg.Devices != nil {
		id, secretPart, ok := strings.Cut(rest, ".")
		if !ok || !certinv.ValidDeviceID(id) || secretPart == "" {
			return "", certinv.Errorf(certinv.EUnauthorized, "the device credential is malformed")
		}
		c, err := s.cfg.Devices.DeviceCredential(r.Context(), id)
		if certinv.KindOf(err) == certinv.ENotFound {
			return "", certinv.Errorf(certinv.EUnauthorized, "the device credential is not valid (the device was reset or never enrolled); enroll again at POST %s", PathEnroll)
		} else if err != nil {
			return "", err
		}
		if c.Revoked() {
			return "", revokedDevice(c)
		}
		got := sha256.Sum256([]byte(secretPart))
		if subtle.ConstantTimeCompare(got[:], c.SecretHash[:]) != 1 {
			return "", certinv.Errorf(certinv.EUnauthorized, "the device credential is not valid")
		}
		return id, nil
	}
	if !s.isEnrollmentSecret(token) {
		return "", certinv.Errorf(certinv.EUnauthorized, "the enrollment secret is not valid")
	}
	if s.cfg.RequireDeviceCredentials {
		return "", certinv.Errorf(certinv.EForbidden, "this server takes reports only with a device credential; enroll the device at POST %s with the enrollment secret", PathEnroll)
	}
	return "", nil
}

// checkReportDevice checks that the device a report is for may be reported
// by its credential: a device credential only for its own device; the
// enrollment secret only for a device that has no credential of its own and
// is not revoked.
func (s *Server) checkReportDevice(r *http.Request, boundDevice, deviceID string) error {
	if boundDevice != "" {
		if deviceID != boundDevice {
			return certinv.Errorf(certinv.EForbidden, "the device credential is for device %s; it may report only for that device, not for %s", boundDevice, truncate(deviceID, 64))
		}
		return nil
	}
	if s.cfg.Devices == nil || !certinv.ValidDeviceID(deviceID) {
		return nil // the ingest service refuses a malformed id
	}
	c, err := s.cfg.Devices.DeviceCredential(r.Context(), deviceID)
	if certinv.KindOf(err) == certinv.ENotFound {
		return nil
	} else if err != nil {
		return err
	}
	if c.Revoked() {
		return revokedDevice(c)
	}
	return certinv.Errorf(certinv.EForbidden, "device %s is enrolled: its reports must carry its device credential, not the enrollment secret", deviceID)
}

func revokedDevice(c *certinv.DeviceCredential) error {
	return certinv.Errorf(certinv.EForbidden, "device %s was revoked by an administrator at %s; its reports are refused until an administrator resets it",
		c.DeviceID, c.RevokedAt.UTC().Format(certinv.TimeFormat))
}
