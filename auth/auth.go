// Package auth issues and verifies the bearer tokens of the export API, in
// the shape of the vendor's identity platform (Microsoft Entra ID access
// tokens, v1 and v2):
//
//   - an embedded Issuer signs application and delegated tokens with an RSA
//     key and publishes its public keys as a JSON Web Key Set;
//   - Apps registers applications with the embedded issuer, keeps a digest
//     of their secrets, and grants them tokens with the client-credentials
//     flow; a deleted application's tokens, and those of a rotated secret,
//     stop working;
//   - RemoteKeys fetches and caches the keys of the organization's own
//     identity providers (OpenID discovery or a JWKS URL), configured as
//     TrustConfig and turned into a Trust by NewTrust;
//   - a Verifier turns a bearer token from any trusted issuer into a
//     *certinv.Principal, accepting asymmetric algorithms only.
package auth

import (
	"context"
	"crypto"
	"errors"
	"sync"
)

// ErrUnknownKey is returned (wrapped) by a KeySet that does not know the key
// id a token names. The Verifier answers it with EUnauthorized; any other
// KeySet error is internal (a key source being down is not the caller's fault).
var ErrUnknownKey = errors.New("unknown signing key")

// KeySet finds the public keys that tokens are verified with.
//
// Key returns the key with id kid of the given issuer, or an error wrapping
// ErrUnknownKey when the issuer has no such key. The issuer has already been
// checked against the Verifier's trusted issuers when Key is called.
type KeySet interface {
	Key(ctx context.Context, issuer, kid string) (crypto.PublicKey, error)
}

// StaticKeySet is a KeySet held in memory: keys added by issuer and key id.
// The zero value is empty and ready to use; it is safe for concurrent use.
type StaticKeySet struct {
	mu   sync.RWMutex
	keys map[string]map[string]crypto.PublicKey
}

// Add trusts key under kid for tokens of issuer.
func (s *StaticKeySet) Add(issuer, kid string, key crypto.PublicKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keys == nil {
		s.keys = make(map[string]map[string]crypto.PublicKey)
	}
	if s.keys[issuer] == nil {
		s.keys[issuer] = make(map[string]crypto.PublicKey)
	}
	s.keys[issuer][kid] = key
}

// Key implements KeySet.
func (s *StaticKeySet) Key(_ context.Context, issuer, kid string) (crypto.PublicKey, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if k, ok := s.keys[issuer][kid]; ok {
		return k, nil
	}
	return nil, ErrUnknownKey
}
