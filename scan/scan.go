// Package scan finds the certificates a device holds: in files of every
// common format (PEM bundles, DER, PKCS#7, PKCS#12, Java keystores), in
// folders and globs, in the system's default places, in the Windows
// LocalMachine certificate stores and in the macOS keychains. It is the
// collection half of the agent and of `certinv scan`.
//
// Scan only finds, decodes containers and hashes: it frames each
// certificate's DER to reject corrupt bytes but leaves every field to the
// server's parser (package certparse), so that collecting costs little more
// than reading the files. Each certificate is reported once per place it
// lives: symbolic links are resolved, so the hash-named links of
// /etc/ssl/certs name the file they point to, and a file reached twice is
// read once. Bad input never stops a scan: each problem is a Warning.
package scan

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// Found is one certificate at one place.
type Found struct {
	// Path is where it lives: a file path; "file:alias" for a keystore
	// entry; "LocalMachine\<Store>\<THUMBPRINT>" on Windows; the keychain
	// file on macOS.
	Path string
	// DER is the certificate. It is valid only until found returns: copy
	// it to keep it.
	DER []byte
	// SHA256 is the SHA-256 of DER, the key the server knows it by.
	SHA256 [32]byte
}

// Warning is a problem that did not stop the scan: a file that could not be
// read, a corrupt certificate, a wrong password, a loop of links.
type Warning struct {
	Path string
	Err  error
}

func (w Warning) Error() string { return w.Path + ": " + w.Err.Error() }

// Options say where to look and how far.
type Options struct {
	// Paths are files, folders and globs (filepath.Match syntax), and on
	// Windows system stores ("LocalMachine\Root", or "LocalMachine" for
	// all). Empty means DefaultPlaces(). A default place that does not
	// exist is skipped quietly; a given one that does not is a warning.
	Paths []string
	// Passwords are tried on encrypted PKCS#12 contents after the empty
	// password. Java keystores hold their certificates in clear and need
	// none.
	Passwords []string
	// MaxFileBytes skips larger files with a warning; 0 means 16 MiB.
	MaxFileBytes int64
	// MaxDepth is how deep folders are walked below a given one; 0 means
	// 32.
	MaxDepth int
	// Exclude holds patterns (filepath.Match syntax) of paths not to read
	// or enter, matched against the path as found and its real path.
	Exclude []string
}

// Defaults of Options.
const (
	DefaultMaxFileBytes = 16 << 20
	DefaultMaxDepth     = 32
)

// sniffBytes is how much of a file with no certificate extension is read
// to decide whether it holds certificates at all.
const sniffBytes = 4096

// Scan finds every certificate in opts' places, once per place it lives,
// and calls found for each, in a deterministic order (places in order,
// folders in name order, certificates in file order), and warn for each
// problem. It never stops on bad input; it returns an error only when ctx
// ends or found returns one.
func Scan(ctx context.Context, opts Options, found func(Found) error, warn func(Warning)) error {
	s := &scanner{
		opts:     opts,
		found:    found,
		warn:     warn,
		files:    map[string]bool{},
		dirs:     map[string]bool{},
		realDirs: map[string]string{},
		dedupe:   map[dedupeKey]bool{},
		maxSize:  opts.MaxFileBytes,
		depth:    opts.MaxDepth,
	}
	if s.maxSize <= 0 {
		s.maxSize = DefaultMaxFileBytes
	}
	if s.depth <= 0 {
		s.depth = DefaultMaxDepth
	}
	places, explicit := opts.Paths, true
	if len(places) == 0 {
		places, explicit = DefaultPlaces(), false
	}
	for _, place := range places {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := s.place(ctx, place, explicit); err != nil {
			return err
		}
	}
	return ctx.Err()
}

type scanner struct {
	opts     Options
	found    func(Found) error
	warn     func(Warning)
	files    map[string]bool   // real paths of files read
	dirs     map[string]bool   // real paths of folders walked
	realDirs map[string]string // folder -> its real path
	stack    []string          // real paths of the folders being walked
	dedupe   map[dedupeKey]bool
	maxSize  int64
	depth    int
}

type dedupeKey struct {
	path string
	sum  [32]byte
}

func (s *scanner) warnf(path, format string, args ...any) {
	s.warn(Warning{Path: path, Err: fmt.Errorf(format, args...)})
}

func (s *scanner) place(ctx context.Context, place string, explicit bool) error {
	switch {
	case isStorePlace(place):
		return s.stores(ctx, place)
	case isKeychain(place) && readKeychain != nil:
		return s.keychain(ctx, place)
	case strings.ContainsAny(place, "*?["):
		matches, err := filepath.Glob(place)
		if err != nil {
			s.warnf(place, "bad pattern: %v", err)
			return nil
		}
		if len(matches) == 0 && explicit {
			s.warnf(place, "no file matches")
		}
		for _, m := range matches { // sorted by Glob
			if err := s.walk(ctx, m, 0, explicit); err != nil {
				return err
			}
		}
		return nil
	}
	return s.walk(ctx, place, 0, explicit)
}

func (s *scanner) excluded(paths ...string) bool {
	for _, pat := range s.opts.Exclude {
		for _, p := range paths {
			if ok, _ := filepath.Match(pat, p); ok {
				return true
			}
		}
	}
	return false
}

// walk reads path, a file or folder given (explicit) or found in a walk.
func (s *scanner) walk(ctx context.Context, path string, depth int, explicit bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		switch {
		case errors.Is(err, fs.ErrNotExist) && !explicit && depth == 0:
			// A default place this system does not have.
		case errors.Is(err, fs.ErrNotExist):
			s.warnf(path, "does not exist (or is a broken link)")
		default:
			s.warnf(path, "cannot resolve: %v", linkError(err))
		}
		return nil
	}
	if abs, err := filepath.Abs(real); err == nil {
		real = abs
	}
	return s.at(ctx, path, real, depth, explicit)
}

// at reads what path names, whose real path is real.
func (s *scanner) at(ctx context.Context, path, real string, depth int, explicit bool) error {
	if s.excluded(path, real) {
		return nil
	}
	info, err := os.Stat(real)
	if err != nil {
		s.warnf(real, "%v", err)
		return nil
	}
	switch {
	case info.IsDir():
		return s.dir(ctx, path, real, depth)
	case info.Mode().IsRegular():
		if s.files[real] {
			return nil
		}
		s.files[real] = true
		return s.file(ctx, real, info.Size(), explicit)
	default:
		if explicit {
			s.warnf(real, "not a regular file or folder")
		}
		return nil
	}
}

// linkError names a loop of links, which EvalSymlinks reports only as
// "too many links".
func linkError(err error) error {
	if strings.Contains(err.Error(), "too many links") {
		return errors.New("loop of symbolic links")
	}
	return err
}

func (s *scanner) dir(ctx context.Context, path, real string, depth int) error {
	for _, d := range s.stack {
		if d == real {
			s.warnf(path, "loop of links: leads back to %s", real)
			return nil
		}
	}
	if s.dirs[real] {
		return nil // reached again through a link: walked once
	}
	s.dirs[real] = true
	if depth > s.depth {
		s.warnf(real, "deeper than %d folders: not walked", s.depth)
		return nil
	}
	entries, err := os.ReadDir(real)
	if err != nil {
		s.warnf(real, "cannot list: %v", err)
		// ReadDir returns what it could read.
	}
	s.stack = append(s.stack, real)
	defer func() { s.stack = s.stack[:len(s.stack)-1] }()
	for _, e := range entries {
		child := filepath.Join(real, e.Name())
		var err error
		switch t := e.Type(); {
		case t.IsRegular():
			// Under a real folder, a file's path is real: no link to
			// resolve, and its size comes with the open.
			err = s.regular(ctx, child)
		case t.IsDir() && !s.excluded(child):
			err = s.dir(ctx, child, child, depth+1)
		case t&fs.ModeSymlink != 0:
			var target string
			if target, err = s.resolveLink(child); err != nil {
				s.warnf(child, "cannot resolve: %v", err)
				err = nil
			} else {
				err = s.at(ctx, child, target, depth+1, false)
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// maxLinkHops is how many links one path may go through, as Linux allows.
const maxLinkHops = 40

// resolveLink returns the real path of link, a symbolic link in a folder
// whose path is real. It reads the link and resolves only the folder of
// its target, through a cache: the hash links of a trust folder all point
// into the same few folders, and resolving each whole path costs a system
// call per component.
func (s *scanner) resolveLink(link string) (string, error) {
	p := link
	for range maxLinkHops {
		target, err := os.Readlink(p)
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(p), target)
		}
		dir, err := s.realDir(filepath.Dir(target))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return "", errors.New("broken link")
			}
			return "", linkError(err)
		}
		p = filepath.Join(dir, filepath.Base(target))
		info, err := os.Lstat(p)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return "", errors.New("does not exist (or is a broken link)")
			}
			return "", err
		}
		if info.Mode()&fs.ModeSymlink == 0 {
			return p, nil
		}
	}
	return "", errors.New("loop of symbolic links")
}

// realDir returns the real path of a folder, cached.
func (s *scanner) realDir(dir string) (string, error) {
	if r, ok := s.realDirs[dir]; ok {
		return r, nil
	}
	r, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", err
	}
	if r, err = filepath.Abs(r); err != nil {
		return "", err
	}
	s.realDirs[dir] = r
	return r, nil
}

// regular reads a regular file found in a walk, at its real path.
func (s *scanner) regular(ctx context.Context, path string) error {
	if s.files[path] || s.excluded(path) {
		return nil
	}
	s.files[path] = true
	return s.file(ctx, path, -1, false)
}

// file reads one regular file at its real path. In a walk, a file whose
// name promises no certificate is read only if its first bytes look like a
// certificate format.
//
// size is the file's size, or -1 when not yet known.
func (s *scanner) file(ctx context.Context, path string, size int64, explicit bool) error {
	if size > s.maxSize {
		s.warnf(path, "%d bytes: larger than the limit of %d, not read", size, s.maxSize)
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		s.warnf(path, "cannot read: %v", err)
		return nil
	}
	defer f.Close()
	if size < 0 {
		info, err := f.Stat()
		if err != nil {
			s.warnf(path, "cannot read: %v", err)
			return nil
		}
		if size = info.Size(); size > s.maxSize {
			s.warnf(path, "%d bytes: larger than the limit of %d, not read", size, s.maxSize)
			return nil
		}
	}
	var data []byte
	if explicit || wantsFullRead(path) || size <= sniffBytes {
		data, err = readAll(f, size, s.maxSize)
	} else {
		head := make([]byte, sniffBytes)
		n, rerr := io.ReadFull(f, head)
		if rerr != nil && rerr != io.ErrUnexpectedEOF {
			s.warnf(path, "cannot read: %v", rerr)
			return nil
		}
		if !looksLikeCertificates(head[:n]) {
			return nil
		}
		data = make([]byte, n, size)
		copy(data, head[:n])
		rest, rerr := io.ReadAll(io.LimitReader(f, s.maxSize+1-int64(n)))
		data, err = append(data, rest...), rerr
	}
	if err != nil {
		s.warnf(path, "cannot read: %v", err)
		return nil
	}
	if int64(len(data)) > s.maxSize {
		s.warnf(path, "larger than the limit of %d bytes, not read", s.maxSize)
		return nil
	}
	if !explicit && !wantsFullRead(path) && !looksLikeCertificates(data) {
		return nil
	}
	entries, errs := ParseFile(path, data, s.opts.Passwords)
	for _, err := range errs {
		s.warn(Warning{Path: path, Err: err})
	}
	if explicit && len(entries) == 0 && len(errs) == 0 {
		s.warnf(path, "no certificate found")
	}
	return s.emit(ctx, path, entries)
}

func (s *scanner) emit(ctx context.Context, file string, entries []Entry) error {
	for _, e := range entries {
		if err := s.emitOne(ctx, e.Path(file), e.DER); err != nil {
			return err
		}
	}
	return nil
}

// emitOne reports a certificate at a path, once.
func (s *scanner) emitOne(ctx context.Context, path string, der []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f := Found{Path: path, DER: der, SHA256: sha256.Sum256(der)}
	k := dedupeKey{f.Path, f.SHA256}
	if s.dedupe[k] {
		return nil // the same certificate twice in one place
	}
	s.dedupe[k] = true
	return s.found(f)
}

// readAll reads f, whose size was size when it was opened, up to max+1
// bytes, in one buffer of the right size.
func readAll(f *os.File, size, max int64) ([]byte, error) {
	buf := make([]byte, 0, size+1) // +1: to see EOF without growing
	for int64(len(buf)) <= max {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := f.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
	return buf, nil
}

// wantsFullRead reports whether a file's name promises certificates: a
// certificate extension, a hash link's ".0" or a Java keystore's name.
func wantsFullRead(path string) bool {
	base := strings.ToLower(filepath.Base(path))
	ext := filepath.Ext(base)
	if certExtensions[ext] || base == "cacerts" || base == "jssecacerts" {
		return true
	}
	return len(ext) == 2 && ext[1] >= '0' && ext[1] <= '9'
}

// looksLikeCertificates reports whether a file's first bytes may start a
// format ParseFile reads: a keystore's magic, a PEM block, or a DER
// SEQUENCE with a long-form length.
func looksLikeCertificates(head []byte) bool {
	if len(head) >= 4 && (bytes.HasPrefix(head, []byte{0xfe, 0xed, 0xfe, 0xed}) || bytes.HasPrefix(head, []byte{0xce, 0xce, 0xce, 0xce})) {
		return true
	}
	if len(head) >= 2 && head[0] == tagSequence && head[1]&0x80 != 0 {
		return true
	}
	return bytes.Contains(head, []byte("-----BEGIN "))
}

// DefaultPlaces returns where certificates live on the running system: the
// trust stores and their sources, Java's cacerts, and on Windows the
// LocalMachine stores, on macOS the System and system roots keychains.
func DefaultPlaces() []string { return defaultPlaces(runtime.GOOS) }

func defaultPlaces(goos string) []string {
	switch goos {
	case "windows":
		return []string{
			storeRoot,
			`C:\Program Files\Java\*\lib\security\cacerts`,
			`C:\Program Files\Eclipse Adoptium\*\lib\security\cacerts`,
		}
	case "darwin":
		return []string{
			"/Library/Keychains/System.keychain",
			"/System/Library/Keychains/SystemRootCertificates.keychain",
			"/etc/ssl/cert.pem",
			"/etc/ssl/certs",
			"/usr/local/etc/ca-certificates",
			"/opt/homebrew/etc/ca-certificates",
			"/Library/Java/JavaVirtualMachines/*/Contents/Home/lib/security/cacerts",
		}
	}
	// Linux and the BSDs: every distribution's trust store, its sources
	// and its extracted forms. Places inside others and links between them
	// cost nothing: each real file is read once.
	return []string{
		"/etc/ssl/certs",                   // Debian, Ubuntu, Alpine, SUSE, Arch (hash links, bundle, java/cacerts)
		"/etc/ssl/cert.pem",                // Alpine, Arch, the BSDs
		"/etc/ssl/ca-bundle.pem",           // SUSE
		"/etc/pki/tls/certs",               // RHEL, Fedora, CentOS
		"/etc/pki/tls/cert.pem",            // RHEL, Fedora
		"/etc/pki/ca-trust/extracted",      // RHEL, Fedora: generated bundles (pem, openssl, java)
		"/etc/pki/ca-trust/source",         // RHEL, Fedora: local anchors and blocklist
		"/etc/pki/java/cacerts",            // RHEL, Fedora
		"/usr/share/pki/ca-trust-source",   // RHEL, Fedora: distribution anchors
		"/usr/local/share/ca-certificates", // Debian, Ubuntu, Alpine: local anchors
		"/usr/share/ca-certificates",       // Debian, Ubuntu, Alpine: distribution anchors
		"/etc/ca-certificates",             // Arch trust-source, Debian update.d, SUSE
		"/var/lib/ca-certificates",         // SUSE: generated bundles
		"/usr/share/pki/trust",             // SUSE, Arch: distribution anchors
		"/etc/pki/trust",                   // SUSE: local anchors
		"/usr/lib/jvm/*/lib/security/cacerts",
		"/usr/lib/jvm/*/jre/lib/security/cacerts",
		"/etc/ssl/certs/java/cacerts",
	}
}
