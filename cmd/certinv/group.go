package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
)

func runGroup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return &usageError{"group: want a subcommand: list, set --device ID --group NAME, grant|revoke|grants --user OID|UPN, or rule add|list|delete (see 'certinv help')"}
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "grant", "revoke", "grants", "rule":
		return runGroupAccess(ctx, sub, args, stdout, stderr) // admin.go
	}
	fs := newFlagSet("group "+sub, stderr)
	var so storeOptions
	so.register(fs)
	var device, group *string
	switch sub {
	case "list":
	case "set":
		device = fs.String("device", "", "device id (40 hex characters)")
		group = fs.String("group", "", "group name, created if needed; rules do not move the device from it. Empty: rules place the device again")
	default:
		return &usageError{fmt.Sprintf("group: unknown subcommand %q: want list, set, grant, revoke, grants or rule", sub)}
	}
	e, err := openStore(ctx, fs, &so, args, stderr)
	if err != nil {
		return err
	}
	defer e.Close()
	if sub == "set" {
		if *device == "" {
			return &usageError{"group set: --device is required"}
		}
		// Pinned, so that rules do not move it; audited.
		if err := e.store.PinDeviceGroup(ctx, cliActor(), *device, *group); err != nil {
			return err
		}
		if *group == "" {
			fmt.Fprintf(stdout, "device %s is placed by the group rules now (no group when none matches); it takes effect from the next snapshot\n", *device)
		} else {
			fmt.Fprintf(stdout, "device %s is in group %q now; it takes effect from the next snapshot\n", *device, *group)
		}
		return nil
	}
	groups, err := e.store.Groups(ctx)
	if err != nil {
		return err
	}
	if len(groups) == 0 {
		fmt.Fprintln(stdout, "no groups: every device is exported in group None")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME")
	for _, g := range groups {
		fmt.Fprintf(tw, "%d\t%s\n", g.ID, g.Name)
	}
	return tw.Flush()
}

func runStats(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("stats", stderr)
	var so storeOptions
	so.register(fs)
	e, err := openStore(ctx, fs, &so, args, stderr)
	if err != nil {
		return err
	}
	defer e.Close()
	devs, certs, links, err := e.store.Stats(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "organization %s\ndevices %d\ncertificates %d (distinct)\nrecords %d\n", e.orgID, devs, certs, links)
	if s, err := e.store.LatestSnapshot(ctx); err == nil {
		fmt.Fprintf(stdout, "latest snapshot %s generated %s: %d records in %d files\n", s.ID, s.GeneratedAt.Format("2006-01-02T15:04:05Z"), s.Records, s.Files)
	} else {
		fmt.Fprintln(stdout, "no snapshot yet")
	}
	return nil
}
