// Package client is the Go client of certinv's HTTP API. For now it speaks
// the agent's side: Report uploads a device's inventory to
// POST /api/agent/reports. It links no SQL driver and no cloud SDK, so the
// agent binary that imports it stays small.
//
// Errors are typed so a caller can act on them: a *MissingError when the
// server lacks certificates a report named by SHA-256 only (send them again
// with their DER), ErrStale when the server already holds a newer report of
// the device, and an *APIError carrying the server's status, code and
// message for every other refusal. Retryable says whether an error is worth
// another attempt and how long the server asked to wait.
package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/certinv/certinv"
)

// Report is a device's full inventory, as Report sends it. A certificate
// with DER is sent with its DER; one without is sent by its SHA256 alone.
type Report = certinv.Report

// ReportResult is the server's answer to a stored report.
type ReportResult = certinv.IngestResult

// PathReports is the path of the agent report endpoint.
const PathReports = "/api/agent/reports"

// Defaults of a Client.
const (
	// DefaultTimeout bounds one request, from dial to the end of the answer:
	// a report of the largest allowed size on a slow link still fits.
	DefaultTimeout = 5 * time.Minute
	// DefaultMaxResponseBytes bounds the answer a Client reads.
	DefaultMaxResponseBytes = 16 << 20
	// DefaultUserAgent is the User-Agent when none is given.
	DefaultUserAgent = "certinv-client"
)

// Client talks to one certinv server. It is safe for concurrent use.
type Client struct {
	base             *url.URL
	hc               *http.Client
	userAgent        string
	maxResponseBytes int64
	allowHTTP        bool
	rootCAs          *x509.CertPool
	timeout          time.Duration
	transport        http.RoundTripper
}

// Option configures a Client.
type Option func(*Client)

// WithUserAgent sets the User-Agent header ("certinv-agent/1.2.3").
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// WithTimeout bounds each request, from dial to the end of the answer.
func WithTimeout(d time.Duration) Option { return func(c *Client) { c.timeout = d } }

// WithMaxResponseBytes bounds the size of an answer the client reads.
func WithMaxResponseBytes(n int64) Option { return func(c *Client) { c.maxResponseBytes = n } }

// WithRootCAs trusts pool, instead of the system's roots, for the server's
// TLS certificate (a server behind a private CA).
func WithRootCAs(pool *x509.CertPool) Option { return func(c *Client) { c.rootCAs = pool } }

// WithTransport sends requests through rt instead of a transport of the
// client's own (tests count bytes with it; proxies with special needs).
// WithRootCAs has no effect then.
func WithTransport(rt http.RoundTripper) Option { return func(c *Client) { c.transport = rt } }

// WithAllowHTTP lets the base URL be plain http:// on a host other than
// loopback. Without it New refuses such a URL, because the enrollment
// secret would cross the network in clear text.
func WithAllowHTTP() Option { return func(c *Client) { c.allowHTTP = true } }

// New returns a Client of the server at baseURL ("https://certinv.example.com";
// a path prefix is kept, a trailing slash ignored).
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimSuffix(baseURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("server URL %q: %w", baseURL, err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("server URL %q: want an absolute http(s) URL without query, fragment or user", baseURL)
	}
	c := &Client{
		base:             u,
		userAgent:        DefaultUserAgent,
		maxResponseBytes: DefaultMaxResponseBytes,
		timeout:          DefaultTimeout,
	}
	for _, o := range opts {
		o(c)
	}
	if u.Scheme == "http" && !c.allowHTTP && !isLoopback(u.Hostname()) {
		return nil, fmt.Errorf("server URL %q is plain http to another host: the enrollment secret would cross the network in clear text; use https (or allow http explicitly)", baseURL)
	}
	rt := c.transport
	if rt == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: c.rootCAs}
		t.ResponseHeaderTimeout = 2 * time.Minute
		t.MaxIdleConns = 2
		t.IdleConnTimeout = 30 * time.Second
		rt = t
	}
	c.hc = &http.Client{
		Transport: rt,
		Timeout:   c.timeout,
		// Never follow a redirect: the secret must go only where it was
		// configured to go. A 3xx is answered as an *APIError.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c, nil
}

// BaseURL returns the server's URL as the client uses it.
func (c *Client) BaseURL() string { return c.base.String() }

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// APIError is a refusal by the server: its HTTP status and the contract's
// error body. Unwrap gives a *certinv.Error of the matching kind, so
// certinv.KindOf works on it.
type APIError struct {
	Status     int
	Code       string // contract code: InvalidInput, Unauthorized, Conflict...
	Message    string // the server's client-safe message
	RequestID  string // the server's request id (error target, X-Request-Id)
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	s := fmt.Sprintf("server answered %d %s: %s", e.Status, e.Code, msg)
	if e.RequestID != "" {
		s += " (request id " + e.RequestID + ")"
	}
	return s
}

// Unwrap returns the refusal as a *certinv.Error.
func (e *APIError) Unwrap() error {
	return &certinv.Error{Kind: kindOfStatus(e.Status), Message: e.Message}
}

// kindOfStatus is the inverse of the server's table of statuses.
func kindOfStatus(status int) certinv.ErrorKind {
	switch status {
	case http.StatusBadRequest:
		return certinv.EInvalid
	case http.StatusUnauthorized:
		return certinv.EUnauthorized
	case http.StatusForbidden:
		return certinv.EForbidden
	case http.StatusNotFound:
		return certinv.ENotFound
	case http.StatusConflict:
		return certinv.EConflict
	case http.StatusRequestEntityTooLarge:
		return certinv.ETooLarge
	case http.StatusTooManyRequests:
		return certinv.ETooManyRequest
	case http.StatusServiceUnavailable:
		return certinv.EUnavailable
	default:
		return certinv.EInternal
	}
}

// MissingError answers a report that named by SHA-256 alone certificates
// the server does not hold. Nothing was stored: send the report again with
// the DER of exactly these.
type MissingError struct {
	SHA256 [][32]byte
	API    *APIError
}

func (e *MissingError) Error() string {
	return fmt.Sprintf("the server lacks %d certificate(s) named by sha256: %v", len(e.SHA256), e.API)
}

// Unwrap returns the server's refusal.
func (e *MissingError) Unwrap() error { return e.API }

// ErrStale is matched (errors.Is) by the refusal of a report collected
// before the last report the server took for the device: the device's clock
// went back, or an older report arrived late. Nothing was stored.
var ErrStale = errors.New("the server holds a newer report of this device")

// ErrTooLarge is matched by a report that is too large to send: more
// certificates, or a bigger body, than the server takes.
var ErrTooLarge = errors.New("the report is too large to send")

// Retryable reports whether the request that failed with err may succeed
// if sent again as it is: a transport failure (the server is down or
// unreachable, the connection broke, a timeout), 408, 429, 500, 502, 503 or
// 504. after is the wait the server asked for (Retry-After), or 0.
// Cancellation of the caller's context is not retryable.
func Retryable(err error) (retry bool, after time.Duration) {
	if err == nil || errors.Is(err, context.Canceled) {
		return false, 0
	}
	var api *APIError
	if errors.As(err, &api) {
		switch api.Status {
		case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
			http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true, api.RetryAfter
		}
		return false, 0
	}
	var te *transportError
	return errors.As(err, &te), 0
}

// transportError is a failure to get an answer: the server was not reached
// or the exchange broke off.
type transportError struct{ err error }

func (e *transportError) Error() string { return e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }
