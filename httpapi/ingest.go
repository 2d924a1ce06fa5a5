package httpapi

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/certinv/certinv"
)

// reportJSON is the body of POST /api/agent/reports.
type reportJSON struct {
	DeviceID      string     `json:"deviceId"`
	DeviceName    string     `json:"deviceName"`
	OSPlatform    string     `json:"osPlatform"`
	CollectedAt   *time.Time `json:"collectedAt"` // RFC 3339
	RBACGroupName string     `json:"rbacGroupName"`
	Certificates  []certJSON `json:"certificates"`
}

// certJSON is one reported certificate: its DER (standard base64), or only
// the hex SHA-256 of a DER the server already holds.
type certJSON struct {
	Path   string `json:"path"`
	DER    []byte `json:"der"`
	SHA256 string `json:"sha256"`
}

// ingestResponse is the answer to a stored report.
type ingestResponse struct {
	DeviceID        string         `json:"deviceId"`
	Stored          int            `json:"stored"`
	NewCertificates int            `json:"newCertificates"`
	Unchanged       bool           `json:"unchanged"`
	Rejected        []rejectedJSON `json:"rejected"`
}

type rejectedJSON struct {
	Index  int    `json:"index"`
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// handleReport serves POST /api/agent/reports: an agent's full inventory,
// authenticated by a device credential or the enrollment secret.
func (s *Server) handleReport(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	boundDevice, err := s.authenticateReport(r) // devices.go
	if err != nil {
		return err
	}
	if r.ContentLength > certinv.MaxReportBytes {
		return certinv.Errorf(certinv.ETooLarge, "the report is larger than %d bytes", certinv.MaxReportBytes)
	}
	body, err := wireReport(w, r)
	if err != nil {
		return err
	}
	rep, err := decodeReport(body)
	if err != nil {
		return err
	}
	if err := s.checkReportDevice(r, boundDevice, rep.Device.ID); err != nil {
		return err
	}
	res, err := s.cfg.Ingest.Ingest(ctx, rep)
	var unknown *certinv.UnknownCertificatesError
	if errors.As(err, &unknown) {
		missing := make([]string, len(unknown.SHA256))
		for i, h := range unknown.SHA256 {
			missing[i] = hex.EncodeToString(h[:])
		}
		s.writeErrorBody(ctx, w, err, missing)
		return nil
	}
	if err != nil {
		return err
	}
	out := ingestResponse{
		DeviceID:        res.DeviceID,
		Stored:          res.Stored,
		NewCertificates: res.NewCertificates,
		Unchanged:       res.Unchanged,
		Rejected:        make([]rejectedJSON, len(res.Rejected)),
	}
	for i, rj := range res.Rejected {
		out.Rejected[i] = rejectedJSON{Index: rj.Index, Path: rj.Path, Reason: rj.Reason}
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(ctx, s.log, w, http.StatusOK, &out)
	return nil
}

// wireReport returns the report's JSON: the body as sent, or gunzipped when
// it comes with Content-Encoding: gzip (agents compress: a report of
// hashes shrinks about 3 times). The bytes on the wire and the bytes
// decompressed are both limited to certinv.MaxReportBytes, so a small
// compressed body cannot inflate past the limit.
func wireReport(w http.ResponseWriter, r *http.Request) (io.Reader, error) {
	wire := http.MaxBytesReader(w, r.Body, certinv.MaxReportBytes)
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
		return wire, nil
	case "gzip":
		zr, err := gzip.NewReader(wire)
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				return nil, reportError(err)
			}
			return nil, certinv.Errorf(certinv.EInvalid, "the report is sent with Content-Encoding: gzip but is not gzip data")
		}
		return &inflateLimit{r: zr, left: certinv.MaxReportBytes}, nil
	default:
		return nil, certinv.Errorf(certinv.EInvalid, "Content-Encoding %q is not supported; send the report as it is or with Content-Encoding: gzip", truncate(enc, 40))
	}
}

// inflateLimit reads a decompressed body and fails with an
// *http.MaxBytesError past its limit, as the wire's limit does.
type inflateLimit struct {
	r    io.Reader
	left int64
}

func (l *inflateLimit) Read(p []byte) (int, error) {
	if l.left <= 0 {
		// One byte more tells a body of exactly the limit from a larger one.
		var one [1]byte
		n, err := io.ReadFull(l.r, one[:])
		if n > 0 {
			return 0, &http.MaxBytesError{Limit: certinv.MaxReportBytes}
		}
		if errors.Is(err, io.EOF) {
			return 0, io.EOF
		}
		return 0, certinv.Errorf(certinv.EInvalid, "the report's gzip data is corrupt or cut short")
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if err != nil && !errors.Is(err, io.EOF) {
		var tooLarge *http.MaxBytesError
		if !errors.As(err, &tooLarge) {
			err = certinv.Errorf(certinv.EInvalid, "the report's gzip data is corrupt or cut short")
		}
	}
	return n, err
}

// decodeReport reads a report strictly: one JSON object with known fields
// only and nothing after it; each certificate with exactly one of der and
// sha256. The checks of the content (device id form, sizes, paths) are the
// ingest service's.
func decodeReport(body io.Reader) (*certinv.Report, error) {
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	var in reportJSON
	if err := dec.Decode(&in); err != nil {
		return nil, reportError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, reportError(err)
		}
		return nil, certinv.Errorf(certinv.EInvalid, "the report has data after its JSON object")
	}
	if in.CollectedAt == nil {
		return nil, certinv.Errorf(certinv.EInvalid, "collectedAt is required (RFC 3339, e.g. 2026-12-03T15:00:00Z)")
	}
	if len(in.Certificates) > certinv.MaxCertificatesPerReport {
		return nil, certinv.Errorf(certinv.EInvalid, "the report lists %d certificates; at most %d are allowed", len(in.Certificates), certinv.MaxCertificatesPerReport)
	}
	rep := &certinv.Report{
		Device: certinv.Device{
			ID:          in.DeviceID,
			Name:        in.DeviceName,
			OS:          in.OSPlatform,
			CollectedAt: in.CollectedAt.UTC(),
		},
		GroupName:    in.RBACGroupName,
		Certificates: make([]certinv.ReportedCertificate, len(in.Certificates)),
	}
	for i, c := range in.Certificates {
		rc := certinv.ReportedCertificate{Path: c.Path, DER: c.DER}
		switch {
		case len(c.DER) > 0 && c.SHA256 != "":
			return nil, certinv.Errorf(certinv.EInvalid, "certificates[%d] has both der and sha256; send one", i)
		case len(c.DER) > 0:
		case c.SHA256 != "":
			if len(c.SHA256) != 64 {
				return nil, certinv.Errorf(certinv.EInvalid, "certificates[%d].sha256 must be 64 hex characters", i)
			}
			if _, err := hex.Decode(rc.SHA256[:], []byte(c.SHA256)); err != nil {
				return nil, certinv.Errorf(certinv.EInvalid, "certificates[%d].sha256 must be 64 hex characters", i)
			}
		default:
			return nil, certinv.Errorf(certinv.EInvalid, "certificates[%d] has neither der nor sha256", i)
		}
		rep.Certificates[i] = rc
	}
	return rep, nil
}

// reportError turns a decoding error into a client-safe one, saying where
// the body went wrong but not quoting it.
func reportError(err error) error {
	var safe *certinv.Error
	if errors.As(err, &safe) {
		return safe // already says what was wrong (a corrupt gzip body)
	}
	var tooLarge *http.MaxBytesError
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var tm *time.ParseError
	switch {
	case errors.As(err, &tooLarge):
		return certinv.Errorf(certinv.ETooLarge, "the report is larger than %d bytes", certinv.MaxReportBytes)
	case errors.Is(err, io.EOF):
		return certinv.Errorf(certinv.EInvalid, "the report body is empty")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return certinv.Errorf(certinv.EInvalid, "the report body ends in the middle of its JSON")
	case errors.As(err, &syntax):
		return certinv.Errorf(certinv.EInvalid, "the report is not valid JSON (at byte %d)", syntax.Offset)
	case errors.As(err, &typ):
		return certinv.Errorf(certinv.EInvalid, "the report field %s must be of JSON type %s", typ.Field, jsonType(typ.Type.Kind().String()))
	case errors.As(err, &tm):
		return certinv.Errorf(certinv.EInvalid, "collectedAt must be an RFC 3339 time, e.g. 2026-12-03T15:00:00Z")
	case bytes.HasPrefix([]byte(err.Error()), []byte("json: unknown field ")):
		return certinv.Errorf(certinv.EInvalid, "the report has an unknown field %s", truncate(err.Error()[len("json: unknown field "):], 80))
	default:
		// base64 errors of der, and anything else the decoder refuses.
		return certinv.Errorf(certinv.EInvalid, "the report cannot be read: %s", truncate(fmt.Sprint(err), 160))
	}
}

func jsonType(kind string) string {
	switch kind {
	case "string":
		return "string"
	case "slice":
		return "array"
	case "struct", "ptr":
		return "object"
	case "bool":
		return "boolean"
	default:
		return "number"
	}
}
