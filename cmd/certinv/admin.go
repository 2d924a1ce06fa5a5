package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/user"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/certinv/certinv"
	"github.com/certinv/certinv/httpapi"
	"github.com/certinv/certinv/ratelimit"
)

// accessOptions are the settings of serve that limit callers and devices.
type accessOptions struct {
	pagesPerMinute, pagesPerHour   int
	exportPerMinute, exportPerHour int
	requireDeviceCredentials       bool

	pages, export limitSpec // made by check
}

// limitSpec is one endpoint's limit: its windows (none: no limit) and the
// limit in words.
type limitSpec struct {
	rates    []ratelimit.Rate
	describe string
}

func (o *accessOptions) register(fs interface {
	IntVar(*int, string, int, string)
	BoolVar(*bool, string, bool, string)
}) {
	fs.IntVar(&o.pagesPerMinute, "pages-per-minute", httpapi.DefaultPagesPerMinute, "JSON page calls allowed per application and tenant in any minute (0: no limit)")
	fs.IntVar(&o.pagesPerHour, "pages-per-hour", httpapi.DefaultPagesPerHour, "JSON page calls allowed per application and tenant in any hour (0: no limit)")
	fs.IntVar(&o.exportPerMinute, "export-per-minute", httpapi.DefaultExportPerMinute, "export calls allowed per application and tenant in any minute (0: no limit)")
	fs.IntVar(&o.exportPerHour, "export-per-hour", httpapi.DefaultExportPerHour, "export calls allowed per application and tenant in any hour (0: no limit)")
	fs.BoolVar(&o.requireDeviceCredentials, "require-device-credentials", false, "refuse reports made with the bare enrollment secret: every agent must enroll (POST /api/agent/enroll) first")
}

// check validates the limits.
func (o *accessOptions) check(cmd string) error {
	var err error
	if o.pages, err = rateLimit(cmd, "pages", o.pagesPerMinute, o.pagesPerHour); err != nil {
		return err
	}
	o.export, err = rateLimit(cmd, "export", o.exportPerMinute, o.exportPerHour)
	return err
}

// rateLimit returns the limit of perMinute and perHour calls (0 is no limit
// on that window; both 0, no rates).
func rateLimit(cmd, name string, perMinute, perHour int) (limitSpec, error) {
	if perMinute < 0 || perHour < 0 {
		return limitSpec{}, &usageError{fmt.Sprintf("%s: --%s-per-minute and --%s-per-hour must be 0 (no limit) or more", cmd, name, name)}
	}
	var l limitSpec
	var words []string
	if perMinute > 0 {
		l.rates = append(l.rates, ratelimit.Rate{Limit: perMinute, Period: time.Minute})
		words = append(words, fmt.Sprintf("%d calls a minute", perMinute))
	}
	if perHour > 0 {
		l.rates = append(l.rates, ratelimit.Rate{Limit: perHour, Period: time.Hour})
		words = append(words, fmt.Sprintf("%d calls an hour", perHour))
	}
	if len(l.rates) > 0 {
		if err := ratelimit.CheckRates(l.rates); err != nil {
			return limitSpec{}, &usageError{fmt.Sprintf("%s: %v", cmd, err)}
		}
	}
	l.describe = strings.Join(words, " and ")
	return l, nil
}

// limiterFunc makes the limiter of a set of windows: in memory, or in Redis.
type limiterFunc func(rates ...ratelimit.Rate) (ratelimit.Limiter, error)

func memoryLimiter(rates ...ratelimit.Rate) (ratelimit.Limiter, error) {
	return ratelimit.NewMemory(rates...)
}

// limit returns the httpapi limit of l, counted by newLimiter; nil when l
// has no windows.
func (l limitSpec) limit(newLimiter limiterFunc, failOpen bool) (*httpapi.RateLimit, error) {
	if len(l.rates) == 0 {
		return nil, nil
	}
	lim, err := newLimiter(l.rates...)
	if err != nil {
		return nil, err
	}
	return &httpapi.RateLimit{Limiter: lim, Describe: l.describe, FailOpen: failOpen}, nil
}

// cliActor names the person running a command in the audit log.
func cliActor() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return "cli:" + u.Username
	}
	return "cli"
}

// runGroupAccess runs `certinv group grant|revoke|grants|rule ...`.
func runGroupAccess(ctx context.Context, sub string, args []string, stdout, stderr io.Writer) error {
	if sub == "rule" {
		return runGroupRule(ctx, args, stdout, stderr)
	}
	fs := newFlagSet("group "+sub, stderr)
	var so storeOptions
	so.register(fs)
	who := fs.String("user", "", "the user: object id (oid) or user principal name (upn)")
	group := fs.String("group", "", `group name ("Unassigned": the devices of no group)`)
	e, err := openStore(ctx, fs, &so, args, stderr)
	if err != nil {
		return err
	}
	defer e.Close()
	switch sub {
	case "grant", "revoke":
		if *who == "" || *group == "" {
			return &usageError{fmt.Sprintf("group %s: --user and --group are required", sub)}
		}
		if sub == "grant" {
			err = e.store.GrantUserGroup(ctx, cliActor(), *who, *group)
		} else {
			err = e.store.RevokeUserGroup(ctx, cliActor(), *who, *group)
		}
		if err != nil {
			return err
		}
		verb := "may now read"
		if sub == "revoke" {
			verb = "may no longer read"
		}
		fmt.Fprintf(stdout, "%s %s the devices of group %q (from their next request)\n", *who, verb, *group)
		return nil
	}
	grants, err := e.store.UserGrants(ctx, *who)
	if err != nil {
		return err
	}
	if len(grants) == 0 {
		fmt.Fprintln(stdout, "no grants: delegated users see no devices")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "USER\tGROUP ID\tGROUP\tGRANTED")
	for _, g := range grants {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", g.User, g.GroupID, g.GroupName, g.GrantedAt.Format(certinv.TimeFormat))
	}
	return tw.Flush()
}

// runGroupRule runs `certinv group rule add|list|delete`.
func runGroupRule(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return &usageError{"group rule: want add, list or delete"}
	}
	sub, args := args[0], args[1:]
	fs := newFlagSet("group rule "+sub, stderr)
	var so storeOptions
	so.register(fs)
	var r certinv.GroupRule
	var id *int64
	switch sub {
	case "add":
		fs.StringVar(&r.GroupName, "group", "", "the group devices go to (created if needed)")
		fs.IntVar(&r.Priority, "priority", 100, "rules are tried by ascending priority; the first that matches places the device")
		fs.StringVar(&r.NameGlob, "name", "", "device name glob (* and ?; case-insensitive), e.g. 'web*.corp.example.com'")
		fs.StringVar(&r.DomainSuffix, "domain", "", "domain suffix, e.g. corp.example.com")
		fs.StringVar(&r.OSGlob, "os", "", "OS glob, e.g. 'Windows Server*'")
		fs.StringVar(&r.Tag, "tag", "", "device tag (exact; set with certinv device tag)")
	case "delete":
		id = fs.Int64("id", 0, "the rule's id (certinv group rule list)")
	case "list":
	default:
		return &usageError{fmt.Sprintf("group rule: unknown subcommand %q: want add, list or delete", sub)}
	}
	e, err := openStore(ctx, fs, &so, args, stderr)
	if err != nil {
		return err
	}
	defer e.Close()
	switch sub {
	case "add":
		got, err := e.store.AddGroupRule(ctx, cliActor(), r)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "rule %d places matching devices in group %q; it applies from the next snapshot\n", got.ID, got.GroupName)
		return nil
	case "delete":
		if *id <= 0 {
			return &usageError{"group rule delete: --id is required"}
		}
		if err := e.store.DeleteGroupRule(ctx, cliActor(), *id); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "rule %d deleted; devices are placed anew from the next snapshot\n", *id)
		return nil
	}
	rules, err := e.store.GroupRules(ctx)
	if err != nil {
		return err
	}
	if len(rules) == 0 {
		fmt.Fprintln(stdout, "no rules: devices are in the group their report or an administrator gave them")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPRIORITY\tGROUP\tNAME\tDOMAIN\tOS\tTAG")
	for _, r := range rules {
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Priority, r.GroupName, dash(r.NameGlob), dash(r.DomainSuffix), dash(r.OSGlob), dash(r.Tag))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// runDevice runs `certinv device tag|revoke|reset|show`.
func runDevice(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return &usageError{"device: want tag, revoke, reset or show"}
	}
	sub, args := args[0], args[1:]
	fs := newFlagSet("device "+sub, stderr)
	var so storeOptions
	so.register(fs)
	id := fs.String("id", "", "device id (40 lowercase hex characters)")
	var tags stringList
	clearTags := new(bool)
	switch sub {
	case "tag":
		fs.Var(&tags, "tag", "a tag (repeatable, or comma-separated); replaces the device's tags")
		clearTags = fs.Bool("clear", false, "remove every tag")
	case "revoke", "reset", "show":
	default:
		return &usageError{fmt.Sprintf("device: unknown subcommand %q: want tag, revoke, reset or show", sub)}
	}
	e, err := openStore(ctx, fs, &so, args, stderr)
	if err != nil {
		return err
	}
	defer e.Close()
	if *id == "" {
		return &usageError{"device " + sub + ": --id is required"}
	}
	actor := cliActor()
	switch sub {
	case "tag":
		if len(tags) == 0 && !*clearTags {
			return &usageError{"device tag: give --tag T (repeatable) or --clear"}
		}
		err = e.store.SetDeviceTags(ctx, actor, *id, tags)
	case "revoke":
		err = e.store.RevokeDevice(ctx, actor, *id)
	case "reset":
		err = e.store.ResetDevice(ctx, actor, *id)
	}
	if err != nil {
		return err
	}
	a, err := e.store.DeviceAccess(ctx, *id)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "device\t%s\n", a.DeviceID)
	if a.Known {
		fmt.Fprintf(tw, "name\t%s\nos\t%s\n", a.Name, a.OS)
	} else {
		fmt.Fprintf(tw, "name\t(has not reported)\n")
	}
	fmt.Fprintf(tw, "group\t%s\n", a.Group)
	if a.PinnedGroup != "" {
		fmt.Fprintf(tw, "pinned group\t%s (rules do not move it)\n", a.PinnedGroup)
	}
	fmt.Fprintf(tw, "tags\t%s\n", dash(strings.Join(a.Tags, ", ")))
	switch c := a.Credential; {
	case c == nil:
		fmt.Fprintf(tw, "credential\tnone (reports with the enrollment secret, unless serve --require-device-credentials)\n")
	case c.Revoked():
		fmt.Fprintf(tw, "credential\trevoked at %s: reports refused (certinv device reset lets it enroll again)\n", c.RevokedAt.Format(certinv.TimeFormat))
	default:
		fmt.Fprintf(tw, "credential\tenrolled at %s\n", c.EnrolledAt.Format(certinv.TimeFormat))
	}
	return tw.Flush()
}

// runAudit runs `certinv audit`: the audit log, oldest first.
func runAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("audit", stderr)
	var so storeOptions
	so.register(fs)
	after := fs.Int64("after", 0, "show entries after this id")
	limit := fs.Int("limit", 1000, "at most this many entries")
	asJSON := fs.Bool("json", false, "one JSON object per line")
	e, err := openStore(ctx, fs, &so, args, stderr)
	if err != nil {
		return err
	}
	defer e.Close()
	es, err := e.store.AuditEntries(ctx, *after, *limit)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		for _, a := range es {
			if err := enc.Encode(map[string]any{"id": a.ID, "time": a.Time.Format(time.RFC3339Nano), "actor": a.Actor,
				"action": a.Action, "target": a.Target, "details": json.RawMessage(a.Details)}); err != nil {
				return err
			}
		}
		return nil
	}
	if len(es) == 0 {
		fmt.Fprintln(stdout, "no audit entries")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTIME\tACTOR\tACTION\tTARGET\tDETAILS")
	for _, a := range es {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", strconv.FormatInt(a.ID, 10), a.Time.Format(time.RFC3339), a.Actor, a.Action, a.Target, a.Details)
	}
	return tw.Flush()
}
