package main

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/certinv/certinv"
	"github.com/certinv/certinv/agent"
	"github.com/certinv/certinv/certparse"
	"github.com/certinv/certinv/scan"
)

const scanUsage = `Usage: certinv scan [flags] [PATH ...]

Finds the certificates of this machine and prints them with the fields of the
export record. PATH is a file, folder or glob (on Windows also a store such as
LocalMachine\Root); with none, the system's default places are scanned.
Problems (unreadable files, corrupt certificates, wrong passwords) are
warnings on stderr: the exit status is 0 when the scan ran.

Flags:
`

// runScan is `certinv scan`: the collection of the agent, shown locally.
// The display parses every certificate with certparse (the server's parser,
// about 40 times the cost of finding it); the agent itself does not.
func runScan(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("scan", stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), scanUsage)
		fs.PrintDefaults()
	}
	format := fs.String("format", "table", "output format: table, json or ndjson")
	var opts scan.Options
	fs.Func("password", "a password to try on PKCS#12 files (repeatable; the empty password is always tried)", func(s string) error {
		opts.Passwords = append(opts.Passwords, s)
		return nil
	})
	fs.Func("exclude", "a pattern of paths not to read (repeatable; filepath.Match syntax)", func(s string) error {
		opts.Exclude = append(opts.Exclude, s)
		return nil
	})
	fs.Int64Var(&opts.MaxFileBytes, "max-file-size", scan.DefaultMaxFileBytes, "larger files are skipped with a warning (bytes)")
	fs.IntVar(&opts.MaxDepth, "max-depth", scan.DefaultMaxDepth, "how deep folders are walked")
	// Flags may come after the paths: parse until every argument is taken.
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return &usageError{err.Error()}
		}
		if fs.NArg() == 0 {
			break
		}
		opts.Paths = append(opts.Paths, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	switch *format {
	case "table", "json", "ndjson":
	default:
		return &usageError{fmt.Sprintf("scan: --format %q: want table, json or ndjson", *format)}
	}
	if opts.MaxFileBytes <= 0 {
		return &usageError{"scan: --max-file-size must be positive"}
	}
	if opts.MaxDepth <= 0 {
		return &usageError{"scan: --max-depth must be positive"}
	}

	deviceName := agent.FQDN(ctx)
	deviceID := hostID(deviceName)
	out := bufio.NewWriter(stdout)
	var tw *tabwriter.Writer
	if *format == "table" {
		tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "THUMBPRINT\tEXPIRES\tTYPE\tKEY\tSIGNATURE\tSUBJECT\tPATH")
	}
	var line []byte
	count, warnings := 0, 0
	warn := func(w scan.Warning) {
		warnings++
		fmt.Fprintf(stderr, "warning: %s: %v\n", w.Path, w.Err)
	}
	found := func(f scan.Found) error {
		c, err := certparse.Parse(f.DER)
		if err != nil {
			warn(scan.Warning{Path: f.Path, Err: fmt.Errorf("certificate %X: %w", sha1.Sum(f.DER), err)})
			return nil
		}
		count++
		switch *format {
		case "table":
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", c.Thumbprint, c.NotAfter.Format(time.DateOnly),
				subjectType(c.SubjectType), c.KeySize, c.SignatureAlgorithm, clip(subjectColumn(c), 48), f.Path)
		case "json", "ndjson":
			r := certinv.Record{DeviceID: deviceID, DeviceName: deviceName, Path: f.Path, Certificate: c,
				RBACGroupID: certinv.NoGroupID, RBACGroupName: certinv.GroupNone}
			line = line[:0]
			if *format == "json" {
				if count == 1 {
					line = append(line, "[\n"...)
				} else {
					line = append(line, ",\n"...)
				}
			}
			line = r.AppendJSON(line)
			if *format == "ndjson" {
				line = append(line, '\n')
			}
			if _, err := out.Write(line); err != nil {
				return err
			}
		}
		return nil
	}
	err := scan.Scan(ctx, opts, found, warn)
	if err != nil {
		return fmt.Errorf("scan: %w", err)
	}
	switch *format {
	case "table":
		if err := tw.Flush(); err != nil {
			return err
		}
	case "json":
		if count == 0 {
			out.WriteString("[")
		}
		out.WriteString("\n]\n")
	}
	if err := out.Flush(); err != nil {
		return fmt.Errorf("scan: write: %w", err)
	}
	if *format == "table" {
		fmt.Fprintf(stderr, "%d certificate(s), %d warning(s)\n", count, warnings)
	}
	return nil
}

func subjectType(t string) string {
	if t == certinv.SubjectCA {
		return "CA"
	}
	return "EE"
}

func subjectColumn(c *certinv.Certificate) string {
	if c.Subject.CommonName != "" {
		return c.Subject.CommonName
	}
	return c.IssuedTo
}

// clip shortens s to n runes for a table column.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// hostID returns the id this host's records are shown under: the agent's
// (kept in its state folder, or derived from the machine's id as the agent
// derives it), else the SHA-1 of the host's name.
func hostID(name string) string {
	if id := agent.PeekDeviceID(agent.DefaultStateDir()); id != "" {
		return id
	}
	sum := sha1.Sum([]byte(name))
	return hex.EncodeToString(sum[:])
}
