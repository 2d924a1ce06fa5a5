package ratelimit_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/certinv/certinv/ratelimit"
	"github.com/certinv/certinv/ratelimit/ratelimittest"
)

func TestMemory(t *testing.T) {
	ratelimittest.Run(t, func(t *testing.T, rates ...ratelimit.Rate) ratelimit.Limiter {
		m, err := ratelimit.NewMemory(rates...)
		if err != nil {
			t.Fatalf("NewMemory(%v): %v", rates, err)
		}
		return m
	})
}

func TestNewMemoryRefusesBadRates(t *testing.T) {
	for _, rates := range [][]ratelimit.Rate{nil, {{0, time.Minute}}, {{5, time.Millisecond}}} {
		if _, err := ratelimit.NewMemory(rates...); err == nil {
			t.Errorf("NewMemory(%v) = nil error, want one", rates)
		}
	}
}

func TestMemoryDropsIdleKeys(t *testing.T) {
	m, _ := ratelimit.NewMemory(ratelimit.Rate{Limit: 1, Period: time.Minute})
	ctx := context.Background()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 100 {
		m.Allow(ctx, fmt.Sprint("key", i), t0)
	}
	if m.Len() != 100 {
		t.Fatalf("Len() = %d, want 100", m.Len())
	}
	m.Allow(ctx, "late", t0.Add(2*time.Minute))
	if m.Len() != 1 {
		t.Errorf("Len() after the keys went idle = %d, want 1", m.Len())
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want int
	}{{time.Nanosecond, 1}, {time.Second, 1}, {time.Second + 1, 2}, {59 * time.Second, 59}, {0, 1}} {
		if got := ratelimit.RetryAfterSeconds(tc.d); got != tc.want {
			t.Errorf("RetryAfterSeconds(%v) = %d, want %d", tc.d, got, tc.want)
		}
	}
}

// BenchmarkMemoryAllow is the cost the limiter adds to each call.
func BenchmarkMemoryAllow(b *testing.B) {
	m, _ := ratelimit.NewMemory(ratelimit.Rate{Limit: 30, Period: time.Minute}, ratelimit.Rate{Limit: 1000, Period: time.Hour})
	ctx := context.Background()
	t0 := time.Now()
	i := 0
	for b.Loop() {
		i++
		m.Allow(ctx, "tenant/app", t0.Add(time.Duration(i)*4*time.Second)) // under both limits
	}
}
