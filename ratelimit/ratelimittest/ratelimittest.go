// Package ratelimittest is the contract suite of ratelimit.Limiter
// implementations, as a library: every limiter (in memory, on Redis) runs
// Run, and so is held to exact sliding windows, refusals that do not count,
// Retry-After values after which a call succeeds, and keys kept apart.
package ratelimittest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/certinv/certinv/ratelimit"
)

// Run runs the contract suite. open returns a new limiter of the given
// windows, with no calls recorded, for each subtest; keys are unique per
// subtest, so a shared backend needs no flushing.
func Run(t *testing.T, open func(t *testing.T, rates ...ratelimit.Rate) ratelimit.Limiter) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open func(t *testing.T, rates ...ratelimit.Rate) ratelimit.Limiter)
	}{
		{"MinuteBoundary", testMinuteBoundary},
		{"HourBoundary", testHourBoundary},
		{"RefusalsNotCounted", testRefusalsNotCounted},
		{"RetryAfterSucceeds", testRetryAfterSucceeds},
		{"KeysApart", testKeysApart},
		{"Concurrent", testConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open) })
	}
}

// t0 is an arbitrary time, not aligned to a minute: windows slide from the
// first call, not from the clock's minutes.
var t0 = time.Date(2026, 12, 3, 15, 0, 17, 250_000_000, time.UTC)

func key(t *testing.T, name string) string {
	return fmt.Sprintf("ratelimittest/%s/%s/%d", t.Name(), name, time.Now().UnixNano())
}

func allow(t *testing.T, l ratelimit.Limiter, k string, now time.Time) (bool, time.Duration) {
	t.Helper()
	ok, ra, err := l.Allow(context.Background(), k, now)
	if err != nil {
		t.Fatalf("Allow(%q, %v): %v", k, now, err)
	}
	if ok && ra != 0 {
		t.Errorf("Allow(%q, %v) = true with retryAfter %v, want 0", k, now, ra)
	}
	if !ok && ra <= 0 {
		t.Errorf("Allow(%q, %v) = false with retryAfter %v, want more than 0", k, now, ra)
	}
	return ok, ra
}

// testMinuteBoundary: 30 calls in one second pass, the 31st is refused
// with a wait of exactly the rest of the minute; one nanosecond before the
// first call leaves the window the 31st is still refused, at that instant
// it passes.
func testMinuteBoundary(t *testing.T, open func(t *testing.T, rates ...ratelimit.Rate) ratelimit.Limiter) {
	l := open(t, ratelimit.Rate{Limit: 30, Period: time.Minute}, ratelimit.Rate{Limit: 1000, Period: time.Hour})
	k := key(t, "app")
	for i := range 30 {
		at := t0.Add(time.Duration(i) * 10 * time.Millisecond)
		if ok, _ := allow(t, l, k, at); !ok {
			t.Fatalf("call %d at %v refused, want the first 30 allowed", i+1, at)
		}
	}
	at := t0.Add(time.Second)
	ok, ra := allow(t, l, k, at)
	if ok {
		t.Fatalf("call 31 within a minute allowed, want refused")
	}
	if want := time.Minute - time.Second; ra != want {
		t.Errorf("call 31 retryAfter = %v, want %v", ra, want)
	}
	if s := ratelimit.RetryAfterSeconds(ra); s != 59 {
		t.Errorf("RetryAfterSeconds(%v) = %d, want 59", ra, s)
	}
	if ok, ra := allow(t, l, k, t0.Add(time.Minute-time.Nanosecond)); ok || ra != time.Nanosecond {
		t.Errorf("call at first+1m-1ns = %v, %v; want refused with 1ns", ok, ra)
	}
	if ok, _ := allow(t, l, k, t0.Add(time.Minute)); !ok {
		t.Errorf("call at first+1m refused, want allowed (the first call left the window)")
	}
	// The second call (at +10ms) is still in the window: the next is refused.
	if ok, ra := allow(t, l, k, t0.Add(time.Minute)); ok || ra != 10*time.Millisecond {
		t.Errorf("another call at first+1m = %v, %v; want refused with 10ms", ok, ra)
	}
}

// testHourBoundary: 5 a minute and 20 an hour (the export's limits), calls
// spread so the minute window never fills: the 21st within the hour is
// refused until the first leaves the hour.
func testHourBoundary(t *testing.T, open func(t *testing.T, rates ...ratelimit.Rate) ratelimit.Limiter) {
	l := open(t, ratelimit.Rate{Limit: 5, Period: time.Minute}, ratelimit.Rate{Limit: 20, Period: time.Hour})
	k := key(t, "app")
	for i := range 20 {
		at := t0.Add(time.Duration(i) * 2 * time.Minute)
		if ok, _ := allow(t, l, k, at); !ok {
			t.Fatalf("call %d at +%v refused, want allowed", i+1, at.Sub(t0))
		}
	}
	at := t0.Add(40 * time.Minute)
	ok, ra := allow(t, l, k, at)
	if ok || ra != 20*time.Minute {
		t.Errorf("call 21 at +40m = %v, %v; want refused with 20m", ok, ra)
	}
	if ok, _ := allow(t, l, k, t0.Add(time.Hour-time.Nanosecond)); ok {
		t.Errorf("call at first+1h-1ns allowed, want refused")
	}
	if ok, _ := allow(t, l, k, t0.Add(time.Hour)); !ok {
		t.Errorf("call at first+1h refused, want allowed")
	}
	// Minute window: 5 quick calls fill it even with room in the hour.
	k2 := key(t, "burst")
	for i := range 5 {
		if ok, _ := allow(t, l, k2, t0.Add(time.Duration(i)*time.Second)); !ok {
			t.Fatalf("burst call %d refused", i+1)
		}
	}
	if ok, ra := allow(t, l, k2, t0.Add(5*time.Second)); ok || ra != 55*time.Second {
		t.Errorf("burst call 6 = %v, %v; want refused with 55s", ok, ra)
	}
}

// testRefusalsNotCounted: hammering while refused does not extend the wait.
func testRefusalsNotCounted(t *testing.T, open func(t *testing.T, rates ...ratelimit.Rate) ratelimit.Limiter) {
	l := open(t, ratelimit.Rate{Limit: 2, Period: time.Minute})
	k := key(t, "app")
	allow(t, l, k, t0)
	allow(t, l, k, t0)
	for i := range 100 {
		if ok, _ := allow(t, l, k, t0.Add(time.Duration(i)*100*time.Millisecond)); ok {
			t.Fatalf("refused-phase call %d allowed", i)
		}
	}
	if ok, _ := allow(t, l, k, t0.Add(time.Minute)); !ok {
		t.Errorf("call after the window refused: refusals were counted")
	}
}

// testRetryAfterSucceeds: a client that waits exactly what it was told
// gets through, every time, under a steady overload.
func testRetryAfterSucceeds(t *testing.T, open func(t *testing.T, rates ...ratelimit.Rate) ratelimit.Limiter) {
	l := open(t, ratelimit.Rate{Limit: 3, Period: 10 * time.Second}, ratelimit.Rate{Limit: 7, Period: time.Minute})
	k := key(t, "app")
	now := t0
	allowed := 0
	for range 200 {
		ok, ra := allow(t, l, k, now)
		if ok {
			allowed++
			now = now.Add(time.Second)
			continue
		}
		now = now.Add(ra)
		if ok, ra2 := allow(t, l, k, now); !ok {
			t.Fatalf("call after waiting retryAfter %v refused again (retryAfter %v)", ra, ra2)
		}
		allowed++
	}
	if allowed == 0 {
		t.Fatal("no call allowed")
	}
}

func testKeysApart(t *testing.T, open func(t *testing.T, rates ...ratelimit.Rate) ratelimit.Limiter) {
	l := open(t, ratelimit.Rate{Limit: 1, Period: time.Hour})
	a, b := key(t, "tenant-a/app"), key(t, "tenant-b/app")
	if ok, _ := allow(t, l, a, t0); !ok {
		t.Fatal("first call of a refused")
	}
	if ok, _ := allow(t, l, a, t0); ok {
		t.Fatal("second call of a allowed")
	}
	if ok, _ := allow(t, l, b, t0); !ok {
		t.Error("first call of b refused: keys are not apart")
	}
}

// testConcurrent: exactly Limit of many simultaneous calls pass.
func testConcurrent(t *testing.T, open func(t *testing.T, rates ...ratelimit.Rate) ratelimit.Limiter) {
	l := open(t, ratelimit.Rate{Limit: 30, Period: time.Minute})
	k := key(t, "app")
	var wg sync.WaitGroup
	var mu sync.Mutex
	passed := 0
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, _, err := l.Allow(context.Background(), k, t0)
			if err != nil {
				t.Errorf("Allow: %v", err)
			}
			if ok {
				mu.Lock()
				passed++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if passed != 30 {
		t.Errorf("%d of 100 concurrent calls passed, want 30", passed)
	}
}
