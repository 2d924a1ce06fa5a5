package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"text/tabwriter"

	"github.com/certinv/certinv/auth"
)

// runKeys runs `certinv keys --keys DIR`: it makes the keys that every
// replica must share, those missing, and lists the folder's files (never
// their contents), so that they can be stored as one secret and mounted on
// every replica.
func runKeys(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("keys", stderr)
	dir := fs.String("keys", envOr("CERTINV_KEYS", ""), "the folder to make the keys in (env CERTINV_KEYS)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *dir == "" {
		return &usageError{"keys: --keys DIR is required"}
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	k := keyDir(*dir)
	before := map[string]bool{}
	for _, name := range []string{keyFileToken, keyFileSkiptoken, keyFileURL, keyFileEnrollment} {
		before[name] = exists(k.path(name))
	}
	if _, err := auth.LoadOrCreateKey(k.TokenKeyPath()); err != nil {
		return fmt.Errorf("token signing key: %w", err)
	}
	if _, err := k.SkiptokenKey(); err != nil {
		return err
	}
	if _, err := k.URLSigningKey(); err != nil {
		return err
	}
	if _, err := k.EnrollmentSecret(); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FILE\tSTATE\tUSE")
	for _, f := range []struct{ name, use string }{
		{keyFileToken, "signs the embedded issuer's tokens"},
		{keyFileSkiptoken, "signs the $skiptoken of nextLinks"},
		{keyFileURL, "signs download URLs of local files (not used with --blob)"},
		{keyFileEnrollment, "the agents' enrollment secret"},
	} {
		state := "kept"
		if !before[f.name] {
			state = "made"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", k.path(f.name), state, f.use)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(stdout, "\nEvery replica must read these same files: store the folder as one secret and mount it with --keys (see docs/DEPLOY.md).")
	return err
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, fs.ErrNotExist)
}
