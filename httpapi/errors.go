package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/certinv/certinv"
)

// errorStatus is the one table from error kinds to HTTP statuses and the
// contract's error codes.
var errorStatus = map[certinv.ErrorKind]struct {
	status int
	code   string
}{
	certinv.EInvalid:        {http.StatusBadRequest, "InvalidInput"},
	certinv.EBadRequest:     {http.StatusBadRequest, "BadRequest"},
	certinv.EUnauthorized:   {http.StatusUnauthorized, "Unauthorized"},
	certinv.EForbidden:      {http.StatusForbidden, "Forbidden"},
	certinv.ENotFound:       {http.StatusNotFound, "NotFound"},
	certinv.EConflict:       {http.StatusConflict, "Conflict"},
	certinv.ETooLarge:       {http.StatusRequestEntityTooLarge, "RequestEntityTooLarge"},
	certinv.ETooManyRequest: {http.StatusTooManyRequests, "TooManyRequests"},
	certinv.EUnavailable:    {http.StatusServiceUnavailable, "ServiceUnavailable"},
	certinv.EInternal:       {http.StatusInternalServerError, "InternalServerError"},
}

// statusOf returns the HTTP status and error code of err.
func statusOf(err error) (int, string) {
	if s, ok := errorStatus[certinv.KindOf(err)]; ok {
		return s.status, s.code
	}
	return http.StatusInternalServerError, "InternalServerError"
}

// RetryAfterError is an error that says when to try again. A 429 or 503
// answer carries its RetryAfter, rounded up to seconds, as Retry-After; the
// rate limiter's errors implement it.
type RetryAfterError interface {
	error
	RetryAfter() int // seconds
}

// defaultRetryAfter is the Retry-After of 429 and 503 answers whose error
// does not say: a snapshot build or a rate-limit minute.
const defaultRetryAfter = 60

// errorBody is the contract's error body. Extra carries endpoint-specific
// members next to "error" (missingCertificates of the ingest endpoint).
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Target  string `json:"target"`
	} `json:"error"`
	MissingCertificates []string `json:"missingCertificates,omitempty"`
}

// writeError answers err. Internal errors are logged in full and answered in
// general terms; client errors are logged at debug level.
func (s *Server) writeError(ctx context.Context, w http.ResponseWriter, err error) {
	s.writeErrorBody(ctx, w, err, nil)
}

func (s *Server) writeErrorBody(ctx context.Context, w http.ResponseWriter, err error, missing []string) {
	status, code := statusOf(err)
	reqID := requestID(ctx)
	if status >= 500 && certinv.KindOf(err) == certinv.EInternal {
		s.log.ErrorContext(ctx, "internal error", "request_id", reqID, "err", err)
	} else {
		s.log.DebugContext(ctx, "request refused", "request_id", reqID, "status", status, "err", err)
	}
	var body errorBody
	body.Error.Code = code
	body.Error.Message = certinv.MessageOf(err)
	body.Error.Target = reqID
	body.MissingCertificates = missing
	h := w.Header()
	h.Del("Content-Length")
	h.Del("Content-Encoding")
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	switch status {
	case http.StatusUnauthorized:
		h.Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		secs := defaultRetryAfter
		var ra RetryAfterError
		if errors.As(err, &ra) && ra.RetryAfter() > 0 {
			secs = ra.RetryAfter()
		}
		h.Set("Retry-After", strconv.Itoa(secs))
	}
	writeJSON(ctx, s.log, w, status, &body)
}

// methodNotAllowed answers a known path with a method it does not serve.
func (s *Server) methodNotAllowed(ctx context.Context, w http.ResponseWriter, r *http.Request, allow string) {
	w.Header().Set("Allow", allow)
	var body errorBody
	body.Error.Code = "MethodNotAllowed"
	body.Error.Message = "the method " + r.Method + " is not allowed here; use " + allow
	body.Error.Target = requestID(ctx)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	writeJSON(ctx, s.log, w, http.StatusMethodNotAllowed, &body)
}

func logWriteError(ctx context.Context, log *slog.Logger, err error) {
	// The client went away or the connection broke: nothing to answer.
	log.DebugContext(ctx, "write response", "request_id", requestID(ctx), "err", err)
}
