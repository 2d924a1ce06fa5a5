package snapshot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
	"golang.org/x/sync/errgroup"

	"github.com/certinv/certinv"
	"github.com/certinv/certinv/blob"
)

// Defaults of a Builder's zero fields.
const (
	// DefaultLevel is the gzip level when Builder.Level is 0: 5, the
	// first level at which klauspost/compress uses its better match finder.
	// On fleet records (BenchmarkLevels, members of 1,000 lines, encoding
	// included) it makes files 15% smaller than level 1 (9.4x against 8.0x)
	// for 1.4x the CPU; level 6 gains 2% more for 1.6x and level 9 12% for
	// 4.5x. A build runs in the background, while every download and every
	// page pays for the bytes; gunzip speed hardly depends on the level.
	DefaultLevel          = 5
	DefaultLinesPerMember = 1000
	DefaultRecordsPerFile = 1_000_000
)

// progressEvery is how often a long build logs its progress.
const progressEvery = 10 * time.Second

// orphanAge is how old the container of a build that never published must be
// before Retire deletes it: older than any build still running elsewhere.
const orphanAge = time.Hour

// markerName is the object every build writes first in its container, with
// the time the build started, so that Retire can tell the garbage of an old
// failed build from a build still running on another replica.
const markerName = "build.json"

// Builder builds snapshots of an organization's inventory and retires old
// ones. Its methods may be called concurrently; a Builder must not be copied
// after first use.
type Builder struct {
	Source         certinv.InventoryReader
	Registry       certinv.SnapshotRegistry
	Bucket         blob.Bucket
	OrgID          string
	Level          int   // gzip level (klauspost/compress/gzip); 0 means DefaultLevel
	LinesPerMember int   // default DefaultLinesPerMember
	RecordsPerFile int64 // default DefaultRecordsPerFile (then part-00001 ...)
	Workers        int   // compressing goroutines; default runtime.GOMAXPROCS(0)
	Now            func() time.Time
	Log            *slog.Logger

	mu       sync.Mutex
	building map[string]bool      // containers of builds running in this process
	seen     map[string]time.Time // when Retire first saw a container without a marker
}

func (b *Builder) now() time.Time {
	if b.Now != nil {
		return b.Now()
	}
	return time.Now()
}

func (b *Builder) log() *slog.Logger {
	if b.Log != nil {
		return b.Log
	}
	return slog.New(slog.DiscardHandler)
}

// config is a Builder's settings with the defaults applied.
type config struct {
	level          int
	linesPerMember int
	recordsPerFile int64
	workers        int
}

func (b *Builder) config() (config, error) {
	c := config{level: b.Level, linesPerMember: b.LinesPerMember, recordsPerFile: b.RecordsPerFile, workers: b.Workers}
	if c.level == 0 {
		c.level = DefaultLevel
	}
	if c.linesPerMember == 0 {
		c.linesPerMember = DefaultLinesPerMember
	}
	if c.recordsPerFile == 0 {
		c.recordsPerFile = DefaultRecordsPerFile
	}
	if c.workers == 0 {
		c.workers = runtime.GOMAXPROCS(0)
	}
	switch {
	case c.level < gzip.HuffmanOnly || c.level > gzip.BestCompression:
		return c, fmt.Errorf("snapshot builder: gzip level %d is out of range", c.level)
	case c.linesPerMember < 0 || c.recordsPerFile < 0 || c.workers < 0:
		return c, errors.New("snapshot builder: negative LinesPerMember, RecordsPerFile or Workers")
	case b.Source == nil || b.Registry == nil || b.Bucket == nil:
		return c, errors.New("snapshot builder: Source, Registry and Bucket are required")
	case b.OrgID == "":
		return c, errors.New("snapshot builder: OrgID is required")
	}
	return c, nil
}

// BuildIfChanged builds and publishes a snapshot when the inventory's version
// differs from the latest snapshot's, or when there is none. Otherwise it
// returns the latest snapshot and false.
func (b *Builder) BuildIfChanged(ctx context.Context) (*certinv.Snapshot, bool, error) {
	latest, err := b.Registry.LatestSnapshot(ctx)
	if err != nil && certinv.KindOf(err) != certinv.ENotFound {
		return nil, false, fmt.Errorf("latest snapshot: %w", err)
	}
	if latest != nil && err == nil {
		v, err := b.Source.Version(ctx)
		if err != nil {
			return nil, false, fmt.Errorf("inventory version: %w", err)
		}
		if v == latest.Version {
			return latest, false, nil
		}
	}
	s, err := b.Build(ctx)
	if err != nil {
		return nil, false, err
	}
	return s, true, nil
}

// Build reads the inventory once, writes its part files and manifest and
// publishes the snapshot. On any failure nothing is published and the
// container is deleted (best effort: Retire removes what is left).
func (b *Builder) Build(ctx context.Context) (*certinv.Snapshot, error) {
	cfg, err := b.config()
	if err != nil {
		return nil, err
	}
	started := b.now()
	s := &certinv.Snapshot{ID: certinv.NewGUID(), GeneratedAt: started.UTC().Truncate(time.Second)}
	container := Container(s.ID)
	b.mu.Lock()
	if b.building == nil {
		b.building = make(map[string]bool)
	}
	b.building[container] = true
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.building, container)
		b.mu.Unlock()
	}()

	log := b.log().With("snapshot", s.ID)
	log.Info("snapshot build started")
	m, err := b.build(ctx, cfg, s, log)
	if err == nil {
		err = b.Registry.PublishSnapshot(ctx, s)
		if err != nil {
			err = fmt.Errorf("publish snapshot %s: %w", s.ID, err)
		}
	}
	if err != nil {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if derr := b.Bucket.DeleteContainer(dctx, container); derr != nil {
			log.Warn("snapshot build failed; its container is left for Retire", "err", derr)
		}
		log.Error("snapshot build failed", "err", err)
		return nil, err
	}
	elapsed := b.now().Sub(started)
	var size int64
	for i := range m.Files {
		size += m.Files[i].Size
	}
	log.Info("snapshot published", "version", s.Version, "records", s.Records, "files", s.Files,
		"bytes", size, "seconds", elapsed.Seconds(), "records_per_second", rate(s.Records, elapsed))
	return s, nil
}

func rate(n int64, d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64(float64(n) / d.Seconds())
}

// build writes the snapshot's objects and fills in s; the caller publishes.
func (b *Builder) build(ctx context.Context, cfg config, s *certinv.Snapshot, log *slog.Logger) (*Manifest, error) {
	container := Container(s.ID)
	marker, _ := json.Marshal(struct {
		StartedAt time.Time `json:"startedAt"`
	}{s.GeneratedAt})
	if err := b.Bucket.Put(ctx, container+"/"+markerName, bytes.NewReader(marker)); err != nil {
		return nil, fmt.Errorf("build snapshot %s: %w", s.ID, err)
	}

	m := &Manifest{SnapshotID: s.ID, OrgID: b.OrgID, GeneratedAt: s.GeneratedAt, LinesPerMember: cfg.linesPerMember, Files: []File{}}
	p := &pipeline{b: b, cfg: cfg, s: s, log: log}
	version, files, err := p.run(ctx)
	if err != nil {
		return nil, fmt.Errorf("build snapshot %s: %w", s.ID, err)
	}
	for _, f := range files {
		m.Files = append(m.Files, f.File)
		s.Records += f.Records
	}
	s.Version = version
	s.Files = len(m.Files)
	s.ManifestKey = ManifestKey(s.ID, s.GeneratedAt)

	data, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("build snapshot %s: manifest: %w", s.ID, err)
	}
	if err := b.Bucket.Put(ctx, s.ManifestKey, bytes.NewReader(data)); err != nil {
		return nil, fmt.Errorf("build snapshot %s: manifest: %w", s.ID, err)
	}
	return m, nil
}

// The build is a pipeline of three stages:
//
//	reader (ReadInventory) --members--> compressors (Workers goroutines)
//	          \--------------same members, in order--------> writer (bucket.Put through io.Pipe)
//
// The reader cuts the lines into members and hands each to the compressors
// and, in the same order, to the writer, which waits for each member's
// compression to finish before writing it. Both queues are bounded, so at
// most about 3 x Workers members are in memory whatever the fleet size.

// fileBuild is a part file being written.
type fileBuild struct {
	File
}

// member is a run of up to LinesPerMember lines of one part file.
type member struct {
	file  *fileBuild
	raw   *[]byte       // the lines, NDJSON; returned to rawPool once compressed
	lines int64         // lines in raw
	out   *bytes.Buffer // one complete gzip member
	err   error
	done  chan struct{} // closed when out or err is set
}

var (
	rawPool = sync.Pool{New: func() any { b := make([]byte, 0, 1<<20); return &b }}
	outPool = sync.Pool{New: func() any { return bytes.NewBuffer(make([]byte, 0, 256<<10)) }}
)

type pipeline struct {
	b   *Builder
	cfg config
	s   *certinv.Snapshot
	log *slog.Logger

	files []*fileBuild
}

func (p *pipeline) run(ctx context.Context) (version int64, files []*fileBuild, err error) {
	g, gctx := errgroup.WithContext(ctx)
	work := make(chan *member, p.cfg.workers)
	order := make(chan *member, 2*p.cfg.workers)

	for range p.cfg.workers {
		g.Go(func() error { return compress(work, p.cfg.level) })
	}
	g.Go(func() error { return p.write(gctx, order) })
	g.Go(func() error {
		defer close(work)
		defer close(order)
		v, err := p.read(gctx, work, order)
		version = v
		return err
	})
	if err := g.Wait(); err != nil {
		return 0, nil, err
	}
	return version, p.files, nil
}

// read is the reader stage: one ReadInventory, cut into members and files.
func (p *pipeline) read(ctx context.Context, work, order chan<- *member) (int64, error) {
	var (
		cur         *fileBuild
		fileRecords int64
		part        int
		m           *member
		records     int64
		started     = p.b.now()
		lastLog     = started
	)
	send := func() error {
		if m == nil || m.lines == 0 {
			return nil
		}
		m.done = make(chan struct{})
		select {
		case order <- m:
		case <-ctx.Done():
			return ctx.Err()
		}
		select {
		case work <- m:
		case <-ctx.Done():
			return ctx.Err()
		}
		m = nil
		if now := p.b.now(); now.Sub(lastLog) >= progressEvery {
			lastLog = now
			p.log.Info("snapshot build progress", "records", records, "files", len(p.files),
				"records_per_second", rate(records, now.Sub(started)))
		}
		return nil
	}
	version, err := p.b.Source.ReadInventory(ctx, func(row *certinv.InventoryRow) error {
		if cur == nil || row.GroupID != cur.GroupID || fileRecords == p.cfg.recordsPerFile {
			if cur != nil && row.GroupID < cur.GroupID {
				return fmt.Errorf("inventory rows out of order: group %d after group %d", row.GroupID, cur.GroupID)
			}
			if err := send(); err != nil {
				return err
			}
			if cur != nil && row.GroupID == cur.GroupID {
				part++
			} else {
				part = 0
			}
			cur = &fileBuild{File: File{
				Key:       PartKey(p.s.ID, p.b.OrgID, p.s.GeneratedAt, row.GroupID, part),
				GroupID:   row.GroupID,
				GroupName: row.GroupName,
			}}
			p.files = append(p.files, cur)
			fileRecords = 0
		}
		if m == nil {
			m = &member{file: cur, raw: rawPool.Get().(*[]byte)}
		}
		buf := certinv.AppendRecordJSON(*m.raw, row.DeviceID, row.DeviceName, row.Path, row.CertificateJSON, row.GroupID, row.GroupName)
		*m.raw = append(buf, '\n')
		m.lines++
		fileRecords++
		records++
		if m.lines == int64(p.cfg.linesPerMember) {
			return send()
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("read inventory: %w", err)
	}
	if err := send(); err != nil {
		return 0, err
	}
	return version, nil
}

// compress is a compressor: each member becomes one complete gzip member.
func compress(work <-chan *member, level int) error {
	zw, err := gzip.NewWriterLevel(io.Discard, level)
	if err != nil {
		return err
	}
	for m := range work {
		out := outPool.Get().(*bytes.Buffer)
		out.Reset()
		zw.Reset(out)
		_, err := zw.Write(*m.raw)
		if err == nil {
			err = zw.Close()
		}
		*m.raw = (*m.raw)[:0]
		rawPool.Put(m.raw)
		m.raw = nil
		m.out, m.err = out, err
		close(m.done)
	}
	return nil
}

// write is the writer stage: members in order, one bucket.Put per file.
func (p *pipeline) write(ctx context.Context, order <-chan *member) (err error) {
	var (
		cur    *fileBuild
		pw     *io.PipeWriter
		putErr chan error
	)
	start := func(f *fileBuild) {
		var pr *io.PipeReader
		pr, pw = io.Pipe()
		putErr = make(chan error, 1)
		go func() {
			err := p.b.Bucket.Put(ctx, f.Key, pr)
			// A Put that returns stops reading: fail the writes still to come.
			pr.CloseWithError(errors.Join(err, errors.New("bucket put returned before the end of the file")))
			putErr <- err
		}()
		cur = f
	}
	finish := func() error {
		if cur == nil {
			return nil
		}
		pw.Close()
		err := <-putErr
		cur, pw = nil, nil
		if err != nil {
			return err
		}
		return nil
	}
	defer func() {
		if cur != nil { // failed midway: the Put must fail too, and end
			pw.CloseWithError(err)
			<-putErr
		}
	}()

	for {
		var m *member
		select {
		case m = <-order:
		case <-ctx.Done():
			return ctx.Err()
		}
		if m == nil {
			return finish()
		}
		select {
		case <-m.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if m.err != nil {
			return fmt.Errorf("gzip: %w", m.err)
		}
		if m.file != cur {
			if err := finish(); err != nil {
				return fmt.Errorf("put %s: %w", m.file.Key, err)
			}
			start(m.file)
		}
		f := m.file
		f.Members = append(f.Members, f.Size)
		n, err := pw.Write(m.out.Bytes())
		f.Size += int64(n)
		f.Records += m.lines
		outPool.Put(m.out)
		m.out = nil
		if err != nil {
			return fmt.Errorf("put %s: %w", f.Key, err)
		}
	}
}

// Retire retires the snapshots superseded more than keep ago (never the
// latest) and deletes their containers. It also deletes the containers of
// builds that never published: those older than an hour that no live
// snapshot names and no build of this Builder is writing. It returns how
// many snapshots it retired.
func (b *Builder) Retire(ctx context.Context, keep time.Duration) (retired int, err error) {
	now := b.now()
	snaps, err := b.Registry.Snapshots(ctx)
	if err != nil {
		return 0, fmt.Errorf("retire snapshots: %w", err)
	}
	live := make(map[string]bool)
	var errs []error
	for i := range snaps {
		s := &snaps[i]
		if i == 0 || s.SupersededAt.IsZero() || now.Sub(s.SupersededAt) <= keep {
			live[Container(s.ID)] = true
			continue
		}
		if err := b.Registry.RetireSnapshot(ctx, s.ID); err != nil {
			return retired, fmt.Errorf("retire snapshot %s: %w", s.ID, err)
		}
		retired++
		b.log().Info("snapshot retired", "snapshot", s.ID, "superseded_at", s.SupersededAt)
		if err := b.Bucket.DeleteContainer(ctx, Container(s.ID)); err != nil {
			// Left as an orphan: the sweep below or a later Retire deletes it.
			errs = append(errs, fmt.Errorf("delete container of snapshot %s: %w", s.ID, err))
		}
	}

	containers, err := b.Bucket.Containers(ctx)
	if err != nil {
		return retired, fmt.Errorf("retire snapshots: %w", err)
	}
	seenNow := make(map[string]time.Time)
	for _, c := range containers {
		if !strings.HasPrefix(c, containerPrefix) || live[c] {
			continue
		}
		b.mu.Lock()
		running := b.building[c]
		firstSeen, ok := b.seen[c]
		b.mu.Unlock()
		if running {
			continue
		}
		started, err := b.startedAt(ctx, c)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			// No marker (a crash before it was written): judge by when
			// this Builder first saw the container.
			if !ok {
				firstSeen = now
			}
			seenNow[c] = firstSeen
			started = firstSeen
		case err != nil:
			errs = append(errs, err)
			continue
		}
		if now.Sub(started) <= orphanAge {
			continue
		}
		if err := b.Bucket.DeleteContainer(ctx, c); err != nil {
			errs = append(errs, fmt.Errorf("delete orphan container %s: %w", c, err))
			continue
		}
		delete(seenNow, c)
		b.log().Info("orphan snapshot container deleted", "container", c, "started_at", started)
	}
	b.mu.Lock()
	b.seen = seenNow
	b.mu.Unlock()

	// A Dir may hold temporary files of Puts cut by a crash.
	if rt, ok := b.Bucket.(interface {
		RemoveTemp(ctx context.Context, before time.Time) (int, error)
	}); ok {
		if _, err := rt.RemoveTemp(ctx, now.Add(-orphanAge)); err != nil {
			errs = append(errs, err)
		}
	}
	return retired, errors.Join(errs...)
}

// startedAt reads the build marker of a container.
func (b *Builder) startedAt(ctx context.Context, container string) (time.Time, error) {
	rc, err := b.Bucket.Open(ctx, container+"/"+markerName, 0, -1)
	if err != nil {
		return time.Time{}, err
	}
	defer rc.Close()
	var marker struct {
		StartedAt time.Time `json:"startedAt"`
	}
	if err := json.NewDecoder(io.LimitReader(rc, 4096)).Decode(&marker); err != nil || marker.StartedAt.IsZero() {
		// Unreadable: treat as old garbage of a build that failed while
		// writing it.
		return time.Time{}, nil
	}
	return marker.StartedAt, nil
}
