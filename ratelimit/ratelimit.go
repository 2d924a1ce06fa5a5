// Package ratelimit limits how often a caller may call, as the export API's
// contract says (per application and tenant: 30 calls a minute and 1,000 an
// hour for JSON pages, 5 a minute and 20 an hour for the export).
//
// A limit is a set of windows (Rate): a call is allowed when, for every
// window, fewer than Limit calls were allowed in the Period before it. The
// windows slide and are exact: a call allowed at t counts against every
// call made before t+Period, and not after. A refused call is not counted,
// so a client that retries too early does not push its own wait further.
// Retry-After is the time until the oldest allowed call that fills a full
// window leaves it: a call made then succeeds (when no other call of the
// same key comes first).
//
// Memory is the in-process implementation; ratelimittest.Run is the
// contract that every implementation (a shared one on Redis, say) passes.
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Limiter decides whether a call of key at now is allowed; when it is not,
// retryAfter is how long until a call of the key will be (more than zero).
// An allowed call is counted. err is a failure of the limiter itself (a
// store that is down), not a refusal.
type Limiter interface {
	Allow(ctx context.Context, key string, now time.Time) (ok bool, retryAfter time.Duration, err error)
}

// Rate is one window of a limit: at most Limit calls in any Period.
type Rate struct {
	Limit  int
	Period time.Duration
}

func (r Rate) String() string { return fmt.Sprintf("%d per %v", r.Limit, r.Period) }

// CheckRates validates a limit's windows: at least one, each with a limit
// of 1 or more and a period of a second or more.
func CheckRates(rates []Rate) error {
	if len(rates) == 0 {
		return errors.New("ratelimit: no rates")
	}
	for _, r := range rates {
		if r.Limit < 1 || r.Period < time.Second {
			return fmt.Errorf("ratelimit: rate %v: want a limit of at least 1 and a period of at least 1s", r)
		}
	}
	return nil
}

// Memory is a Limiter held in this process: exact sliding windows over the
// times of the last calls of each key (as many as the largest Limit). It is
// safe for concurrent use. Keys idle for longer than the longest period are
// dropped as new keys come.
type Memory struct {
	rates     []Rate
	maxLimit  int
	maxPeriod time.Duration

	mu        sync.Mutex
	keys      map[string]*history
	lastSweep time.Time
}

// history holds the times of a key's last allowed calls: a slice that
// grows with the calls up to max entries, then a ring whose oldest entry
// is at start. Memory follows the calls made, not the configured limit.
type history struct {
	times []int64 // Unix nanoseconds
	start int
	max   int
}

func (h *history) len() int { return len(h.times) }

// recent returns the i-th most recent call (0 the newest).
func (h *history) recent(i int) int64 {
	return h.times[(h.start+len(h.times)-1-i)%len(h.times)]
}

func (h *history) add(t int64) {
	if len(h.times) < h.max {
		h.times = append(h.times, t)
		return
	}
	h.times[h.start] = t
	h.start = (h.start + 1) % len(h.times)
}

// NewMemory returns an in-process limiter of the given windows.
func NewMemory(rates ...Rate) (*Memory, error) {
	if err := CheckRates(rates); err != nil {
		return nil, err
	}
	m := &Memory{rates: append([]Rate(nil), rates...), keys: make(map[string]*history)}
	for _, r := range rates {
		m.maxLimit = max(m.maxLimit, r.Limit)
		m.maxPeriod = max(m.maxPeriod, r.Period)
	}
	return m, nil
}

// Allow implements Limiter.
func (m *Memory) Allow(_ context.Context, key string, now time.Time) (bool, time.Duration, error) {
	t := now.UnixNano()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweep(now)
	h := m.keys[key]
	if h == nil {
		h = &history{max: m.maxLimit}
		m.keys[key] = h
	}
	if h.len() > 0 && t < h.recent(0) {
		t = h.recent(0) // a clock that went back: time does not go back here
	}
	var wait int64
	for _, r := range m.rates {
		if h.len() < r.Limit {
			continue
		}
		// The window is full when its Limit-th most recent call is still
		// in it; it frees when that call leaves.
		free := h.recent(r.Limit-1) + int64(r.Period)
		if free > t {
			wait = max(wait, free-t)
		}
	}
	if wait > 0 {
		return false, time.Duration(wait), nil
	}
	h.add(t)
	return true, 0, nil
}

// sweep drops the keys whose newest call is older than the longest period,
// at most once per that period, so memory follows the active callers.
func (m *Memory) sweep(now time.Time) {
	if now.Sub(m.lastSweep) < m.maxPeriod {
		return
	}
	m.lastSweep = now
	cutoff := now.Add(-m.maxPeriod).UnixNano()
	for k, h := range m.keys {
		if h.len() == 0 || h.recent(0) <= cutoff {
			delete(m.keys, k)
		}
	}
}

// Len returns how many keys the limiter holds.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.keys)
}

// RetryAfterSeconds rounds a wait up to whole seconds, at least 1: the
// Retry-After of an HTTP answer, after which a call succeeds.
func RetryAfterSeconds(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	return max(s, 1)
}
