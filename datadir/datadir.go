// Package datadir lays out certinv's data folder, the whole state of an
// embedded deployment: the SQLite database, the snapshot files, the keys
// that sign tokens, skiptokens and download URLs, and the organization's
// enrollment secret. Several processes may use one folder at once (serve,
// seed, snapshot), so every secret is created atomically, once.
package datadir

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Dir is a data folder.
type Dir struct {
	Root string
}

// Open makes the folder and its subfolders if needed, readable by the owner
// only, and returns it.
func Open(root string) (*Dir, error) {
	if root == "" {
		return nil, errors.New("data folder: no path given (use --data DIR)")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("data folder %s: %w", root, err)
	}
	for _, d := range []string{abs, filepath.Join(abs, "keys"), filepath.Join(abs, "files")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("data folder: %w", err)
		}
	}
	return &Dir{Root: abs}, nil
}

// DatabasePath is the SQLite database.
func (d *Dir) DatabasePath() string { return filepath.Join(d.Root, "certinv.db") }

// FilesPath is the folder of snapshot files (a blob.Dir).
func (d *Dir) FilesPath() string { return filepath.Join(d.Root, "files") }

// TokenKeyPath is the embedded token issuer's RSA private key (PKCS#8 PEM).
func (d *Dir) TokenKeyPath() string { return filepath.Join(d.Root, "keys", "token-signing.pem") }

// EnrollmentSecretPath is the file holding the organization's enrollment
// secret, which agents present to report until they have credentials of
// their own.
func (d *Dir) EnrollmentSecretPath() string { return filepath.Join(d.Root, "enrollment-secret") }

// EnrollmentSecret returns the organization's enrollment secret, made on
// first use.
func (d *Dir) EnrollmentSecret() (string, error) {
	b, err := loadOrCreateSecret(d.EnrollmentSecretPath())
	if err != nil {
		return "", fmt.Errorf("enrollment secret: %w", err)
	}
	return string(b), nil
}

// URLSigningKey returns the key that signs download URLs of local files.
func (d *Dir) URLSigningKey() ([]byte, error) {
	return d.key("url-signing.key")
}

// SkiptokenKey returns the key that signs the $skiptoken of JSON pages.
func (d *Dir) SkiptokenKey() ([]byte, error) {
	return d.key("skiptoken-signing.key")
}

func (d *Dir) key(name string) ([]byte, error) {
	s, err := loadOrCreateSecret(filepath.Join(d.Root, "keys", name))
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", name, err)
	}
	k, err := base64.RawURLEncoding.DecodeString(string(s))
	if err != nil || len(k) < 32 {
		return nil, fmt.Errorf("key %s: not 32 bytes of base64url: remove the file to make a new one (this invalidates links signed with it)", name)
	}
	return k, nil
}

// loadOrCreateSecret reads a secret file, or makes it holding 32 random
// bytes in base64url. Creation is atomic and happens once even when several
// processes race: the secret is written to a temporary file and linked into
// place, which fails if another process got there first.
func loadOrCreateSecret(path string) ([]byte, error) {
	if b, err := os.ReadFile(path); err == nil {
		s := strings.TrimSpace(string(b))
		if s == "" {
			return nil, fmt.Errorf("%s is empty: remove it to make a new one", path)
		}
		return []byte(s), nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, err
	}
	secret := base64.RawURLEncoding.EncodeToString(raw[:])
	if err := WriteFileOnce(path, []byte(secret+"\n"), 0o600); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	return loadOrCreateSecret(path) // read back whichever process won
}

// WriteFileOnce writes data to path atomically with the given mode, unless
// path already exists, in which case it returns an error wrapping
// fs.ErrExist and leaves the file as it was.
func WriteFileOnce(path string, data []byte, mode fs.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Link(tmp.Name(), path)
}
