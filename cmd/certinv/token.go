package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/certinv/certinv/auth"
)

// stringList is a repeatable flag that also takes comma-separated values.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

func runToken(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("token", stderr)
	var so storeOptions
	so.register(fs)
	var roles, scopes stringList
	fs.Var(&roles, "role", "application permission for the roles claim (repeatable); Vulnerability.Read.All reads the export API")
	fs.Var(&scopes, "scope", "delegated permission for the scp claim (repeatable): makes a user token; Vulnerability.Read reads the export API")
	appID := fs.String("app-id", "certinv-cli", "application id (appid and azp claims)")
	oid := fs.String("oid", "", "object id of the user (delegated tokens) or of the application")
	upn := fs.String("upn", "", "user principal name of a delegated token")
	audience := fs.String("audience", auth.AudienceDefender, "aud claim")
	ttl := fs.Duration("ttl", auth.DefaultTokenLifetime, "how long the token is valid (at most 24h)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := so.check("token", needs{keys: true}); err != nil {
		return err
	}
	if len(roles) == 0 && len(scopes) == 0 {
		roles = stringList{"Vulnerability.Read.All"}
	}
	if *ttl <= 0 || *ttl > 24*time.Hour {
		return &usageError{fmt.Sprintf("token: --ttl %v: want more than 0 and at most 24h", *ttl)}
	}
	log, _ := newLogger(stderr, "warn")
	e, err := openEnv(ctx, &so, needs{keys: true}, log)
	if err != nil {
		return err
	}
	defer e.Close()
	iss, err := e.issuer()
	if err != nil {
		return err
	}
	tok, err := iss.Issue(auth.Claims{
		Audience: *audience,
		AppID:    *appID,
		ObjectID: *oid,
		UPN:      *upn,
		Roles:    roles,
		Scopes:   scopes,
		Lifetime: *ttl,
	})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, tok)
	return err
}
