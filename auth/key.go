package auth

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
)

// MinKeyBits is the smallest RSA modulus the Issuer signs with, as the
// vendor's identity platform (and RFC 7518 for RS256) require.
const MinKeyBits = 2048

// GeneratedKeyBits is the size of the keys LoadOrCreateKey makes.
const GeneratedKeyBits = 2048

// LoadOrCreateKey returns the RSA private key in the PKCS#8 PEM file at path,
// creating the file with a new key when it does not exist. The new file is
// written with mode 0600 to a temporary name and linked into place, so a
// reader never sees a partial key and two processes starting at once agree
// on one key (the second loads what the first wrote).
func LoadOrCreateKey(path string) (*rsa.PrivateKey, error) {
	key, err := loadKey(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	key, err = rsa.GenerateKey(rand.Reader, GeneratedKeyBits)
	if err != nil {
		return nil, fmt.Errorf("generate signing key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode signing key: %w", err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if err := writeNew(path, data); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return loadKey(path) // another process made it first
		}
		return nil, err
	}
	return key, nil
}

func loadKey(path string) (*rsa.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read signing key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("read signing key %s: no PEM block", path)
	}
	var parsed any
	switch block.Type {
	case "PRIVATE KEY":
		parsed, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		parsed, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("read signing key %s: PEM block %q, want PRIVATE KEY", path, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("read signing key %s: %w", path, err)
	}
	key, ok := parsed.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("read signing key %s: %T is not an RSA key", path, parsed)
	}
	if n := key.N.BitLen(); n < MinKeyBits {
		return nil, fmt.Errorf("read signing key %s: RSA key of %d bits, want at least %d", path, n, MinKeyBits)
	}
	return key, nil
}

// writeNew writes data to path, which must not exist, atomically and with
// mode 0600. It returns an error wrapping fs.ErrExist when path exists.
func writeNew(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write signing key: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // the key stays linked at path on success
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("write signing key: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write signing key: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write signing key: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write signing key: %w", err)
	}
	// Link, unlike rename, fails when path exists: a concurrent creator's key
	// is never replaced.
	if err := os.Link(tmp, path); err != nil {
		return fmt.Errorf("write signing key: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // best effort: make the new name durable
		d.Close()
	}
	return nil
}

// Thumbprint returns the RFC 7638 JWK thumbprint of an RSA public key:
// base64url of the SHA-256 of its canonical JWK {"e","kty","n"}. The Issuer
// uses it as the key id.
func Thumbprint(pub *rsa.PublicKey) string {
	canonical := `{"e":"` + b64(big.NewInt(int64(pub.E)).Bytes()) + `","kty":"RSA","n":"` + b64(pub.N.Bytes()) + `"}`
	sum := sha256.Sum256([]byte(canonical))
	return b64(sum[:])
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
