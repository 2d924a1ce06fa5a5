// Package agent is certinv's device agent: it collects the certificates a
// device holds and reports them to the server, on a schedule, without
// getting in the device's way.
//
// A report goes hashes first: the agent names every certificate by its
// SHA-256, and sends the DER only of those the server answers it lacks
// (client.MissingError). A fleet whose certificates the server already
// holds then costs a few hundred bytes per device and report. Transport
// failures, 5xx and 429 answers are retried with bounded exponential
// backoff and jitter, honouring Retry-After. Memory stays bounded: the DER
// kept between the collection and the upload is capped (MaxHeldDERBytes),
// and what the server asks for beyond it is collected again.
//
// The collector is a function value (Collector), so the agent runs the same
// against package scan on a device and against a fixed list in tests.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/certinv/certinv"
	"github.com/certinv/certinv/client"
)

// Collector finds the certificates of the device: it calls found with each
// certificate's path and DER, and warn with each problem that did not stop
// it (an unreadable file, a corrupt certificate). It returns an error only
// when it could not collect at all, or when found returned one. found does
// not keep der: the collector may reuse its buffer.
type Collector func(ctx context.Context, found func(path string, der []byte) error, warn func(path string, err error)) error

// Reporter uploads a report; *client.Client is one.
type Reporter interface {
	Report(ctx context.Context, secret string, r *client.Report) (*client.ReportResult, error)
}

// Identity is how the device names itself in reports.
type Identity struct {
	ID   string // 40 lowercase hex characters, stable (DeviceID)
	Name string // fully qualified domain name
	OS   string // "Ubuntu 24.04", "Windows Server 2022 Datacenter 21H2 (build 20348)"
}

// RetryPolicy bounds the attempts of one upload. The wait before attempt
// n+1 is drawn from [d/2, d) with d = Base*2^(n-1) capped at Max, or what
// the server asked for (Retry-After, at most an hour) when that is longer.
type RetryPolicy struct {
	Attempts int           // at least 1
	Base     time.Duration // wait before the second attempt, before jitter
	Max      time.Duration // longest computed wait
}

// DefaultRetry gives up after about 20 minutes of failures; the next
// scheduled report tries again.
var DefaultRetry = RetryPolicy{Attempts: 8, Base: 10 * time.Second, Max: 10 * time.Minute}

// Defaults of an Agent.
const (
	DefaultInterval = 6 * time.Hour
	// MaxJitter bounds the random shift of each scheduled report.
	MaxJitter = 30 * time.Minute
	// DefaultMaxHeldDERBytes is the DER the agent keeps in memory between
	// collecting and uploading: the certificates of a large device.
	DefaultMaxHeldDERBytes = 16 << 20
	// maxWarningsLogged bounds the collector's warnings logged one by one in
	// a report; the rest are counted.
	maxWarningsLogged = 20
	// maxRounds bounds the exchanges of one report: hashes, then the DER the
	// server asked for, and one more should the server lose some meanwhile.
	maxRounds = 3
	// wakeEvery bounds one sleep of the schedule, so a device that was
	// suspended reports soon after it wakes (timers do not count suspend).
	wakeEvery = 5 * time.Minute
)

// Agent reports one device's certificates to a certinv server.
type Agent struct {
	Client  Reporter  // required
	Secret  string    // the enrollment secret; required, never logged
	Collect Collector // required
	Device  Identity  // required
	// Group, when not empty, places the device in that RBAC group.
	Group string
	// Interval between reports of Run; DefaultInterval when zero. Each wait
	// is shifted at random by up to a tenth of it (at most MaxJitter).
	Interval time.Duration
	// Retry bounds each upload; DefaultRetry when Attempts is zero.
	Retry RetryPolicy
	// MaxHeldDERBytes caps the DER kept between collection and upload;
	// DefaultMaxHeldDERBytes when zero.
	MaxHeldDERBytes int64
	// StateDir, when set and Client can enroll (an Enroller), keeps the
	// device's own credential: the agent enrolls once with Secret and
	// reports with the credential from then on.
	StateDir string

	Now   func() time.Time                                 // time.Now when nil
	Sleep func(ctx context.Context, d time.Duration) error // a timer when nil; returns ctx.Err() when ctx ends first
	Rand  func() float64                                   // in [0, 1); math/rand/v2 when nil
	Log   *slog.Logger                                     // slog.Default() when nil

	// rejected holds hashes of certificates the server could not parse: they
	// go with their DER from the start, saving a round trip each report.
	rejected map[[32]byte]bool
	// credential is the device's own credential, once held; noEnroll is set
	// when the server does not enroll devices.
	credential string
	noEnroll   bool
}

// Outcome is how one report went.
type Outcome struct {
	Result       *client.ReportResult // the server's answer; nil when the report failed
	Certificates int                  // certificates reported (unique path and hash)
	SentDER      int                  // certificates sent with their DER, in all rounds
	Requests     int                  // requests made, retries included
	Warnings     int                  // problems the collector reported
	Dropped      int                  // certificates left out: over the limits, or gone before their DER was sent
}

// ErrStale is matched by the error of a report the server refused as older
// than the last one it took of the device: the device's clock went back.
var ErrStale = client.ErrStale

func (a *Agent) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func (a *Agent) log() *slog.Logger {
	if a.Log != nil {
		return a.Log
	}
	return slog.Default()
}

func (a *Agent) rand() float64 {
	if a.Rand != nil {
		return a.Rand()
	}
	return rand.Float64()
}

func (a *Agent) sleep(ctx context.Context, d time.Duration) error {
	if a.Sleep != nil {
		return a.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (a *Agent) check() error {
	switch {
	case a.Client == nil, a.Collect == nil:
		return errors.New("agent: Client and Collect are required")
	case a.Secret == "":
		return errors.New("agent: the enrollment secret is empty")
	case a.Device.ID == "" || a.Device.Name == "":
		return errors.New("agent: the device's id and name are required")
	}
	return nil
}

// Run reports at once, then every Interval with jitter, until ctx ends. A
// report that fails is logged and the schedule goes on. It returns nil when
// ctx ends, and an error only when the agent is not configured to run.
func (a *Agent) Run(ctx context.Context) error {
	if err := a.check(); err != nil {
		return err
	}
	for {
		a.ReportOnce(ctx) // logs its outcome
		if ctx.Err() != nil {
			return nil
		}
		wait := a.NextWait()
		next := a.now().Add(wait)
		a.log().Info("next report scheduled", "in", wait.Round(time.Second), "at", next.Round(time.Second))
		if err := a.waitUntil(ctx, next); err != nil {
			return nil
		}
	}
}

// NextWait returns the wait before the next scheduled report: Interval
// shifted at random by up to a tenth of it, at most MaxJitter, either way.
func (a *Agent) NextWait() time.Duration {
	iv := a.Interval
	if iv <= 0 {
		iv = DefaultInterval
	}
	j := min(iv/10, MaxJitter)
	return iv - j + time.Duration(a.rand()*float64(2*j))
}

// waitUntil sleeps until the wall clock reaches t, in steps of at most
// wakeEvery, so that time spent suspended counts.
func (a *Agent) waitUntil(ctx context.Context, t time.Time) error {
	t = t.Round(0)
	for {
		rem := t.Sub(a.now().Round(0))
		if rem <= 0 {
			return nil
		}
		if err := a.sleep(ctx, min(rem, wakeEvery)); err != nil {
			return err
		}
	}
}

// ReportOnce collects the device's certificates and reports them, hashes
// first, and returns how it went. The error matches ErrStale when the server
// holds a newer report of the device (its clock went back); it is a
// *client.APIError for other refusals, or the last transport error once the
// retries are spent.
func (a *Agent) ReportOnce(ctx context.Context) (*Outcome, error) {
	out := &Outcome{}
	if err := a.check(); err != nil {
		return out, err
	}
	log := a.log()
	start := a.now()
	inv, err := a.collect(ctx, nil)
	if inv != nil {
		out.Warnings, out.Dropped = inv.warnings, inv.dropped
	}
	if err != nil {
		log.Error("collecting certificates failed", "err", err)
		return out, fmt.Errorf("collect certificates: %w", err)
	}
	rep := &client.Report{
		Device:       a.deviceAt(start),
		GroupName:    a.Group,
		Certificates: inv.certs,
	}
	out.Certificates = len(rep.Certificates)
	for i := range rep.Certificates {
		c := &rep.Certificates[i]
		if a.rejected[c.SHA256] {
			if der := inv.der[c.SHA256]; der != nil {
				c.DER = der
				out.SentDER++
			}
		}
	}
	log.Debug("certificates collected", "certificates", len(rep.Certificates), "held_der_bytes", inv.heldBytes,
		"warnings", inv.warnings, "dropped", inv.dropped, "took", a.now().Sub(start).Round(time.Millisecond))

	bearer, err := a.bearer(ctx, out)
	if err != nil {
		log.Error("enrollment failed", "err", err)
		return out, err
	}
	var res *client.ReportResult
	for round := 1; ; round++ {
		res, err = a.upload(ctx, bearer, rep, out)
		var missing *client.MissingError
		if !errors.As(err, &missing) || round == maxRounds {
			break
		}
		log.Info("the server asks for certificates it does not hold", "certificates", len(missing.SHA256))
		n, dropped, err := a.fillDER(ctx, rep, inv, missing.SHA256)
		if err != nil {
			log.Error("collecting certificates the server asked for failed", "err", err)
			return out, fmt.Errorf("collect certificates the server asked for: %w", err)
		}
		out.SentDER += n
		out.Dropped += dropped
		out.Certificates = len(rep.Certificates)
	}
	switch {
	case errors.Is(err, client.ErrStale):
		log.Warn("the server holds a newer report of this device: has the clock gone back? the next report will try again",
			"collected_at", start.UTC().Format(time.RFC3339), "err", err)
		return out, err
	case err != nil:
		log.Error("report failed", "requests", out.Requests, "err", err)
		return out, err
	}
	out.Result = res
	a.remember(rep, res)
	log.Info("report taken", "stored", res.Stored, "new", res.NewCertificates, "unchanged", res.Unchanged,
		"rejected", len(res.Rejected), "sent_der", out.SentDER, "requests", out.Requests,
		"warnings", out.Warnings, "dropped", out.Dropped, "took", a.now().Sub(start).Round(time.Millisecond))
	for i, rj := range res.Rejected {
		if i == maxWarningsLogged {
			break
		}
		log.Warn("the server could not read a certificate", "path", rj.Path, "reason", rj.Reason)
	}
	return out, nil
}

// deviceAt is the report's device, collected at t.
func (a *Agent) deviceAt(t time.Time) certinv.Device {
	return certinv.Device{ID: a.Device.ID, Name: a.Device.Name, OS: a.Device.OS, CollectedAt: t.UTC()}
}

// remember keeps the hashes the server rejected, so the next report sends
// their DER at once. It forgets them all when they grow past a bound.
func (a *Agent) remember(rep *client.Report, res *client.ReportResult) {
	if len(res.Rejected) == 0 {
		return
	}
	if a.rejected == nil || len(a.rejected) > 1024 {
		a.rejected = make(map[[32]byte]bool)
	}
	for _, rj := range res.Rejected {
		if rj.Index >= 0 && rj.Index < len(rep.Certificates) {
			a.rejected[rep.Certificates[rj.Index].SHA256] = true
		}
	}
}

// upload sends rep, authenticated with bearer, retrying what is worth
// retrying.
func (a *Agent) upload(ctx context.Context, bearer string, rep *client.Report, out *Outcome) (*client.ReportResult, error) {
	var res *client.ReportResult
	err := a.retry(ctx, "report", out, func() error {
		var err error
		res, err = a.Client.Report(ctx, bearer, rep)
		return err
	})
	return res, err
}

// retry runs op until it succeeds, fails in a way not worth retrying, or
// the retry policy is spent, waiting with backoff (or the server's
// Retry-After) between attempts. Each attempt counts as a request of out.
func (a *Agent) retry(ctx context.Context, what string, out *Outcome, op func() error) error {
	policy := a.Retry
	if policy.Attempts <= 0 {
		policy = DefaultRetry
	}
	for attempt := 1; ; attempt++ {
		out.Requests++
		err := op()
		retry, after := client.Retryable(err)
		if !retry || attempt >= policy.Attempts || ctx.Err() != nil {
			if retry {
				return fmt.Errorf("%s failed %d times, giving up until the next report: %w", what, attempt, err)
			}
			return err
		}
		wait := a.backoff(policy, attempt)
		if after > wait {
			wait = after
		}
		a.log().Warn(what+" failed, retrying", "attempt", attempt, "of", policy.Attempts, "in", wait.Round(time.Millisecond), "err", err)
		if err := a.sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// backoff returns the wait after the attempt-th failure: d = Base*2^(n-1)
// capped at Max, then drawn from [d/2, d).
func (a *Agent) backoff(p RetryPolicy, attempt int) time.Duration {
	d := p.Base
	for i := 1; i < attempt && d < p.Max; i++ {
		d *= 2
	}
	if p.Max > 0 && d > p.Max {
		d = p.Max
	}
	return d/2 + time.Duration(a.rand()*float64(d/2))
}
