package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// tempPrefix starts the name of every file that Dir.Put is still writing.
// Keys may not have a segment that starts with '.', so no key ever names a
// temporary file: readers cannot see one, and RemoveTemp may delete them.
const tempPrefix = ".put-"

// Dir is a Bucket in a local folder: a container is a subfolder of the root
// and a key's segments are the path below it.
//
// Put writes to a temporary file in the object's folder, syncs it and renames
// it into place, so an object is visible whole or not at all, also after a
// crash. A crash may leave temporary files behind: readers never see them,
// DeleteContainer removes them with their container, and RemoveTemp removes
// those older than a given time.
type Dir struct {
	root string
}

var _ Bucket = (*Dir)(nil)

// NewDir returns a Dir rooted at root, creating the folder if needed.
func NewDir(root string) (*Dir, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("blob dir %q: %w", root, err)
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return nil, fmt.Errorf("blob dir: %w", err)
	}
	return &Dir{root: abs}, nil
}

// Root returns the absolute path of the folder.
func (d *Dir) Root() string { return d.root }

// ValidateKey reports whether key may name an object: slash-separated,
// non-empty segments (so neither absolute nor ending in a slash), none of
// them starting with '.' (which rules out "." and ".."), and no backslash or
// NUL. The rules keep a key inside its bucket on every operating system.
func ValidateKey(key string) error {
	if key == "" {
		return errors.New("invalid blob key: empty")
	}
	if strings.ContainsAny(key, "\\\x00") {
		return fmt.Errorf("invalid blob key %q: backslash and NUL are not allowed", key)
	}
	for seg := range strings.SplitSeq(key, "/") {
		if seg == "" {
			return fmt.Errorf("invalid blob key %q: empty segment (leading, trailing or double slash)", key)
		}
		if seg[0] == '.' {
			return fmt.Errorf("invalid blob key %q: a segment may not start with '.' (no '.' or '..')", key)
		}
	}
	return nil
}

func validateContainer(name string) error {
	if err := ValidateKey(name); err != nil {
		return err
	}
	if strings.Contains(name, "/") {
		return fmt.Errorf("invalid container name %q: it must be one key segment", name)
	}
	return nil
}

func (d *Dir) path(key string) string {
	return filepath.Join(d.root, filepath.FromSlash(key))
}

// Put stores the bytes of r at key, atomically; see Dir.
func (d *Dir) Put(ctx context.Context, key string, r io.Reader) (err error) {
	if err := ValidateKey(key); err != nil {
		return err
	}
	if !strings.Contains(key, "/") {
		return fmt.Errorf("invalid blob key %q: it must name a container and an object", key)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	dst := d.path(key)
	folder := filepath.Dir(dst)
	if err := os.MkdirAll(folder, 0o750); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	f, err := os.CreateTemp(folder, tempPrefix+"*")
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err := io.Copy(f, &ctxReader{ctx: ctx, r: r}); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("put %s: sync: %w", key, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	// A last look at ctx: a Put cancelled while its reader was at EOF must
	// still leave nothing visible.
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if err := os.Rename(f.Name(), dst); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	// Sync the folder so that the rename survives a crash. Failing here
	// would leave a visible object behind an error, so it is best effort.
	if fd, err := os.Open(folder); err == nil {
		_ = fd.Sync()
		fd.Close()
	}
	return nil
}

// Open reads the object at key from byte off: n bytes, or to its end when
// n < 0. A range past the end of the object is cut at its end.
func (d *Dir) Open(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	if err := ValidateKey(key); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("open %s: %w", key, err)
	}
	if off < 0 {
		return nil, fmt.Errorf("open %s: negative offset %d", key, off)
	}
	f, err := os.Open(d.path(key))
	if errors.Is(err, syscall.ENOTDIR) {
		// A segment of the key is an object, not a folder: no such object.
		return nil, fmt.Errorf("open blob %s: %w", key, fs.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("open blob: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open blob: %w", err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("open blob %s: %w", key, fs.ErrNotExist)
	}
	size := fi.Size()
	if off > size {
		f.Close()
		return nil, fmt.Errorf("open blob %s: offset %d past the end (%d bytes)", key, off, size)
	}
	if n < 0 || n > size-off {
		n = size - off
	}
	return &section{SectionReader: io.NewSectionReader(f, off, n), f: f, ctx: ctx}, nil
}

type section struct {
	*io.SectionReader
	f   *os.File
	ctx context.Context
}

func (s *section) Read(p []byte) (int, error) {
	if err := s.ctx.Err(); err != nil {
		return 0, err
	}
	return s.SectionReader.Read(p)
}

func (s *section) Close() error { return s.f.Close() }

// Containers lists the containers: the subfolders of the root.
func (d *Dir) Containers(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(d.root)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() && validateContainer(e.Name()) == nil {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// DeleteContainer removes a container and every object in it. Removing a
// container that does not exist is not an error.
func (d *Dir) DeleteContainer(ctx context.Context, container string) error {
	if err := validateContainer(container); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := os.RemoveAll(d.path(container)); err != nil {
		return fmt.Errorf("delete container %s: %w", container, err)
	}
	return nil
}

// RemoveTemp deletes the temporary files of Puts that never finished (the
// process crashed) whose modification time is before before, and returns how
// many it deleted. Pass a time well before the start of any running Put.
func (d *Dir) RemoveTemp(ctx context.Context, before time.Time) (int, error) {
	removed := 0
	err := filepath.WalkDir(d.root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed meanwhile, by DeleteContainer
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if e.IsDir() || !strings.HasPrefix(e.Name(), tempPrefix) {
			return nil
		}
		fi, err := e.Info()
		if err != nil {
			return nil
		}
		if fi.ModTime().Before(before) {
			if err := os.Remove(p); err == nil {
				removed++
			}
		}
		return nil
	})
	if err != nil {
		return removed, fmt.Errorf("remove temporary files: %w", err)
	}
	return removed, nil
}

// ctxReader fails its reads once ctx ends, so that a Put whose context is
// cancelled stops copying and leaves nothing.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
