package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/certinv/certinv/snapshot"
)

func runSnapshot(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("snapshot", stderr)
	data := fs.String("data", envOr("CERTINV_DATA", ""), "data folder (env CERTINV_DATA)")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *data == "" {
		return &usageError{"snapshot: --data DIR is required"}
	}
	log, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}
	e, err := openEnv(ctx, *data, log)
	if err != nil {
		return err
	}
	defer e.Close()
	start := time.Now()
	s, err := e.builder().Build(ctx)
	if err != nil {
		return fmt.Errorf("build snapshot: %w", err)
	}
	fmt.Fprintf(stdout, "published snapshot %s (%s): %d records in %d files, in %s\n",
		s.ID, s.TimePath(), s.Records, s.Files, time.Since(start).Round(time.Millisecond))
	return nil
}

// builder returns the snapshot builder of the data folder.
func (e *env) builder() *snapshot.Builder {
	return &snapshot.Builder{
		Source:   e.db,
		Registry: e.db,
		Bucket:   e.bucket,
		OrgID:    e.orgID,
		Now:      time.Now,
		Log:      e.log,
	}
}
