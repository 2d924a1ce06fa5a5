package synth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"sync"
)

// The key pool is the same for every fleet: keys are made from fixed seeds,
// once per process, and shared by the certificates of every device. A
// certificate's bytes differ per device; its key need not (the export shows
// no public key), and RSA key generation is far too slow to do per device.
type keyPool struct {
	rsa1024 []*rsa.PrivateKey
	rsa2048 []*rsa.PrivateKey
	rsa3072 []*rsa.PrivateKey
	rsa4096 []*rsa.PrivateKey
	p256    []*ecdsa.PrivateKey
	p384    []*ecdsa.PrivateKey
	ed      []ed25519.PrivateKey
}

// Pool sizes. The RSA keys are split between the certificate authorities and
// the leaves by index (see pki.go).
const (
	nRSA1024 = 2
	nRSA2048 = 5
	nRSA3072 = 1
	nRSA4096 = 1
	nP256    = 32
	nP384    = 8
	nEd25519 = 32
)

var loadPool = sync.OnceValues(buildPool)

func buildPool() (*keyPool, error) {
	p := &keyPool{
		rsa1024: make([]*rsa.PrivateKey, nRSA1024),
		rsa2048: make([]*rsa.PrivateKey, nRSA2048),
		rsa3072: make([]*rsa.PrivateKey, nRSA3072),
		rsa4096: make([]*rsa.PrivateKey, nRSA4096),
	}
	// RSA keys take up to a second each: make them in parallel. Each key
	// comes from its own seeded stream, so the result does not depend on
	// the schedule.
	type rsaJob struct {
		bits  int
		index int
		dst   **rsa.PrivateKey
	}
	var jobs []rsaJob
	for _, set := range []struct {
		bits int
		keys []*rsa.PrivateKey
	}{{4096, p.rsa4096}, {3072, p.rsa3072}, {2048, p.rsa2048}, {1024, p.rsa1024}} {
		for i := range set.keys {
			jobs = append(jobs, rsaJob{set.bits, i, &set.keys[i]})
		}
	}
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	for j, job := range jobs {
		wg.Go(func() {
			*job.dst, errs[j] = deterministicRSAKey(job.bits, job.index)
		})
	}
	for i := range nP256 {
		k, err := deterministicECDSAKey(elliptic.P256(), i)
		if err != nil {
			return nil, err
		}
		p.p256 = append(p.p256, k)
	}
	for i := range nP384 {
		k, err := deterministicECDSAKey(elliptic.P384(), i)
		if err != nil {
			return nil, err
		}
		p.p384 = append(p.p384, k)
	}
	for i := range nEd25519 {
		seed := sha256.Sum256(fmt.Appendf(nil, "certinv/synth ed25519 key %d", i))
		p.ed = append(p.ed, ed25519.NewKeyFromSeed(seed[:]))
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return p, nil
}

// deterministicRSAKey makes the index-th RSA key of the given size from a
// fixed seed: two primes drawn from a seeded stream, checked with
// ProbablyPrime. crypto/rsa.GenerateKey cannot do this: it ignores the
// caller's randomness since Go 1.26.
func deterministicRSAKey(bits, index int) (*rsa.PrivateKey, error) {
	seed := sha256.Sum256(fmt.Appendf(nil, "certinv/synth rsa key %d/%d", bits, index))
	stream := rand.NewChaCha8(seed)
	e := big.NewInt(65537)
	one := big.NewInt(1)
	prime := func() *big.Int {
		buf := make([]byte, bits/16)
		for {
			_, _ = stream.Read(buf) // ChaCha8.Read never fails
			// The two top bits set make the product exactly bits long; the
			// low bit makes the candidate odd.
			buf[0] |= 0xc0
			buf[len(buf)-1] |= 1
			p := new(big.Int).SetBytes(buf)
			pm1 := new(big.Int).Sub(p, one)
			if new(big.Int).GCD(nil, nil, e, pm1).Cmp(one) != 0 {
				continue
			}
			if p.ProbablyPrime(20) {
				return p
			}
		}
	}
	for {
		p, q := prime(), prime()
		if p.Cmp(q) == 0 {
			continue
		}
		n := new(big.Int).Mul(p, q)
		if n.BitLen() != bits {
			continue
		}
		phi := new(big.Int).Mul(new(big.Int).Sub(p, one), new(big.Int).Sub(q, one))
		d := new(big.Int).ModInverse(e, phi)
		if d == nil {
			continue
		}
		k := &rsa.PrivateKey{
			PublicKey: rsa.PublicKey{N: n, E: int(e.Int64())},
			D:         d,
			Primes:    []*big.Int{p, q},
		}
		if err := k.Validate(); err != nil {
			return nil, fmt.Errorf("deterministic rsa key %d/%d: %w", bits, index, err)
		}
		k.Precompute()
		return k, nil
	}
}

// deterministicECDSAKey makes the index-th key on curve c from a fixed seed:
// a scalar hashed from the seed, retried in the rare case it is out of range.
func deterministicECDSAKey(c elliptic.Curve, index int) (*ecdsa.PrivateKey, error) {
	size := (c.Params().BitSize + 7) / 8
	for attempt := uint32(0); attempt < 64; attempt++ {
		var scalar []byte
		for block := uint32(0); len(scalar) < size; block++ {
			h := sha256.New()
			fmt.Fprintf(h, "certinv/synth ecdsa key %s/%d", c.Params().Name, index)
			h.Write(binary.BigEndian.AppendUint32(nil, attempt))
			h.Write(binary.BigEndian.AppendUint32(nil, block))
			scalar = h.Sum(scalar)
		}
		k, err := ecdsa.ParseRawPrivateKey(c, scalar[:size])
		if err == nil {
			return k, nil
		}
	}
	return nil, fmt.Errorf("deterministic ecdsa key %s/%d: no scalar in range", c.Params().Name, index)
}
