package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
)

// TestAppCommands registers an application with `certinv app create`, finds
// the token endpoint through OpenID discovery as a client library would,
// gets a token, and reads the JSON pages with it; then rotates and deletes
// the application.
func TestAppCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test in -short mode")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	data := filepath.Join(t.TempDir(), "data")
	mustRun(t, ctx, "seed", "--data", data, "--devices", "3", "--certs-per-device", "2", "--seed", "3")

	var created struct {
		ClientID, ClientSecret, TenantID, Name string
		Roles                                  []string
	}
	if err := json.Unmarshal([]byte(mustRun(t, ctx, "app", "create", "--data", data, "--name", "nightly export", "--role", "Vulnerability.Read.All", "--json")), &created); err != nil {
		t.Fatal(err)
	}
	if created.ClientID == "" || !strings.HasPrefix(created.ClientSecret, "cis1_") || created.TenantID == "" || created.Name != "nightly export" {
		t.Fatalf("app create = %+v, want a client id, a secret and the tenant", created)
	}
	list := mustRun(t, ctx, "app", "list", "--data", data)
	if !strings.Contains(list, created.ClientID) || strings.Contains(list, created.ClientSecret) {
		t.Errorf("app list = %q, want the client id and never the secret", list)
	}

	base, stop := startServer(t, ctx, data)
	defer stop()
	disc := getJSON(t, base+"/"+created.TenantID+"/v2.0/.well-known/openid-configuration", "", http.StatusOK)
	tokenURL, _ := disc["token_endpoint"].(string)
	if want := base + "/" + created.TenantID + "/oauth2/v2.0/token"; tokenURL != want {
		t.Fatalf("discovery token_endpoint = %q, want %q", tokenURL, want)
	}
	grant := func(secret string, status int) string {
		t.Helper()
		resp, err := http.PostForm(tokenURL, url.Values{"grant_type": {"client_credentials"}, "client_id": {created.ClientID},
			"client_secret": {secret}, "scope": {"https://api.securitycenter.microsoft.com/.default"}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != status {
			t.Fatalf("token endpoint = %d %s, want %d", resp.StatusCode, body, status)
		}
		var b struct {
			AccessToken string `json:"access_token"`
			Error       string `json:"error"`
		}
		json.Unmarshal(body, &b)
		if status != http.StatusOK && (b.AccessToken != "" || b.Error != "invalid_client") {
			t.Errorf("refusal = %s, want invalid_client and no token", body)
		}
		return b.AccessToken
	}
	tok := grant(created.ClientSecret, http.StatusOK)
	claims := decodeClaims(t, tok)
	if claims["iss"] != disc["issuer"] || claims["iss"] != base+"/"+created.TenantID+"/v2.0" || claims["tid"] != created.TenantID || claims["appid"] != created.ClientID {
		t.Errorf("token claims = %v, want iss %v (the discovery issuer), tid and appid", claims, disc["issuer"])
	}
	if n := len(traverse(t, base, tok, 4)); n != 6 {
		t.Errorf("pages read with the app's token hold %d records, want 6", n)
	}
	// certinv token, which signs with the issuer's URN, still works.
	cli := strings.TrimSpace(mustRun(t, ctx, "token", "--data", data))
	getJSON(t, base+"/api/machines/CertificateAssessmentByMachine?$top=1", cli, http.StatusOK)

	out := mustRun(t, ctx, "app", "rotate", "--data", data, "--id", created.ClientID)
	newSecret := secretOf(t, out)
	grant(created.ClientSecret, http.StatusUnauthorized)
	tok = grant(newSecret, http.StatusOK)
	getJSON(t, base+"/api/machines/CertificateAssessmentByMachine?$top=1", tok, http.StatusOK)

	mustRun(t, ctx, "app", "delete", "--data", data, "--id", created.ClientID)
	grant(newSecret, http.StatusUnauthorized)
	if list := mustRun(t, ctx, "app", "list", "--data", data); strings.Contains(list, created.ClientID) {
		t.Errorf("app list after delete = %q, still names the app", list)
	}

	// Every action on the app is in the audit log, and no secret is.
	audit := mustRun(t, ctx, "audit", "--data", data)
	for _, action := range []string{"app.create", "app.rotate", "app.delete"} {
		if !strings.Contains(audit, action) || !strings.Contains(audit, created.ClientID) {
			t.Errorf("audit log lacks %s of %s:\n%s", action, created.ClientID, audit)
		}
	}
	if strings.Contains(audit, created.ClientSecret) || strings.Contains(audit, newSecret) {
		t.Errorf("audit log holds an app secret:\n%s", audit)
	}
}

func TestAppUsage(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	for _, args := range [][]string{
		{"app"},
		{"app", "frobnicate", "--data", data},
		{"app", "create", "--data", data, "--name", "x"},
		{"app", "create", "--data", data, "--role", "Vulnerability.Read.All"},
		{"app", "rotate", "--data", data},
		{"app", "list"},
	} {
		err := run(ctx, args, io.Discard, io.Discard)
		var u *usageError
		if !errors.As(err, &u) {
			t.Errorf("run(%q) = %v, want a usage error", args, err)
		}
	}
	if err := run(ctx, []string{"app", "delete", "--data", data, "--id", "00000000-0000-4000-8000-000000000000"}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "no application") {
		t.Errorf("app delete of an unknown id = %v, want not found", err)
	}
	if err := run(ctx, []string{"serve", "--data", data, "--addr", "127.0.0.1:0", "--trust-issuer", "discovery=http://idp.example/x,audience=a"}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "https") {
		t.Errorf("serve with an http trusted issuer = %v, want refused: https", err)
	}
}

func decodeClaims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not a JWT", tok)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// secretOf returns the client_secret line's value of app create's output.
func secretOf(t *testing.T, out string) string {
	t.Helper()
	for line := range strings.SplitSeq(out, "\n") {
		if v, ok := strings.CutPrefix(line, "client_secret:"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no client_secret in %q", out)
	return ""
}
