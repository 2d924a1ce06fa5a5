package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/certinv/certinv"
	"github.com/certinv/certinv/auth"
	"github.com/certinv/certinv/httpapi"
)

// runApp manages the applications registered with the embedded issuer:
// create, list, rotate, delete.
func runApp(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const want = "app: want 'app create --name NAME --role ROLE', 'app list', 'app rotate --id ID' or 'app delete --id ID' (each with --data DIR)"
	if len(args) == 0 {
		return &usageError{want}
	}
	sub, args := args[0], args[1:]
	fs := newFlagSet("app "+sub, stderr)
	var so storeOptions
	so.register(fs)
	asJSON := fs.Bool("json", false, "print JSON instead of text")
	var (
		name  *string
		roles stringList
		id    *string
	)
	switch sub {
	case "create":
		name = fs.String("name", "", "what to call the application (required)")
		fs.Var(&roles, "role", "application permission of its tokens (repeatable; required), such as "+certinv.RoleVulnerabilityReadAll)
	case "list":
	case "rotate", "delete":
		id = fs.String("id", "", "the application's client id (required)")
	default:
		return &usageError{fmt.Sprintf("app: unknown subcommand %q; %s", sub, want)}
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := so.check("app", needs{}); err != nil {
		return err
	}
	switch {
	case sub == "create" && (strings.TrimSpace(*name) == "" || len(roles) == 0):
		return &usageError{"app create: --name and at least one --role are required, such as --role " + certinv.RoleVulnerabilityReadAll}
	case id != nil && *id == "":
		return &usageError{"app " + sub + ": --id is required"}
	}
	log, _ := newLogger(stderr, "warn")
	e, err := openEnv(ctx, &so, needs{}, log)
	if err != nil {
		return err
	}
	defer e.Close()
	apps := &auth.Apps{Store: e.store}

	switch sub {
	case "create", "rotate":
		var (
			app    *certinv.App
			secret string
		)
		if sub == "create" {
			app, secret, err = apps.Create(ctx, *name, roles)
		} else {
			app, secret, err = apps.Rotate(ctx, *id)
		}
		if err != nil {
			return err
		}
		if err := auditApp(ctx, e, "app."+sub, app.ID, map[string]any{"name": app.Name, "roles": app.Roles}); err != nil {
			return err
		}
		return printSecret(stdout, e, app, secret, sub == "rotate", *asJSON)
	case "delete":
		if err := apps.Delete(ctx, *id); err != nil {
			return err
		}
		if err := auditApp(ctx, e, "app.delete", strings.ToLower(*id), nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "application %s is deleted: it can get no token, and its tokens stop working within %v\n", strings.ToLower(*id), auth.DefaultCredentialCacheTTL)
		return nil
	}
	list, err := apps.List(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		out := make([]appJSON, 0, len(list))
		for _, a := range list {
			out = append(out, toAppJSON(a))
		}
		return writeIndented(stdout, out)
	}
	if len(list) == 0 {
		fmt.Fprintln(stdout, "no applications; register one with 'certinv app create --name NAME --role "+certinv.RoleVulnerabilityReadAll+"'")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLIENT ID\tNAME\tROLES\tCREATED\tSECRET CREATED")
	for _, a := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", a.ID, a.Name, strings.Join(a.Roles, ","),
			a.CreatedAt.Format(time.RFC3339), a.SecretCreatedAt.Format(time.RFC3339))
	}
	return tw.Flush()
}

// auditApp records an action on an application in the audit log (never
// its secret). The action is done when this runs: a failure to record it is
// reported, so that the operator knows the log misses it.
func auditApp(ctx context.Context, e *env, action, id string, details map[string]any) error {
	d := "{}"
	if details != nil {
		b, err := json.Marshal(details)
		if err != nil {
			return err
		}
		d = string(b)
	}
	if err := e.store.AppendAudit(ctx, certinv.AuditEntry{Actor: cliActor(), Action: action, Target: id, Details: d}); err != nil {
		return fmt.Errorf("%s of %s is done, but the audit log could not record it: %w", action, id, err)
	}
	return nil
}

// appJSON is an application as `app list --json` and `app create --json`
// print it: never the secret's digest.
type appJSON struct {
	ClientID        string    `json:"clientId"`
	Name            string    `json:"name"`
	Roles           []string  `json:"roles"`
	CreatedAt       time.Time `json:"createdAt"`
	SecretCreatedAt time.Time `json:"secretCreatedAt"`
	TenantID        string    `json:"tenantId,omitempty"`
	ClientSecret    string    `json:"clientSecret,omitempty"`
}

func toAppJSON(a *certinv.App) appJSON {
	return appJSON{ClientID: a.ID, Name: a.Name, Roles: a.Roles, CreatedAt: a.CreatedAt, SecretCreatedAt: a.SecretCreatedAt}
}

func writeIndented(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// printSecret shows an application's new secret: the only time it is shown.
func printSecret(w io.Writer, e *env, app *certinv.App, secret string, rotated, asJSON bool) error {
	if asJSON {
		out := toAppJSON(app)
		out.TenantID, out.ClientSecret = e.orgID, secret
		return writeIndented(w, out)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	fmt.Fprintf(tw, "client_id:\t%s\n", app.ID)
	fmt.Fprintf(tw, "client_secret:\t%s\n", secret)
	fmt.Fprintf(tw, "tenant_id:\t%s\n", e.orgID)
	fmt.Fprintf(tw, "roles:\t%s\n", strings.Join(app.Roles, ", "))
	if err := tw.Flush(); err != nil {
		return err
	}
	what := "The secret is shown only now: store it."
	if rotated {
		what += " The previous secret no longer works, nor do the tokens got with it."
	}
	_, err := fmt.Fprintf(w, "%s\nGet a token: POST <public URL>/%s/oauth2/v2.0/token with grant_type=client_credentials,\nclient_id, client_secret and scope=%s/.default\n", what, e.orgID, auth.AudienceDefender)
	return err
}

// specList is a repeatable flag whose every value is one item, commas
// and all (a --trust-issuer spec is a comma-separated list itself).
type specList []string

func (l *specList) String() string { return strings.Join(*l, " ") }

func (l *specList) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// embeddedAuth is the identity side of `certinv serve`: the embedded
// issuer, its registered applications, the trusted identity providers and
// the Verifier of them all.
type embeddedAuth struct {
	issuer   *auth.Issuer
	apps     *auth.Apps
	verifier *auth.Verifier
	tokens   *httpapi.TokenConfig
}

// issuerURL is the iss of the tokens the server's token endpoint issues:
// under the public URL, in the vendor's form (https://login.microsoftonline.com/<tenant>/v2.0),
// so that clients that check the discovery document's issuer against the
// authority accept it. `certinv token`, which runs without the server,
// signs with issuerName (the URN), which the server still accepts.
func issuerURL(publicURL, orgID string) string { return publicURL + "/" + orgID + "/v2.0" }

// newEmbeddedAuth builds the embedded issuer, the apps and the trusted
// issuers of o. A trusted issuer configured with discovery and no issuer is
// resolved now (an unreachable one stops the start); the keys of the others
// are fetched now too, but a failure there is only logged: they are fetched
// again on the first token.
func newEmbeddedAuth(ctx context.Context, e *env, o *serveOptions, publicURL string, log *slog.Logger) (*embeddedAuth, error) {
	key, err := auth.LoadOrCreateKey(e.keys.TokenKeyPath())
	if err != nil {
		return nil, fmt.Errorf("token signing key: %w", err)
	}
	issuer, err := auth.NewIssuer(auth.IssuerConfig{
		Key: key, Issuer: issuerURL(publicURL, e.orgID), Aliases: []string{issuerName(e.orgID)}, TenantID: e.orgID,
	})
	if err != nil {
		return nil, err
	}
	apps := &auth.Apps{Store: e.store, Issuer: issuer}
	v := &auth.Verifier{Keys: issuer, Issuers: issuer.Issuers(), Credentials: apps, Cache: auth.NewTokenCache(0)}

	configs := make([]auth.TrustConfig, 0, len(o.trustIssuers))
	for _, spec := range o.trustIssuers {
		c, err := auth.ParseTrust(spec)
		if err != nil {
			return nil, &usageError{"--trust-issuer: " + err.Error()}
		}
		configs = append(configs, c)
	}
	if o.trustConfig != "" {
		cs, err := auth.ReadTrustFile(o.trustConfig)
		if err != nil {
			return nil, err
		}
		configs = append(configs, cs...)
	}
	for _, c := range configs {
		trust, keys, err := auth.NewTrust(ctx, c, auth.RemoteOptions{Log: log})
		if err != nil {
			return nil, err
		}
		if err := keys.Refresh(ctx); err != nil {
			log.Warn("trusted issuer's keys not fetched at start; they are fetched on its first token", "issuers", trust.Issuers, "err", err)
		}
		log.Info("trusting identity provider", "issuers", trust.Issuers, "audiences", trust.Audiences)
		v.Trusted = append(v.Trusted, trust)
	}
	return &embeddedAuth{
		issuer:   issuer,
		apps:     apps,
		verifier: v,
		tokens:   &httpapi.TokenConfig{Grants: apps, Issuer: issuer.IssuerURL(), TenantID: e.orgID},
	}, nil
}
