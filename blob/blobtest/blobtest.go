// Package blobtest is the contract test suite of blob.Bucket: every
// implementation (a local folder, Azure Blob Storage) runs Run in its tests,
// as file systems run testing/fstest.TestFS.
package blobtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"testing"

	"github.com/certinv/certinv/blob"
)

// Run runs the contract suite against buckets made by open. Each call of open
// returns a bucket for one subtest; buckets may share storage (the suite uses
// fresh container names), but must not hold containers the suite deletes.
func Run(t *testing.T, open func(t *testing.T) blob.Bucket) {
	t.Run("PutOpen", func(t *testing.T) { testPutOpen(t, open(t)) })
	t.Run("RangedOpen", func(t *testing.T) { testRangedOpen(t, open(t)) })
	t.Run("Missing", func(t *testing.T) { testMissing(t, open(t)) })
	t.Run("PutInvisibleUntilDone", func(t *testing.T) { testPutInvisibleUntilDone(t, open(t)) })
	t.Run("FailedPutLeavesNothing", func(t *testing.T) { testFailedPut(t, open(t)) })
	t.Run("CancelledPutLeavesNothing", func(t *testing.T) { testCancelledPut(t, open(t)) })
	t.Run("InvalidKeys", func(t *testing.T) { testInvalidKeys(t, open(t)) })
	t.Run("Containers", func(t *testing.T) { testContainers(t, open(t)) })
}

// container returns a fresh container name that every backend accepts
// (Azure: 3 to 63 lowercase letters, digits and hyphens).
func container(t *testing.T) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "blobtest-" + hex.EncodeToString(b[:])
}

// payload returns n bytes that differ at every offset modulo 251, so that a
// read at a wrong offset cannot return the right bytes.
func payload(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i % 251)
	}
	return p
}

func put(t *testing.T, b blob.Bucket, key string, data []byte) {
	t.Helper()
	if err := b.Put(context.Background(), key, bytes.NewReader(data)); err != nil {
		t.Fatalf("Put(%q) = %v, want nil", key, err)
	}
}

func read(t *testing.T, b blob.Bucket, key string, off, n int64) []byte {
	t.Helper()
	rc, err := b.Open(context.Background(), key, off, n)
	if err != nil {
		t.Fatalf("Open(%q, %d, %d) = %v, want nil", key, off, n, err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("Open(%q, %d, %d): read: %v", key, off, n, err)
	}
	return got
}

func cleanup(t *testing.T, b blob.Bucket, c string) {
	t.Cleanup(func() { _ = b.DeleteContainer(context.Background(), c) })
}

func testPutOpen(t *testing.T, b blob.Bucket) {
	c := container(t)
	cleanup(t, b, c)
	tests := []struct {
		name string
		key  string
		data []byte
	}{
		{"empty", c + "/empty", nil},
		{"small", c + "/small.json", []byte(`{"a":1}`)},
		{"nested", c + "/2026-12-03/1500/CertificateAssessmentExport/json/OrgId=x/_RbacGroupId=7/part-00000-x.c000.json.gz", payload(1000)},
		{"large", c + "/large", payload(5<<20 + 17)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			put(t, b, tt.key, tt.data)
			if got := read(t, b, tt.key, 0, -1); !bytes.Equal(got, tt.data) {
				t.Errorf("Open(%q) read %d bytes, want the %d put", tt.key, len(got), len(tt.data))
			}
		})
	}
	// Put again replaces the object whole.
	key := c + "/small.json"
	put(t, b, key, []byte("replaced"))
	if got := read(t, b, key, 0, -1); string(got) != "replaced" {
		t.Errorf("Open(%q) after a second Put = %q, want %q", key, got, "replaced")
	}
}

func testRangedOpen(t *testing.T, b blob.Bucket) {
	c := container(t)
	cleanup(t, b, c)
	key := c + "/obj"
	data := payload(100_000)
	put(t, b, key, data)
	size := int64(len(data))
	tests := []struct {
		off, n int64
	}{
		{0, -1},
		{0, size},
		{0, 1},
		{0, 0},
		{1, -1},
		{12_345, 10},
		{12_345, 65_536},
		{size - 1, -1},
		{size - 1, 1},
		{size, -1},
		{size, 0},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("off=%d,n=%d", tt.off, tt.n), func(t *testing.T) {
			want := data[tt.off:]
			if tt.n >= 0 {
				want = want[:tt.n]
			}
			if got := read(t, b, key, tt.off, tt.n); !bytes.Equal(got, want) {
				t.Errorf("Open(%q, %d, %d) read %d bytes, want %d bytes from the offset", key, tt.off, tt.n, len(got), len(want))
			}
		})
	}
}

func testMissing(t *testing.T, b blob.Bucket) {
	c := container(t)
	cleanup(t, b, c)
	put(t, b, c+"/present", []byte("x"))
	for _, key := range []string{c + "/absent", c + "/present/below", container(t) + "/absent"} {
		rc, err := b.Open(context.Background(), key, 0, -1)
		if err == nil {
			rc.Close()
		}
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Open(%q) = %v, want an error matching fs.ErrNotExist", key, err)
		}
	}
}

// blockingReader returns half of data, then signals reached and waits for
// release before returning the rest: the test looks at the bucket while a Put
// is in the middle of its object.
type blockingReader struct {
	data     []byte
	off      int
	reached  chan struct{}
	release  chan struct{}
	signaled bool
}

func (r *blockingReader) Read(p []byte) (int, error) {
	half := len(r.data) / 2
	if r.off == half && !r.signaled {
		r.signaled = true
		close(r.reached)
		<-r.release
	}
	end := len(r.data)
	if r.off < half {
		end = half
	}
	if r.off == end {
		return 0, io.EOF
	}
	n := copy(p, r.data[r.off:end])
	r.off += n
	return n, nil
}

func testPutInvisibleUntilDone(t *testing.T, b blob.Bucket) {
	c := container(t)
	cleanup(t, b, c)
	key := c + "/slow"
	data := payload(1 << 20)
	reached, release := make(chan struct{}), make(chan struct{})
	r := &blockingReader{data: data, reached: reached, release: release}
	done := make(chan error, 1)
	go func() { done <- b.Put(context.Background(), key, r) }()
	<-reached
	rc, err := b.Open(context.Background(), key, 0, -1)
	if err == nil {
		rc.Close()
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open(%q) during Put = %v, want fs.ErrNotExist", key, err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("Put(%q) = %v, want nil", key, err)
	}
	if got := read(t, b, key, 0, -1); !bytes.Equal(got, data) {
		t.Errorf("Open(%q) after Put read %d bytes, want %d", key, len(got), len(data))
	}
}

type failingReader struct {
	data []byte
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func testFailedPut(t *testing.T, b blob.Bucket) {
	c := container(t)
	cleanup(t, b, c)
	key := c + "/failed"
	errBoom := errors.New("boom")
	err := b.Put(context.Background(), key, &failingReader{data: payload(300_000), err: errBoom})
	if !errors.Is(err, errBoom) {
		t.Errorf("Put(%q) with a failing reader = %v, want an error wrapping %v", key, err, errBoom)
	}
	assertAbsent(t, b, key)

	// A failed Put over an existing object leaves the old object whole.
	key = c + "/kept"
	put(t, b, key, []byte("old"))
	if err := b.Put(context.Background(), key, &failingReader{data: payload(1000), err: errBoom}); err == nil {
		t.Errorf("Put(%q) with a failing reader = nil, want an error", key)
	}
	if got := read(t, b, key, 0, -1); string(got) != "old" {
		t.Errorf("Open(%q) after a failed Put = %q, want %q", key, got, "old")
	}
}

// cancellingReader cancels its context halfway through data and then keeps
// returning data, as a producer that has not noticed would.
type cancellingReader struct {
	data   []byte
	off    int
	cancel context.CancelFunc
}

func (r *cancellingReader) Read(p []byte) (int, error) {
	if r.off >= len(r.data)/2 {
		r.cancel()
	}
	if r.off == len(r.data) {
		return 0, io.EOF
	}
	// Small reads, so that the cancel happens well before the end.
	n := copy(p[:min(len(p), 4096)], r.data[r.off:])
	r.off += n
	return n, nil
}

func testCancelledPut(t *testing.T, b blob.Bucket) {
	c := container(t)
	cleanup(t, b, c)
	key := c + "/cancelled"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := &cancellingReader{data: payload(1 << 20), cancel: cancel}
	err := b.Put(ctx, key, r)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Put(%q) cancelled midway = %v, want an error wrapping context.Canceled", key, err)
	}
	assertAbsent(t, b, key)

	key = c + "/cancelled-before"
	if err := b.Put(ctx, key, bytes.NewReader([]byte("x"))); !errors.Is(err, context.Canceled) {
		t.Errorf("Put(%q) with a cancelled context = %v, want context.Canceled", key, err)
	}
	assertAbsent(t, b, key)
}

func assertAbsent(t *testing.T, b blob.Bucket, key string) {
	t.Helper()
	rc, err := b.Open(context.Background(), key, 0, -1)
	if err == nil {
		got, _ := io.ReadAll(rc)
		rc.Close()
		t.Errorf("Open(%q) after a failed Put read %d bytes, want fs.ErrNotExist", key, len(got))
		return
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open(%q) after a failed Put = %v, want fs.ErrNotExist", key, err)
	}
}

func testInvalidKeys(t *testing.T, b blob.Bucket) {
	c := container(t)
	cleanup(t, b, c)
	put(t, b, c+"/ok", []byte("x"))
	for _, key := range []string{
		"",
		"/" + c + "/abs",
		c + "/../escape",
		c + "/..",
		"../" + c + "/x",
		c + "//double",
		c + "/trailing/",
		c + `/back\slash`,
		c + "/nul\x00byte",
		c + "/./dot",
	} {
		if err := b.Put(context.Background(), key, bytes.NewReader([]byte("x"))); err == nil {
			t.Errorf("Put(%q) = nil, want an invalid key error", key)
		}
		rc, err := b.Open(context.Background(), key, 0, -1)
		if err == nil {
			rc.Close()
			t.Errorf("Open(%q) = nil error, want an invalid key error", key)
		}
	}
	for _, name := range []string{"", "..", c + "/ok", "a\\b"} {
		if err := b.DeleteContainer(context.Background(), name); err == nil {
			t.Errorf("DeleteContainer(%q) = nil, want an invalid name error", name)
		}
	}
	if got := read(t, b, c+"/ok", 0, -1); string(got) != "x" {
		t.Errorf("Open(%q) after invalid calls = %q, want %q", c+"/ok", got, "x")
	}
}

func testContainers(t *testing.T, b blob.Bucket) {
	ctx := context.Background()
	c1, c2 := container(t), container(t)
	cleanup(t, b, c1)
	cleanup(t, b, c2)
	put(t, b, c1+"/a/b", []byte("1"))
	put(t, b, c1+"/c", []byte("2"))
	put(t, b, c2+"/d", []byte("3"))

	names, err := b.Containers(ctx)
	if err != nil {
		t.Fatalf("Containers() = %v", err)
	}
	for _, c := range []string{c1, c2} {
		if !slices.Contains(names, c) {
			t.Errorf("Containers() = %q, want it to hold %q", names, c)
		}
	}

	if err := b.DeleteContainer(ctx, c1); err != nil {
		t.Fatalf("DeleteContainer(%q) = %v", c1, err)
	}
	names, err = b.Containers(ctx)
	if err != nil {
		t.Fatalf("Containers() = %v", err)
	}
	if slices.Contains(names, c1) {
		t.Errorf("Containers() after DeleteContainer(%q) = %q, still holds it", c1, names)
	}
	if !slices.Contains(names, c2) {
		t.Errorf("Containers() after DeleteContainer(%q) = %q, lost %q", c1, names, c2)
	}
	for _, key := range []string{c1 + "/a/b", c1 + "/c"} {
		assertAbsent(t, b, key)
	}
	if got := read(t, b, c2+"/d", 0, -1); string(got) != "3" {
		t.Errorf("Open(%q) = %q, want %q", c2+"/d", got, "3")
	}
	if err := b.DeleteContainer(ctx, c1); err != nil {
		t.Errorf("DeleteContainer(%q) of a deleted container = %v, want nil", c1, err)
	}
	if err := b.DeleteContainer(ctx, container(t)); err != nil {
		t.Errorf("DeleteContainer of an unknown container = %v, want nil", err)
	}
}
