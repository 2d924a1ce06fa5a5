package snapshot

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"

	"github.com/certinv/certinv"
	"github.com/certinv/certinv/blob"
)

// Position is a place in a snapshot: a line of one of its files.
type Position struct {
	File int   // index into Manifest.Files
	Line int64 // line within that file, from 0
}

// Records returns the number of records in the files for which include
// returns true (all files when include is nil).
func (m *Manifest) Records(include func(*File) bool) int64 {
	var n int64
	for i := range m.Files {
		if include == nil || include(&m.Files[i]) {
			n += m.Files[i].Records
		}
	}
	return n
}

// CopyRecords copies up to n records starting at from to w, writing sep
// between records (not before the first nor after the last), skipping files
// for which include returns false (include nil = all). It returns the
// position after the last record copied and whether any record remains after
// it.
//
// Each record is copied as it is in the file, without its newline. A page
// opens each file it reads at the member that holds its first line, so its
// cost does not depend on how deep it starts.
func (m *Manifest) CopyRecords(ctx context.Context, b blob.Bucket, from Position, n int64, include func(*File) bool, w io.Writer, sep []byte) (next Position, copied int64, more bool, err error) {
	if from.File < 0 || from.File > len(m.Files) || from.Line < 0 ||
		(from.File == len(m.Files) && from.Line != 0) ||
		(from.File < len(m.Files) && from.Line > m.Files[from.File].Records) {
		return from, 0, false, certinv.Errorf(certinv.EBadRequest, "the page position is outside the snapshot; start again without a $skiptoken")
	}
	pos := m.skip(from, include)
	if n <= 0 || pos.File == len(m.Files) {
		return pos, 0, pos.File < len(m.Files), nil
	}
	total := min(n, m.remaining(pos, include))

	c := copierPool.Get().(*copier)
	defer copierPool.Put(c)
	c.w, c.sep, c.out = w, sep, c.out[:0]
	defer func() { c.w, c.sep = nil, nil }()

	for copied < total {
		f := &m.Files[pos.File]
		want := min(total-copied, f.Records-pos.Line)
		if err := c.copyFile(ctx, b, f, m.LinesPerMember, pos.Line, want, copied+want < total); err != nil {
			return pos, copied, true, err
		}
		copied += want
		pos.Line += want
		pos = m.skip(pos, include)
	}
	if err := c.flush(); err != nil {
		return pos, copied, true, err
	}
	return pos, copied, pos.File < len(m.Files), nil
}

// skip moves p past files that are excluded or that it has reached the end of.
func (m *Manifest) skip(p Position, include func(*File) bool) Position {
	for p.File < len(m.Files) {
		f := &m.Files[p.File]
		if p.Line < f.Records && (include == nil || include(f)) {
			break
		}
		p = Position{File: p.File + 1}
	}
	return p
}

// remaining returns how many included records there are from p on.
func (m *Manifest) remaining(p Position, include func(*File) bool) int64 {
	var n int64
	for i := p.File; i < len(m.Files); i++ {
		f := &m.Files[i]
		if include == nil || include(f) {
			n += f.Records
		}
	}
	return n - p.Line
}

// copier holds the buffers of one CopyRecords, pooled so that serving a page
// allocates nothing in proportion to its size.
type copier struct {
	br  *bufio.Reader
	zr  *gzip.Reader
	out []byte

	w   io.Writer
	sep []byte

	// The state of the file being copied.
	skip      int64 // lines still to skip
	remain    int64 // lines still to copy
	sepAtEnd  bool  // whether sep follows the last line copied from this file
	writeErr  error
	gotFinish bool
}

const (
	readBuffer = 256 << 10 // bytes read from the bucket at a time
	outBuffer  = 64 << 10  // bytes written to w at a time
)

var copierPool = sync.Pool{New: func() any {
	return &copier{
		br:  bufio.NewReaderSize(nil, readBuffer),
		zr:  new(gzip.Reader),
		out: make([]byte, 0, outBuffer),
	}
}}

// errFileDone stops the decompression once the lines a page needs are copied.
var errFileDone = errors.New("snapshot: lines copied")

// copyFile copies want lines of f from line to c.w.
func (c *copier) copyFile(ctx context.Context, b blob.Bucket, f *File, linesPerMember int, line, want int64, sepAtEnd bool) error {
	lpm := int64(linesPerMember)
	first := line / lpm
	last := (line + want - 1) / lpm
	start, end := f.Members[first], f.Size
	if last+1 < int64(len(f.Members)) {
		end = f.Members[last+1]
	}
	rc, err := b.Open(ctx, f.Key, start, end-start)
	if err != nil {
		return fmt.Errorf("open part file %s: %w", f.Key, err)
	}
	defer rc.Close()
	c.br.Reset(rc)
	defer c.br.Reset(nil)
	if err := c.zr.Reset(c.br); err != nil {
		return fmt.Errorf("read part file %s at member %d: %w", f.Key, first, err)
	}
	c.zr.Multistream(true)
	c.skip, c.remain, c.sepAtEnd, c.writeErr, c.gotFinish = line-first*lpm, want, sepAtEnd, nil, false

	_, err = c.zr.WriteTo(c)
	switch {
	case c.writeErr != nil:
		return c.writeErr
	case c.gotFinish:
		return nil
	case err != nil:
		return fmt.Errorf("read part file %s: %w", f.Key, err)
	default:
		return fmt.Errorf("read part file %s: it ends %d lines before its manifest says", f.Key, c.remain)
	}
}

// Write takes decompressed bytes: it skips c.skip lines, then copies lines
// without their newline, sep between them, until c.remain lines are copied.
func (c *copier) Write(p []byte) (int, error) {
	i := 0
	for c.skip > 0 {
		j := bytes.IndexByte(p[i:], '\n')
		if j < 0 {
			return len(p), nil
		}
		i += j + 1
		c.skip--
	}
	for i < len(p) {
		j := bytes.IndexByte(p[i:], '\n')
		if j < 0 {
			c.emit(p[i:])
			break
		}
		c.emit(p[i : i+j])
		i += j + 1
		c.remain--
		if c.remain == 0 {
			if c.sepAtEnd {
				c.emit(c.sep)
			}
			c.gotFinish = true
			if c.writeErr != nil {
				return i, c.writeErr
			}
			return i, errFileDone
		}
		c.emit(c.sep)
	}
	if c.writeErr != nil {
		return i, c.writeErr
	}
	return len(p), nil
}

// emit adds b to the output, writing the buffer to w when full.
func (c *copier) emit(b []byte) {
	if c.writeErr != nil {
		return
	}
	if len(c.out)+len(b) > cap(c.out) {
		if err := c.flush(); err != nil {
			return
		}
		if len(b) > cap(c.out) {
			if _, err := c.w.Write(b); err != nil {
				c.writeErr = err
			}
			return
		}
	}
	c.out = append(c.out, b...)
}

func (c *copier) flush() error {
	if c.writeErr != nil {
		return c.writeErr
	}
	if len(c.out) == 0 {
		return nil
	}
	_, err := c.w.Write(c.out)
	c.out = c.out[:0]
	if err != nil {
		c.writeErr = err
	}
	return err
}
