package client

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/certinv/certinv"
)

// Report sends r to the server, authorized by the enrollment secret, and
// returns the server's answer. The body is streamed as it is encoded, so a
// report costs no more memory than r itself.
//
// Errors: a *MissingError when the server lacks certificates r names by
// SHA-256 only (nothing stored); one matching ErrStale when the server holds
// a newer report of the device; one matching ErrTooLarge when r exceeds the
// server's limits (checked before sending); an *APIError for any other
// refusal; otherwise a transport error. Retryable tells which are worth
// another attempt. The secret never appears in an error.
func (c *Client) Report(ctx context.Context, secret string, r *Report) (*ReportResult, error) {
	if secret == "" {
		return nil, errors.New("report: the enrollment secret is empty")
	}
	if len(r.Certificates) > certinv.MaxCertificatesPerReport {
		return nil, fmt.Errorf("%w: %d certificates, the server takes at most %d", ErrTooLarge, len(r.Certificates), certinv.MaxCertificatesPerReport)
	}
	// One pass to size the body against the server's limit (which holds for
	// the decompressed bytes too), then the body is streamed through gzip:
	// no copy of it is ever held, and a report of hashes shrinks about 3x.
	size, err := EncodeReport(io.Discard, r)
	if err != nil {
		return nil, fmt.Errorf("encode report: %w", err)
	}
	if size > certinv.MaxReportBytes {
		return nil, fmt.Errorf("%w: %d bytes, the server takes at most %d", ErrTooLarge, size, certinv.MaxReportBytes)
	}
	pr, pw := io.Pipe()
	go func() {
		zw := gzip.NewWriter(pw)
		_, err := EncodeReport(zw, r)
		if cerr := zw.Close(); err == nil {
			err = cerr
		}
		pw.CloseWithError(err)
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base.JoinPath(PathReports).String(), pr)
	if err != nil {
		pr.Close()
		return nil, fmt.Errorf("report: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+secret)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	resp, err := c.hc.Do(req)
	pr.Close() // ends the encoder if the request failed before reading it all
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("report: %w", ctx.Err())
		}
		return nil, &transportError{fmt.Errorf("report to %s: %w", c.base.Redacted(), stripURL(err))}
	}
	defer resp.Body.Close()
	body := io.LimitReader(resp.Body, c.maxResponseBytes)
	if resp.StatusCode != http.StatusOK {
		return nil, c.refusal(resp, body)
	}
	var out reportAnswer
	if err := json.NewDecoder(body).Decode(&out); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("report: %w", ctx.Err())
		}
		return nil, &transportError{fmt.Errorf("read the answer to the report: %w", err)}
	}
	res := &ReportResult{
		DeviceID:        out.DeviceID,
		Stored:          out.Stored,
		NewCertificates: out.NewCertificates,
		Unchanged:       out.Unchanged,
		Rejected:        make([]certinv.RejectedCertificate, len(out.Rejected)),
	}
	for i, rj := range out.Rejected {
		res.Rejected[i] = certinv.RejectedCertificate{Index: rj.Index, Path: rj.Path, Reason: rj.Reason}
	}
	return res, nil
}

// stripURL drops the *url.Error wrapper, whose text repeats the method and URL.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		return ue.Err
	}
	return err
}

type reportAnswer struct {
	DeviceID        string `json:"deviceId"`
	Stored          int    `json:"stored"`
	NewCertificates int    `json:"newCertificates"`
	Unchanged       bool   `json:"unchanged"`
	Rejected        []struct {
		Index  int    `json:"index"`
		Path   string `json:"path"`
		Reason string `json:"reason"`
	} `json:"rejected"`
}

type errorAnswer struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Target  string `json:"target"`
	} `json:"error"`
	MissingCertificates []string `json:"missingCertificates"`
}

// refusal turns a non-200 answer into the matching typed error.
func (c *Client) refusal(resp *http.Response, body io.Reader) error {
	api, a := apiError(resp, body)
	if resp.StatusCode != http.StatusConflict {
		return api
	}
	if len(a.MissingCertificates) == 0 {
		return fmt.Errorf("%w: %w", ErrStale, api)
	}
	m := &MissingError{API: api, SHA256: make([][32]byte, 0, len(a.MissingCertificates))}
	for _, h := range a.MissingCertificates {
		var sum [32]byte
		if len(h) != 64 {
			return fmt.Errorf("the server named a missing certificate by %q, not a hex sha256: %w", h, api)
		}
		if _, err := hex.Decode(sum[:], []byte(h)); err != nil {
			return fmt.Errorf("the server named a missing certificate by %q, not a hex sha256: %w", h, api)
		}
		m.SHA256 = append(m.SHA256, sum)
	}
	return m
}

// apiError reads a refusal's error body into an *APIError.
func apiError(resp *http.Response, body io.Reader) (*APIError, errorAnswer) {
	var a errorAnswer
	// A proxy's HTML page or an empty body is not an error body: the status
	// alone then says what happened.
	_ = json.NewDecoder(body).Decode(&a)
	api := &APIError{
		Status:     resp.StatusCode,
		Code:       a.Error.Code,
		Message:    a.Error.Message,
		RequestID:  a.Error.Target,
		RetryAfter: retryAfter(resp.Header.Get("Retry-After"), time.Now()),
	}
	if api.RequestID == "" {
		api.RequestID = resp.Header.Get("X-Request-Id")
	}
	if api.Code == "" {
		api.Code = strings.ReplaceAll(http.StatusText(resp.StatusCode), " ", "")
	}
	return api, a
}

// maxRetryAfter bounds the wait a server may ask for.
const maxRetryAfter = time.Hour

// retryAfter parses a Retry-After header: seconds, or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}

// EncodeReport writes r as the JSON body of POST /api/agent/reports and
// returns the bytes written. Each certificate is sent with its DER (standard
// base64) when r holds it, and by its hex SHA256 otherwise. It writes
// certificate by certificate, holding no copy of the body.
func EncodeReport(w io.Writer, r *Report) (int64, error) {
	cw := &countWriter{w: w}
	bw := bufio.NewWriterSize(cw, 32<<10)
	var scratch []byte
	str := func(s string) {
		scratch = appendJSONString(scratch[:0], s)
		bw.Write(scratch)
	}
	bw.WriteString(`{"deviceId":`)
	str(r.Device.ID)
	bw.WriteString(`,"deviceName":`)
	str(r.Device.Name)
	if r.Device.OS != "" {
		bw.WriteString(`,"osPlatform":`)
		str(r.Device.OS)
	}
	bw.WriteString(`,"collectedAt":"`)
	bw.Write(r.Device.CollectedAt.UTC().AppendFormat(scratch[:0], time.RFC3339Nano))
	bw.WriteByte('"')
	if r.GroupName != "" {
		bw.WriteString(`,"rbacGroupName":`)
		str(r.GroupName)
	}
	bw.WriteString(`,"certificates":[`)
	for i := range r.Certificates {
		c := &r.Certificates[i]
		if i > 0 {
			bw.WriteByte(',')
		}
		bw.WriteString(`{"path":`)
		str(c.Path)
		if len(c.DER) > 0 {
			bw.WriteString(`,"der":"`)
			scratch = base64.StdEncoding.AppendEncode(scratch[:0], c.DER)
		} else {
			bw.WriteString(`,"sha256":"`)
			scratch = hex.AppendEncode(scratch[:0], c.SHA256[:])
		}
		bw.Write(scratch)
		bw.WriteString(`"}`)
		if cw.err != nil {
			return cw.n, cw.err
		}
	}
	bw.WriteString("]}")
	err := bw.Flush()
	return cw.n, err
}

type countWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.err = err
	return n, err
}

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD,
// as encoding/json does.
func appendJSONString(dst []byte, s string) []byte {
	b, _ := json.Marshal(s) // never fails for a string
	return append(dst, b...)
}
