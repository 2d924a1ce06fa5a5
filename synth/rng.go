package synth

import (
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
)

// rng is a small deterministic random source. Its helpers are written here,
// on top of the PCG generator's raw output (whose algorithm is fixed), so
// that a change in math/rand/v2's helpers cannot change the fleet.
type rng struct{ pcg rand.PCG }

// newRNG returns a source seeded from the fleet seed, a purpose and an
// index, so that every device (and every fleet-wide purpose) has its own
// stream whatever order the workers run in.
func newRNG(seed int64, purpose string, index uint64) *rng {
	h := sha256.New()
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(seed)))
	h.Write([]byte(purpose))
	h.Write(binary.BigEndian.AppendUint64(nil, index))
	sum := h.Sum(nil)
	r := &rng{}
	r.pcg.Seed(binary.BigEndian.Uint64(sum[0:8]), binary.BigEndian.Uint64(sum[8:16]))
	return r
}

func (r *rng) uint64() uint64 { return r.pcg.Uint64() }

// intn returns a number in [0, n). The modulo bias is below 2^-40 for the
// small n used here.
func (r *rng) intn(n int) int {
	if n <= 1 {
		return 0
	}
	return int((r.pcg.Uint64() >> 1) % uint64(n))
}

// between returns a number in [lo, hi].
func (r *rng) between(lo, hi int) int { return lo + r.intn(hi-lo+1) }

// chance returns true with probability p.
func (r *rng) chance(p float64) bool {
	return float64(r.pcg.Uint64()>>11)/(1<<53) < p
}

// weighted returns an index of weights, with probability proportional to
// its weight.
func (r *rng) weighted(weights []int) int {
	total := 0
	for _, w := range weights {
		total += w
	}
	x := r.intn(total)
	for i, w := range weights {
		if x < w {
			return i
		}
		x -= w
	}
	return len(weights) - 1
}

// Read fills p, for the PSS salt; it never fails.
func (r *rng) Read(p []byte) (int, error) {
	for i := 0; i < len(p); i += 8 {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], r.pcg.Uint64())
		copy(p[i:], b[:])
	}
	return len(p), nil
}

// serial returns a positive serial number of n bytes.
func (r *rng) serial(n int) []byte {
	b := make([]byte, n)
	_, _ = r.Read(b)
	b[0] &= 0x7f
	if b[0] == 0 {
		b[0] = 0x01
	}
	return b
}
