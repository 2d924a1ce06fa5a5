package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
)

// TrustConfig is one trusted identity provider as configured: where its
// keys are (an OpenID discovery URL, or a JWKS URL), the iss values of its
// tokens, and the aud values they must carry.
//
// The vendor's identity platform signs v1 tokens (iss
// https://sts.windows.net/<tenant>/, aud the API's App ID URI) and v2 tokens
// (iss https://login.microsoftonline.com/<tenant>/v2.0, aud the API's
// client id) with the same keys: list both issuers and both audiences to
// take both.
type TrustConfig struct {
	// Discovery is the OpenID discovery URL
	// (https://login.microsoftonline.com/<tenant>/v2.0/.well-known/openid-configuration).
	Discovery string `json:"discovery,omitempty"`
	// JWKS is the key set's URL, for a provider without discovery.
	JWKS string `json:"jwks,omitempty"`
	// Issuers are the accepted iss values. With Discovery and none given,
	// the discovery document's issuer (fetched at start).
	Issuers []string `json:"issuers,omitempty"`
	// Audiences are the accepted aud values; at least one.
	Audiences []string `json:"audiences"`
}

// ParseTrust parses the --trust-issuer flag's value: comma-separated
// key=value pairs, keys discovery, jwks, issuer (repeatable) and audience
// (repeatable), as in
//
//	discovery=https://login.microsoftonline.com/<tid>/v2.0/.well-known/openid-configuration,audience=api://certinv
//
// A value may not hold a comma; use a file (ReadTrustFile) for such.
func ParseTrust(spec string) (TrustConfig, error) {
	var c TrustConfig
	for part := range strings.SplitSeq(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		k, v = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)
		if !ok || v == "" {
			return TrustConfig{}, fmt.Errorf("trusted issuer %q: %q is not key=value", spec, part)
		}
		switch k {
		case "discovery":
			if c.Discovery != "" {
				return TrustConfig{}, fmt.Errorf("trusted issuer %q: discovery given twice", spec)
			}
			c.Discovery = v
		case "jwks":
			if c.JWKS != "" {
				return TrustConfig{}, fmt.Errorf("trusted issuer %q: jwks given twice", spec)
			}
			c.JWKS = v
		case "issuer", "iss":
			c.Issuers = append(c.Issuers, v)
		case "audience", "aud":
			c.Audiences = append(c.Audiences, v)
		default:
			return TrustConfig{}, fmt.Errorf("trusted issuer %q: unknown key %q (want discovery, jwks, issuer or audience)", spec, k)
		}
	}
	if err := c.Validate(); err != nil {
		return TrustConfig{}, fmt.Errorf("trusted issuer %q: %w", spec, err)
	}
	return c, nil
}

// TrustFile is the JSON file of --trust-config.
type TrustFile struct {
	TrustedIssuers []TrustConfig `json:"trustedIssuers"`
}

// ReadTrustFile reads and validates a TrustFile.
func ReadTrustFile(path string) ([]TrustConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read trusted issuers: %w", err)
	}
	var f TrustFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("read trusted issuers %s: %w", path, err)
	}
	for i, c := range f.TrustedIssuers {
		if err := c.Validate(); err != nil {
			return nil, fmt.Errorf("read trusted issuers %s: entry %d: %w", path, i, err)
		}
	}
	return f.TrustedIssuers, nil
}

// Validate checks c: one key source (https, or http to a loopback host),
// issuers given with a JWKS URL, at least one audience, no empty value.
func (c TrustConfig) Validate() error {
	switch {
	case c.Discovery == "" && c.JWKS == "":
		return errors.New("give discovery=URL or jwks=URL")
	case c.Discovery != "" && c.JWKS != "":
		return errors.New("give discovery=URL or jwks=URL, not both")
	case c.JWKS != "" && len(c.Issuers) == 0:
		return errors.New("a jwks URL needs the issuer (iss) of the tokens it signs: add issuer=...")
	case len(c.Audiences) == 0:
		return errors.New("give at least one audience (aud) the tokens must be for: add audience=...")
	}
	for _, s := range []string{c.Discovery, c.JWKS} {
		if s == "" {
			continue
		}
		u, err := url.Parse(s)
		if err != nil {
			return fmt.Errorf("%q is not a URL", s)
		}
		if err := checkFetchURL(u); err != nil {
			return err
		}
	}
	if slices.Contains(c.Issuers, "") || slices.Contains(c.Audiences, "") {
		return errors.New("an issuer or audience is empty")
	}
	for _, iss := range c.Issuers {
		if strings.ContainsAny(iss, "{}") {
			return fmt.Errorf("issuer %q is a template; give the tenant's own issuer", iss)
		}
	}
	return nil
}

// NewTrust returns the Trust of c for a Verifier, its keys fetched as opts
// say. When c names no issuer, the discovery document is fetched now for
// it, and an unreachable provider is an error; otherwise nothing is fetched
// before the first token (call Refresh on the keys to fetch early).
func NewTrust(ctx context.Context, c TrustConfig, opts RemoteOptions) (Trust, *RemoteKeys, error) {
	if err := c.Validate(); err != nil {
		return Trust{}, nil, err
	}
	keys, err := NewRemoteKeys(c.Discovery, c.JWKS, opts)
	if err != nil {
		return Trust{}, nil, err
	}
	issuers := slices.Clone(c.Issuers)
	if len(issuers) == 0 {
		d, err := keys.Discover(ctx)
		if err != nil {
			return Trust{}, nil, fmt.Errorf("trusted issuer %s: %w (give issuer=... to start without it)", c.Discovery, err)
		}
		issuers = []string{d.Issuer}
	}
	return Trust{Issuers: issuers, Audiences: slices.Clone(c.Audiences), Keys: keys}, keys, nil
}
