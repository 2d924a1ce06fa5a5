package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/certinv/certinv/blob/azure"
	"github.com/certinv/certinv/datadir"
)

// azureConfig turns --blob (a connection string, or an account URL) and
// --blob-key into the bucket's configuration, and describes the account
// without its key, for messages and the log.
func azureConfig(spec, key string) (azure.Config, string, error) {
	spec = strings.TrimSpace(spec)
	lower := strings.ToLower(spec)
	switch {
	case strings.HasPrefix(lower, "https://") || strings.HasPrefix(lower, "http://"):
		u, err := url.Parse(spec)
		if err != nil || u.Host == "" {
			return azure.Config{}, "", &usageError{"--blob: want a connection string or an account URL such as https://ACCOUNT.blob.core.windows.net"}
		}
		if u.RawQuery != "" || u.User != nil {
			return azure.Config{}, "", &usageError{"--blob: give the account URL without a query or credentials; the account key goes in --blob-key or CERTINV_BLOB_KEY"}
		}
		if key == "" {
			return azure.Config{}, "", &usageError{"--blob is an account URL: give its account key with --blob-key or CERTINV_BLOB_KEY"}
		}
		return azure.Config{AccountURL: strings.TrimRight(spec, "/"), AccountKey: key}, "azure " + u.Scheme + "://" + u.Host + u.Path, nil
	case strings.Contains(lower, "accountname=") || strings.Contains(lower, "blobendpoint="):
		if key != "" {
			return azure.Config{}, "", &usageError{"--blob-key goes with an account URL; a connection string carries its own AccountKey"}
		}
		return azure.Config{ConnectionString: spec}, "azure " + describeConnectionString(spec), nil
	default:
		return azure.Config{}, "", &usageError{"--blob: want an Azure Storage connection string (AccountName=...;AccountKey=...) or an account URL (https://ACCOUNT.blob.core.windows.net) with --blob-key"}
	}
}

// describeConnectionString names the account and endpoint of an Azure
// Storage connection string, never its key or SAS.
func describeConnectionString(cs string) string {
	var name, endpoint string
	for _, part := range strings.Split(cs, ";") {
		k, v, _ := strings.Cut(part, "=")
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "accountname":
			name = v
		case "blobendpoint":
			endpoint = v
		}
	}
	switch {
	case endpoint != "":
		if u, err := url.Parse(endpoint); err == nil {
			return u.Scheme + "://" + u.Host + u.Path
		}
		return "account " + name
	default:
		return "account " + name
	}
}

// redactDB describes a PostgreSQL URL without its password (nor any
// password= parameter); a key=value connection string is not shown.
func redactDB(s string) string {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "(PostgreSQL connection string)"
	}
	return redactURL(u)
}

// redactURL shows a URL with its password and any secret-looking query
// parameter replaced by xxxxx.
func redactURL(u *url.URL) string {
	c := *u
	if c.User != nil {
		if _, has := c.User.Password(); has {
			c.User = url.UserPassword(c.User.Username(), "xxxxx")
		}
	}
	q := c.Query()
	for k := range q {
		switch strings.ToLower(k) {
		case "password", "sslpassword", "sslkey", "pass", "token", "sig", "accountkey":
			q.Set(k, "xxxxx")
		}
	}
	c.RawQuery = q.Encode()
	return c.String()
}

// redactRedis describes a redis:// URL without its password.
func redactRedis(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(Redis URL)"
	}
	return redactURL(u)
}

// keyring is where the secrets that every replica must share live: the
// embedded issuer's token-signing key, the skiptoken key, the enrollment
// secret, and the key of local download URLs. *datadir.Dir is one (the
// data folder's keys); keyDir is a folder of its own (--keys).
type keyring interface {
	TokenKeyPath() string
	SkiptokenKey() ([]byte, error)
	URLSigningKey() ([]byte, error)
	EnrollmentSecret() (string, error)
	EnrollmentSecretPath() string
}

var _ keyring = (*datadir.Dir)(nil)

// keyDir is a folder holding the shared secrets as flat files, so that it
// can be a mounted secret volume (a Kubernetes Secret, say):
//
//	token-signing.pem       the embedded issuer's RSA key (PKCS#8 PEM)
//	skiptoken-signing.key   32 random bytes, base64url
//	url-signing.key         32 random bytes, base64url (local files only)
//	enrollment-secret       the agents' enrollment secret
//
// A missing file is made on first use when the folder is writable (once,
// atomically, whichever replica comes first); `certinv keys --keys DIR`
// makes them ahead of time for a read-only volume.
type keyDir string

// The files of a keyDir.
const (
	keyFileToken      = "token-signing.pem"
	keyFileSkiptoken  = "skiptoken-signing.key"
	keyFileURL        = "url-signing.key"
	keyFileEnrollment = "enrollment-secret"
)

func (k keyDir) path(name string) string { return filepath.Join(string(k), name) }

func (k keyDir) TokenKeyPath() string         { return k.path(keyFileToken) }
func (k keyDir) EnrollmentSecretPath() string { return k.path(keyFileEnrollment) }

func (k keyDir) SkiptokenKey() ([]byte, error)  { return k.key(keyFileSkiptoken) }
func (k keyDir) URLSigningKey() ([]byte, error) { return k.key(keyFileURL) }

func (k keyDir) EnrollmentSecret() (string, error) {
	b, err := k.secret(keyFileEnrollment)
	if err != nil {
		return "", fmt.Errorf("enrollment secret: %w", err)
	}
	return string(b), nil
}

func (k keyDir) key(name string) ([]byte, error) {
	s, err := k.secret(name)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", name, err)
	}
	b, err := base64.RawURLEncoding.DecodeString(string(s))
	if err != nil || len(b) < 32 {
		return nil, fmt.Errorf("key %s: not 32 bytes or more of base64url (unpadded)", k.path(name))
	}
	return b, nil
}

// secret reads a secret file, or makes it (32 random bytes, base64url)
// when it does not exist: atomically, so that replicas racing on a shared
// folder all end with the one that was linked first.
func (k keyDir) secret(name string) ([]byte, error) {
	p := k.path(name)
	b, err := os.ReadFile(p)
	if err == nil {
		s := strings.TrimSpace(string(b))
		if s == "" {
			return nil, fmt.Errorf("%s is empty", p)
		}
		return []byte(s), nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(string(k), 0o700); err != nil {
		return nil, fmt.Errorf("%s does not exist and cannot be made (make the keys with 'certinv keys --keys DIR' where it is writable): %w", p, err)
	}
	err = datadir.WriteFileOnce(p, []byte(base64.RawURLEncoding.EncodeToString(raw[:])+"\n"), 0o600)
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("%s does not exist and cannot be made (make the keys with 'certinv keys --keys DIR' where it is writable): %w", p, err)
	}
	return k.secret(name)
}
