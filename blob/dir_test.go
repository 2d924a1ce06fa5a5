package blob_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certinv/certinv/blob"
	"github.com/certinv/certinv/blob/blobtest"
)

func newDir(t *testing.T) *blob.Dir {
	t.Helper()
	d, err := blob.NewDir(filepath.Join(t.TempDir(), "bucket"))
	if err != nil {
		t.Fatalf("NewDir() = %v", err)
	}
	return d
}

func TestDirContract(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blob.Bucket { return newDir(t) })
}

func TestValidateKey(t *testing.T) {
	tests := []struct {
		key string
		ok  bool
	}{
		{"c/o", true},
		{"export-1/2026-12-03/1500/CertificateAssessmentExport/json/OrgId=a/_RbacGroupId=0/part-00000-a.c000.json.gz", true},
		{"c/with space/é", true},
		{"c/dots.in.name..", true},
		{"", false},
		{"/c/o", false},
		{"c/o/", false},
		{"c//o", false},
		{"c/../o", false},
		{"..", false},
		{"c/.", false},
		{"c/.hidden", false},
		{"c/.put-123", false},
		{`c\o`, false},
		{"c/o\x00", false},
	}
	for _, tt := range tests {
		err := blob.ValidateKey(tt.key)
		if (err == nil) != tt.ok {
			t.Errorf("ValidateKey(%q) = %v, want ok=%v", tt.key, err, tt.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "invalid blob key") {
			t.Errorf("ValidateKey(%q) = %q, want a message that names an invalid blob key", tt.key, err)
		}
	}
}

func TestDirPutNeedsContainer(t *testing.T) {
	d := newDir(t)
	if err := d.Put(context.Background(), "lonely", bytes.NewReader(nil)); err == nil {
		t.Errorf("Put(%q) = nil, want an error: a key names a container and an object", "lonely")
	}
}

// A crash during Put leaves a temporary file: readers do not see it, it is not
// a container, and RemoveTemp deletes it once old enough.
func TestDirStaleTemp(t *testing.T) {
	ctx := context.Background()
	d := newDir(t)
	if err := d.Put(ctx, "c/obj", bytes.NewReader([]byte("data"))); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(d.Root(), "c", ".put-12345")
	if err := os.WriteFile(stale, []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	fresh := filepath.Join(d.Root(), "c", ".put-67890")
	if err := os.WriteFile(fresh, []byte("running"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d.Root(), ".put-root"), nil, 0o600); err != nil {
		t.Fatal(err)
	}

	if _, err := d.Open(ctx, "c/.put-12345", 0, -1); err == nil {
		t.Errorf("Open(%q) = nil error, want the temporary file refused", "c/.put-12345")
	}
	names, err := d.Containers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(names, []string{"c"}) {
		t.Errorf("Containers() = %q, want [c]", names)
	}

	n, err := d.RemoveTemp(ctx, time.Now().Add(-time.Hour))
	if err != nil || n != 1 {
		t.Errorf("RemoveTemp(an hour ago) = %d, %v, want 1, nil", n, err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stale temporary file after RemoveTemp: %v, want removed", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("fresh temporary file after RemoveTemp: %v, want kept", err)
	}
	rc, err := d.Open(ctx, "c/obj", 0, -1)
	if err != nil {
		t.Fatalf("Open(%q) after RemoveTemp = %v", "c/obj", err)
	}
	rc.Close()
}

// A successful Put leaves no temporary file behind, and neither does a failed one.
func TestDirPutLeavesNoTemp(t *testing.T) {
	ctx := context.Background()
	d := newDir(t)
	if err := d.Put(ctx, "c/ok", bytes.NewReader([]byte("x"))); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_ = d.Put(cctx, "c/cancelled", bytes.NewReader([]byte("x")))
	entries, err := os.ReadDir(filepath.Join(d.Root(), "c"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"ok"}) {
		t.Errorf("files in the container = %q, want [ok]", names)
	}
}

func TestDirOpenPastEnd(t *testing.T) {
	d := newDir(t)
	if err := d.Put(context.Background(), "c/o", bytes.NewReader([]byte("abc"))); err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{-1, 4} {
		if _, err := d.Open(context.Background(), "c/o", off, -1); err == nil {
			t.Errorf("Open(%q, %d, -1) = nil error, want an offset error", "c/o", off)
		}
	}
}
