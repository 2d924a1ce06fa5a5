package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestScanCommand runs `certinv scan` over the scan package's fixtures and
// a corrupt file, in each output format.
func TestScanCommand(t *testing.T) {
	dir := t.TempDir()
	pem, err := os.ReadFile("../../scan/testdata/formats/bundle.pem")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bundle.pem"), pem, 0o644); err != nil {
		t.Fatal(err)
	}
	broken := "-----BEGIN CERTIFICATE-----\nMIIBroken\n-----END CERTIFICATE-----\n"
	if err := os.WriteFile(filepath.Join(dir, "broken.crt"), []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	scanWith := func(format string) (string, string) {
		var out, errOut bytes.Buffer
		if err := run(ctx, []string{"scan", "--format", format, dir}, &out, &errOut); err != nil {
			t.Fatalf("certinv scan --format %s: %v\n%s", format, err, errOut.String())
		}
		return out.String(), errOut.String()
	}

	nd, warnings := scanWith("ndjson")
	if !strings.Contains(warnings, "broken.crt") {
		t.Errorf("stderr = %q, want a warning naming broken.crt", warnings)
	}
	lines := strings.Split(strings.TrimSpace(nd), "\n")
	if len(lines) < 2 {
		t.Fatalf("ndjson = %q, want a record per certificate of bundle.pem", nd)
	}
	for _, l := range lines {
		var r map[string]any
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("ndjson line %q: %v", l, err)
		}
		id, _ := r["deviceId"].(string)
		tp, _ := r["thumbprint"].(string)
		if len(id) != 40 || len(tp) != 40 || r["path"] != filepath.Join(dir, "bundle.pem") || r["rbacGroupName"] != "None" || r["signatureAlgorithm"] == "" {
			t.Errorf("record %s: want a 40-hex deviceId and thumbprint, the file's path, group None, a signature algorithm", l)
		}
	}

	js, _ := scanWith("json")
	var arr []map[string]any
	if err := json.Unmarshal([]byte(js), &arr); err != nil || len(arr) != len(lines) {
		t.Errorf("json = %d records, %v; want the %d of ndjson as one array", len(arr), err, len(lines))
	}

	table, summary := scanWith("table")
	if !strings.HasPrefix(table, "THUMBPRINT") || strings.Count(table, "\n") != len(lines)+1 {
		t.Errorf("table = %q, want a header and %d rows", table, len(lines))
	}
	if !strings.Contains(summary, "certificate(s), 1 warning(s)") {
		t.Errorf("table summary on stderr = %q, want the counts", summary)
	}

	var errOut bytes.Buffer
	err = run(ctx, []string{"scan", "--format", "xml", dir}, &bytes.Buffer{}, &errOut)
	if exitCode(err) != 2 {
		t.Errorf("certinv scan --format xml = %v (exit %d), want a usage error (exit 2)", err, exitCode(err))
	}
}
