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
	var so storeOptions
	so.register(fs)
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := so.check("snapshot", needs{bucket: true}); err != nil {
		return err
	}
	log, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}
	e, err := openEnv(ctx, &so, needs{bucket: true}, log)
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

// builder returns the snapshot builder of the store and bucket.
func (e *env) builder() *snapshot.Builder {
	return &snapshot.Builder{
		Source:   e.store,
		Registry: e.store,
		Bucket:   e.bucket,
		OrgID:    e.orgID,
		Now:      time.Now,
		Log:      e.log,
	}
}
