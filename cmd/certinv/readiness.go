package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/certinv/certinv"
	"github.com/certinv/certinv/httpapi"
	"github.com/certinv/certinv/ratelimit"
	"github.com/certinv/certinv/ratelimit/redis"
)

// limits are serve's rate limits, counted in memory or in Redis.
type limits struct {
	pages, export *httpapi.RateLimit
	where         string                          // "memory" or the Redis URL without its password
	ping          func(ctx context.Context) error // nil in memory
	failOpen      bool
}

// newLimits makes the rate limits of o: in this process's memory, or with
// --redis in Redis, shared by every replica. A Redis that does not answer
// at start is logged, not fatal: the server starts, /readyz reports it, and
// JSON calls get 503 (or pass unlimited with --rate-limit-fail-open) until
// it answers. The returned func closes the Redis client.
func newLimits(ctx context.Context, o *serveOptions, log *slog.Logger) (*limits, func(), error) {
	l := &limits{where: "memory", failOpen: o.rateLimitFailOpen}
	newLimiter := limiterFunc(memoryLimiter)
	closeFn := func() {}
	if o.redis != "" {
		client, err := redis.NewClient(o.redis, o.redisTimeout)
		if err != nil {
			return nil, nil, &usageError{"--redis: " + err.Error()}
		}
		closeFn = func() { client.Close() }
		l.where = redactRedis(o.redis)
		opts := redis.Options{Timeout: o.redisTimeout, FailOpen: o.rateLimitFailOpen, Log: log}
		var first *redis.Limiter
		newLimiter = func(rates ...ratelimit.Rate) (ratelimit.Limiter, error) {
			lim, err := redis.New(client, opts, rates...)
			if err == nil && first == nil {
				first = lim
			}
			return lim, err
		}
		defer func() {
			if first != nil {
				l.ping = first.Ping
				if err := first.Ping(ctx); err != nil {
					what := "JSON and export calls are refused with 503 until it answers"
					if o.rateLimitFailOpen {
						what = "calls are served without rate limits until it answers (--rate-limit-fail-open)"
					}
					log.Error("Redis does not answer at start: "+what, "redis", l.where, "err", err)
				}
			}
		}()
	}
	var err error
	if l.pages, err = o.access.pages.limit(newLimiter, o.rateLimitFailOpen); err != nil {
		closeFn()
		return nil, nil, fmt.Errorf("rate limits: %w", err)
	}
	if l.export, err = o.access.export.limit(newLimiter, o.rateLimitFailOpen); err != nil {
		closeFn()
		return nil, nil, fmt.Errorf("rate limits: %w", err)
	}
	return l, closeFn, nil
}

// readinessChecks are the dependencies /readyz reports: the database, the
// blob storage, Redis (when the limits are there), the latest snapshot and
// this replica's snapshot builds. None shows a secret or a host.
func readinessChecks(e *env, l *limits, sched *schedule, now func() time.Time) []httpapi.ReadinessCheck {
	checks := []httpapi.ReadinessCheck{
		{Name: "database", Check: func(ctx context.Context) (map[string]any, error) {
			d := map[string]any{"kind": e.dbKind}
			if p, ok := e.store.(pinger); ok {
				return d, unavailable(p.Ping(ctx), "the database does not answer")
			}
			_, err := e.store.Version(ctx)
			return d, unavailable(err, "the database does not answer")
		}},
		{Name: "blobStorage", Check: func(ctx context.Context) (map[string]any, error) {
			d := map[string]any{"kind": e.blobKind}
			if p, ok := e.bucket.(pinger); ok {
				return d, unavailable(p.Ping(ctx), "the blob storage does not answer")
			}
			_, err := e.bucket.Containers(ctx)
			return d, unavailable(err, "the snapshot files cannot be listed")
		}},
		{Name: "snapshot", Check: func(ctx context.Context) (map[string]any, error) {
			snap, err := e.store.LatestSnapshot(ctx)
			if certinv.KindOf(err) == certinv.ENotFound {
				return nil, certinv.Errorf(certinv.EUnavailable, "no snapshot is published yet: the first one is being built")
			}
			if err != nil {
				return nil, unavailable(err, "the latest snapshot cannot be read")
			}
			d := httpapi.SnapshotDetails(snap, now())
			if v, err := e.store.Version(ctx); err == nil {
				// The inventory changed since: the next round builds.
				d["behindInventory"] = v != snap.Version
			}
			return d, nil
		}},
		{Name: "snapshotBuilder", Optional: true, Check: func(context.Context) (map[string]any, error) {
			st := sched.status()
			d := map[string]any{
				"sharedLock":      sched.lock != nil,
				"intervalSeconds": int64(sched.interval.Seconds()),
				"rounds":          st.Runs,
				"builds":          st.Builds,
				"skipped":         st.Skipped,
				"failed":          st.Failed,
			}
			if !st.LastRunAt.IsZero() {
				d["lastRoundAt"] = st.LastRunAt.UTC().Format(certinv.TimeFormat)
				d["lastOutcome"] = st.Outcome
			}
			if !st.LastBuiltAt.IsZero() {
				d["lastBuiltAt"] = st.LastBuiltAt.UTC().Format(certinv.TimeFormat)
				d["lastBuildSeconds"] = st.LastBuildSeconds
				d["lastBuiltSnapshot"] = st.LastSnapshot
			}
			if st.Outcome == outcomeFailed {
				return d, certinv.Errorf(certinv.EUnavailable, "the last snapshot round failed; the previous snapshot keeps serving (the server's log has the cause)")
			}
			return d, nil
		}},
	}
	if l.ping != nil {
		checks = append(checks, httpapi.ReadinessCheck{
			Name: "redis",
			// Failing open, the server serves without Redis: reported,
			// not unready.
			Optional: l.failOpen,
			Check: func(ctx context.Context) (map[string]any, error) {
				d := map[string]any{"failOpen": l.failOpen}
				return d, unavailable(l.ping(ctx), "Redis does not answer: rate limits cannot be checked")
			},
		})
	}
	return checks
}

// unavailable wraps err (when not nil) with a client-safe message of kind
// EUnavailable; the cause stays in the chain for the log.
func unavailable(err error, msg string) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: %w", certinv.Errorf(certinv.EUnavailable, "%s", msg), err)
}
