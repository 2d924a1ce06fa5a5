package snapshot_test

import (
	"bytes"
	stdgzip "compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certinv/certinv"
	"github.com/certinv/certinv/blob"
	"github.com/certinv/certinv/snapshot"
)

const testOrg = "47d41a0c-188d-46d3-bbea-a93dbc0bfcaa"

var t0 = time.Date(2026, 12, 3, 15, 4, 5, 678_000_000, time.UTC)

type env struct {
	dir   *blob.Dir
	src   *rowsSource
	reg   *memRegistry
	clock *clock
	b     *snapshot.Builder
}

func newEnv(t testing.TB, rows []certinv.InventoryRow) *env {
	t.Helper()
	dir, err := blob.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: t0}
	e := &env{dir: dir, src: &rowsSource{version: 7, rows: rows}, reg: &memRegistry{now: c.Now}, clock: c}
	e.b = &snapshot.Builder{
		Source:         e.src,
		Registry:       e.reg,
		Bucket:         dir,
		OrgID:          testOrg,
		LinesPerMember: 7,
		RecordsPerFile: 50,
		Workers:        3,
		Now:            c.Now,
	}
	return e
}

// testGroups has a group larger than RecordsPerFile (several part files,
// one exactly full), and groups smaller than a member.
var testGroups = []group{
	{0, certinv.GroupUnassigned, 3},
	{5, "Servers", 120},
	{12, "Laptops", 50},
	{4414, `Odd "name" \ é`, 9},
}

func readAll(t *testing.T, b blob.Bucket, key string, off, n int64) []byte {
	t.Helper()
	rc, err := b.Open(context.Background(), key, off, n)
	if err != nil {
		t.Fatalf("Open(%q) = %v", key, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %q: %v", key, err)
	}
	return data
}

func gunzip(t *testing.T, data []byte, multistream bool) []byte {
	t.Helper()
	zr, err := stdgzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("gzip.NewReader: %v", err)
	}
	zr.Multistream(multistream)
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	return out
}

func joinLines(ls [][]byte) []byte {
	var b []byte
	for _, l := range ls {
		b = append(b, l...)
		b = append(b, '\n')
	}
	return b
}

func TestBuildLayout(t *testing.T) {
	rows := fleet(1, testGroups)
	want := lines(rows)
	e := newEnv(t, rows)
	s, err := e.b.Build(context.Background())
	if err != nil {
		t.Fatalf("Build() = %v", err)
	}

	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(s.ID) {
		t.Errorf("Snapshot.ID = %q, want a GUID", s.ID)
	}
	if wantT := t0.Truncate(time.Second); !s.GeneratedAt.Equal(wantT) || s.GeneratedAt.Location() != time.UTC {
		t.Errorf("Snapshot.GeneratedAt = %v, want %v UTC", s.GeneratedAt, wantT)
	}
	if s.Version != 7 || s.Records != int64(len(rows)) {
		t.Errorf("Snapshot version, records = %d, %d, want 7, %d", s.Version, s.Records, len(rows))
	}
	wantManifest := "export-" + s.ID + "/2026-12-03/1504/CertificateAssessmentExport/manifest.json"
	if s.ManifestKey != wantManifest {
		t.Errorf("Snapshot.ManifestKey = %q, want %q", s.ManifestKey, wantManifest)
	}
	if n := e.src.reads.Load(); n != 1 {
		t.Errorf("Build read the inventory %d times, want once", n)
	}
	latest, err := e.reg.LatestSnapshot(context.Background())
	if err != nil || latest.ID != s.ID {
		t.Errorf("LatestSnapshot() = %v, %v, want the built snapshot %s", latest, err, s.ID)
	}

	m, err := snapshot.ReadManifest(context.Background(), e.dir, s.ManifestKey)
	if err != nil {
		t.Fatalf("ReadManifest() = %v", err)
	}
	if m.SnapshotID != s.ID || m.OrgID != testOrg || !m.GeneratedAt.Equal(s.GeneratedAt) || m.LinesPerMember != 7 {
		t.Errorf("manifest header = %q %q %v %d, want %q %q %v 7", m.SnapshotID, m.OrgID, m.GeneratedAt, m.LinesPerMember, s.ID, testOrg, s.GeneratedAt)
	}

	// Files: per group, cut every 50 records: 3 | 50 50 20 | 50 | 9.
	type fileWant struct {
		group   int64
		part    int
		records int64
	}
	wantFiles := []fileWant{{0, 0, 3}, {5, 0, 50}, {5, 1, 50}, {5, 2, 20}, {12, 0, 50}, {4414, 0, 9}}
	if len(m.Files) != len(wantFiles) || s.Files != len(wantFiles) {
		t.Fatalf("manifest has %d files (snapshot says %d), want %d", len(m.Files), s.Files, len(wantFiles))
	}
	next := 0
	for i, f := range m.Files {
		w := wantFiles[i]
		wantKey := fmt.Sprintf("export-%s/2026-12-03/1504/CertificateAssessmentExport/json/OrgId=%s/_RbacGroupId=%d/part-%05d-%s.c000.json.gz", s.ID, testOrg, w.group, w.part, s.ID)
		if f.Key != wantKey || f.GroupID != w.group || f.Records != w.records {
			t.Errorf("file %d = %q group %d, %d records, want %q group %d, %d records", i, f.Key, f.GroupID, f.Records, wantKey, w.group, w.records)
		}
		fileLines := want[next : next+int(f.Records)]
		if f.GroupName != rows[next].GroupName {
			t.Errorf("file %d group name = %q, want %q", i, f.GroupName, rows[next].GroupName)
		}
		next += int(f.Records)

		data := readAll(t, e.dir, f.Key, 0, -1)
		if int64(len(data)) != f.Size {
			t.Errorf("file %s is %d bytes, manifest says %d", f.Key, len(data), f.Size)
		}
		if got := gunzip(t, data, true); !bytes.Equal(got, joinLines(fileLines)) {
			t.Errorf("file %s gunzips to %d bytes, want the %d bytes of its %d records", f.Key, len(got), len(joinLines(fileLines)), f.Records)
		}
		// Every member is a complete gzip member of 7 lines (the last fewer).
		if wantMembers := (f.Records + 6) / 7; int64(len(f.Members)) != wantMembers {
			t.Fatalf("file %s has %d members, want %d", f.Key, len(f.Members), wantMembers)
		}
		for k, off := range f.Members {
			end := f.Size
			if k+1 < len(f.Members) {
				end = f.Members[k+1]
			}
			got := gunzip(t, data[off:end], false)
			lo, hi := k*7, min((k+1)*7, len(fileLines))
			if !bytes.Equal(got, joinLines(fileLines[lo:hi])) {
				t.Errorf("file %s member %d holds %q, want lines %d to %d", f.Key, k, got, lo, hi)
			}
		}
	}
	if next != len(rows) {
		t.Errorf("files hold %d records, want %d", next, len(rows))
	}
}

// Standard readers outside Go read a part file whole: zcat and Python's gzip.
func TestPartFilesReadByZcatAndPython(t *testing.T) {
	rows := fleet(2, testGroups[1:2])
	e := newEnv(t, rows)
	e.b.RecordsPerFile = 1000
	s, err := e.b.Build(context.Background())
	if err != nil {
		t.Fatalf("Build() = %v", err)
	}
	m, err := snapshot.ReadManifest(context.Background(), e.dir, s.ManifestKey)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(e.dir.Root(), filepath.FromSlash(m.Files[0].Key))
	want := joinLines(lines(rows))
	for _, cmd := range [][]string{
		{"zcat", path},
		{"python3", "-c", "import gzip,sys; sys.stdout.buffer.write(gzip.open(sys.argv[1]).read())", path},
	} {
		out, err := exec.Command(cmd[0], cmd[1:]...).Output()
		if err != nil {
			t.Fatalf("%s: %v", cmd[0], err)
		}
		if !bytes.Equal(out, want) {
			t.Errorf("%s read %d bytes, want %d", cmd[0], len(out), len(want))
		}
	}
}

func TestBuildEmptyOrganization(t *testing.T) {
	e := newEnv(t, nil)
	s, err := e.b.Build(context.Background())
	if err != nil {
		t.Fatalf("Build() of an empty inventory = %v", err)
	}
	if s.Records != 0 || s.Files != 0 {
		t.Errorf("Build() = %d records, %d files, want 0, 0", s.Records, s.Files)
	}
	if _, err := e.reg.LatestSnapshot(context.Background()); err != nil {
		t.Errorf("LatestSnapshot() = %v, want the empty snapshot published", err)
	}
	raw := readAll(t, e.dir, s.ManifestKey, 0, -1)
	if !bytes.Contains(raw, []byte(`"files":[]`)) {
		t.Errorf("manifest = %s, want an empty files array", raw)
	}
	m, err := snapshot.ReadManifest(context.Background(), e.dir, s.ManifestKey)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	next, n, more, err := m.CopyRecords(context.Background(), e.dir, snapshot.Position{}, 10, nil, &out, []byte(","))
	if err != nil || n != 0 || more || next != (snapshot.Position{}) || out.Len() != 0 {
		t.Errorf("CopyRecords() on an empty snapshot = %v, %d, %v, %v, %q; want {0 0}, 0, false, nil, empty", next, n, more, err, out.String())
	}
}

// flatLine is a line of the snapshot with its position.
type flatLine struct {
	pos  snapshot.Position
	line []byte
}

func TestCopyRecordsEveryPosition(t *testing.T) {
	// Small enough to try every (position, n): members of 5 lines, files of
	// up to 12 records, groups smaller than a member and one of 3 files.
	rows := fleet(3, []group{{0, certinv.GroupUnassigned, 3}, {5, "Servers", 30}, {12, "Laptops", 8}, {4414, "Kiosks", 2}})
	e := newEnv(t, rows)
	e.b.LinesPerMember, e.b.RecordsPerFile = 5, 12
	s, err := e.b.Build(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	m, err := snapshot.ReadManifest(context.Background(), e.dir, s.ManifestKey)
	if err != nil {
		t.Fatal(err)
	}
	all := lines(rows)
	filters := []struct {
		name    string
		include func(*snapshot.File) bool
	}{
		{"all", nil},
		{"group 5", func(f *snapshot.File) bool { return f.GroupID == 5 }},
		{"not group 5", func(f *snapshot.File) bool { return f.GroupID != 5 }},
		{"first and last", func(f *snapshot.File) bool { return f.GroupID == 0 || f.GroupID == 4414 }},
		{"none", func(*snapshot.File) bool { return false }},
	}
	seps := []string{",", ",\n", ""}
	for _, flt := range filters {
		t.Run(flt.name, func(t *testing.T) {
			// The model: the included lines in order, with their positions.
			var inc []flatLine
			next := 0
			for i := range m.Files {
				f := &m.Files[i]
				for l := int64(0); l < f.Records; l++ {
					if flt.include == nil || flt.include(f) {
						inc = append(inc, flatLine{snapshot.Position{File: i, Line: l}, all[next]})
					}
					next++
				}
			}
			if got := m.Records(flt.include); got != int64(len(inc)) {
				t.Errorf("Records() = %d, want %d", got, len(inc))
			}
			end := snapshot.Position{File: len(m.Files)}
			// index of the first included line at or after p
			firstAt := func(p snapshot.Position) int {
				return slices.IndexFunc(inc, func(l flatLine) bool {
					return l.pos.File > p.File || (l.pos.File == p.File && l.pos.Line >= p.Line)
				})
			}
			var out bytes.Buffer
			for fi := 0; fi <= len(m.Files); fi++ {
				maxLine := int64(0)
				if fi < len(m.Files) {
					maxLine = m.Files[fi].Records
				}
				for line := int64(0); line <= maxLine; line++ {
					from := snapshot.Position{File: fi, Line: line}
					start := firstAt(from)
					if start < 0 {
						start = len(inc)
					}
					for n := int64(0); n <= int64(len(inc)-start)+1; n++ {
						sep := seps[int(n+line)%len(seps)]
						out.Reset()
						next, copied, more, err := m.CopyRecords(context.Background(), e.dir, from, n, flt.include, &out, []byte(sep))
						if err != nil {
							t.Fatalf("CopyRecords(%v, %d) = %v", from, n, err)
						}
						stop := min(start+int(n), len(inc))
						var want []byte
						for i := start; i < stop; i++ {
							if i > start {
								want = append(want, sep...)
							}
							want = append(want, inc[i].line...)
						}
						wantNext := end
						if stop < len(inc) {
							wantNext = inc[stop].pos
						}
						if !bytes.Equal(out.Bytes(), want) || copied != int64(stop-start) || next != wantNext || more != (stop < len(inc)) {
							t.Fatalf("CopyRecords(%v, %d, sep %q) = next %v, copied %d, more %v, %d bytes; want %v, %d, %v, %d bytes",
								from, n, sep, next, copied, more, out.Len(), wantNext, stop-start, stop < len(inc), len(want))
						}
					}
				}
			}
		})
	}
}

// Paging through a snapshot with the returned positions yields every record
// once, whatever the page size.
func TestCopyRecordsPaging(t *testing.T) {
	rows := fleet(4, testGroups)
	e := newEnv(t, rows)
	s, err := e.b.Build(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	m, err := snapshot.ReadManifest(context.Background(), e.dir, s.ManifestKey)
	if err != nil {
		t.Fatal(err)
	}
	want := joinLines(lines(rows))
	for _, size := range []int64{1, 6, 7, 8, 49, 50, 51, 1000} {
		var got bytes.Buffer
		pos, more := snapshot.Position{}, true
		pages := 0
		for more {
			var n int64
			pos, n, more, err = m.CopyRecords(context.Background(), e.dir, pos, size, nil, &got, []byte("\n"))
			if err != nil {
				t.Fatalf("page %d of size %d: %v", pages, size, err)
			}
			if n == 0 {
				t.Fatalf("page %d of size %d copied nothing with more records to come", pages, size)
			}
			got.WriteByte('\n')
			pages++
		}
		if !bytes.Equal(got.Bytes(), want) {
			t.Errorf("pages of %d: %d bytes, want %d", size, got.Len(), len(want))
		}
		if wantPages := (int64(len(rows)) + size - 1) / size; int64(pages) != wantPages {
			t.Errorf("pages of %d: %d pages, want %d", size, pages, wantPages)
		}
	}
}

type failWriter struct{ after int }

var errWrite = errors.New("client went away")

func (w *failWriter) Write(p []byte) (int, error) {
	if w.after <= 0 {
		return 0, errWrite
	}
	w.after--
	return len(p), nil
}

func TestCopyRecordsErrors(t *testing.T) {
	rows := fleet(5, testGroups)
	e := newEnv(t, rows)
	s, err := e.b.Build(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	m, err := snapshot.ReadManifest(context.Background(), e.dir, s.ManifestKey)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, from := range []snapshot.Position{
		{File: -1},
		{File: 0, Line: -1},
		{File: 0, Line: m.Files[0].Records + 1},
		{File: len(m.Files), Line: 1},
		{File: len(m.Files) + 1},
	} {
		_, _, _, err := m.CopyRecords(ctx, e.dir, from, 10, nil, io.Discard, nil)
		if certinv.KindOf(err) != certinv.EBadRequest {
			t.Errorf("CopyRecords(%v) = %v, want %s", from, err, certinv.EBadRequest)
		}
	}

	if _, _, _, err := m.CopyRecords(ctx, e.dir, snapshot.Position{}, 1000, nil, &failWriter{after: 0}, []byte(",")); !errors.Is(err, errWrite) {
		t.Errorf("CopyRecords() to a failing writer = %v, want %v", err, errWrite)
	}

	// A manifest that claims more records than its file holds.
	bad := *m
	bad.Files = slices.Clone(m.Files)
	bad.Files[1].Records++
	if _, _, _, err := bad.CopyRecords(ctx, e.dir, snapshot.Position{File: 1}, 1000, nil, io.Discard, nil); err == nil {
		t.Errorf("CopyRecords() past the end of a file = nil, want an error")
	}
	// A missing part file.
	if err := e.dir.DeleteContainer(ctx, snapshot.Container(s.ID)); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := m.CopyRecords(ctx, e.dir, snapshot.Position{}, 10, nil, io.Discard, nil); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("CopyRecords() of a deleted snapshot = %v, want fs.ErrNotExist", err)
	}
}

func TestReadManifestRefusesDamage(t *testing.T) {
	ctx := context.Background()
	dir, err := blob.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	file := func(members string) string {
		return `{"snapshotId":"s","linesPerMember":2,"files":[{"key":"export-s/a","records":5,"size":100,"members":` + members + `}]}`
	}
	tests := []struct {
		name, manifest string
		ok             bool
	}{
		{"valid", file("[0,10,20]"), true},
		{"not json", "{", false},
		{"zero lines per member", `{"snapshotId":"s","linesPerMember":0,"files":[]}`, false},
		{"too few members", file("[0,10]"), false},
		{"too many members", file("[0,10,20,30]"), false},
		{"first member not at 0", file("[1,10,20]"), false},
		{"members out of order", file("[0,20,10]"), false},
		{"member past the end", file("[0,10,100]"), false},
		{"file outside the container", `{"snapshotId":"s","linesPerMember":2,"files":[{"key":"export-t/a","records":1,"size":10,"members":[0]}]}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := "m/" + strings.ReplaceAll(tt.name, " ", "-")
			if err := dir.Put(ctx, key, strings.NewReader(tt.manifest)); err != nil {
				t.Fatal(err)
			}
			_, err := snapshot.ReadManifest(ctx, dir, key)
			if (err == nil) != tt.ok {
				t.Errorf("ReadManifest(%s) = %v, want ok=%v", tt.manifest, err, tt.ok)
			}
		})
	}
}

// failBucket is a Dir whose Put fails for keys that match.
type failBucket struct {
	*blob.Dir
	fail func(key string) bool
	// halfway makes the failing Put read half its input first.
	halfway bool
}

var errPut = errors.New("disk full")

func (b *failBucket) Put(ctx context.Context, key string, r io.Reader) error {
	if b.fail(key) {
		if b.halfway {
			buf := make([]byte, 4096)
			_, _ = r.Read(buf)
		}
		return errPut
	}
	return b.Dir.Put(ctx, key, r)
}

func exportContainers(t *testing.T, d *blob.Dir) []string {
	t.Helper()
	names, err := d.Containers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return slices.DeleteFunc(names, func(n string) bool { return !strings.HasPrefix(n, "export-") })
}

func TestBuildFailurePublishesNothing(t *testing.T) {
	rows := fleet(6, testGroups)
	tests := []struct {
		name  string
		setup func(e *env, cancel context.CancelFunc)
		want  error // nil: rows out of order
	}{
		{"put of a later part file fails", func(e *env, _ context.CancelFunc) {
			e.b.Bucket = &failBucket{Dir: e.dir, fail: func(k string) bool { return strings.Contains(k, "_RbacGroupId=12/") }}
		}, errPut},
		{"put fails midway", func(e *env, _ context.CancelFunc) {
			e.b.Bucket = &failBucket{Dir: e.dir, halfway: true, fail: func(k string) bool { return strings.Contains(k, "part-00001") }}
		}, errPut},
		{"manifest put fails", func(e *env, _ context.CancelFunc) {
			e.b.Bucket = &failBucket{Dir: e.dir, fail: func(k string) bool { return strings.HasSuffix(k, "manifest.json") }}
		}, errPut},
		{"context cancelled midway", func(e *env, cancel context.CancelFunc) {
			e.src.afterRow = func(i int) error {
				if i == 100 {
					cancel()
				}
				return nil
			}
		}, context.Canceled},
		{"inventory read fails", func(e *env, _ context.CancelFunc) {
			e.src.afterRow = func(i int) error {
				if i == 150 {
					return errWrite
				}
				return nil
			}
		}, errWrite},
		{"publish fails", func(e *env, _ context.CancelFunc) {
			e.reg.publishErr = errPut
		}, errPut},
		{"rows out of group order", func(e *env, _ context.CancelFunc) {
			e.src.rows = append(slices.Clone(e.src.rows[60:]), e.src.rows[:60]...)
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, rows)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			tt.setup(e, cancel)
			s, err := e.b.Build(ctx)
			switch {
			case tt.want == nil && (err == nil || !strings.Contains(err.Error(), "out of order")):
				t.Errorf("Build() = %v, %v; want an error about rows out of order", s, err)
			case tt.want != nil && !errors.Is(err, tt.want):
				t.Errorf("Build() = %v, %v; want an error wrapping %v", s, err, tt.want)
			}
			if _, err := e.reg.LatestSnapshot(context.Background()); certinv.KindOf(err) != certinv.ENotFound {
				t.Errorf("LatestSnapshot() after a failed build = %v, want %s", err, certinv.ENotFound)
			}
			if c := exportContainers(t, e.dir); len(c) != 0 {
				t.Errorf("containers after a failed build = %q, want none", c)
			}
		})
	}
}

func TestBuildIfChanged(t *testing.T) {
	e := newEnv(t, fleet(7, testGroups[:2]))
	ctx := context.Background()
	s1, built, err := e.b.BuildIfChanged(ctx)
	if err != nil || !built {
		t.Fatalf("BuildIfChanged() with no snapshot = %v, %v, %v; want a build", s1, built, err)
	}
	s2, built, err := e.b.BuildIfChanged(ctx)
	if err != nil || built || s2.ID != s1.ID {
		t.Errorf("BuildIfChanged() at the same version = %v, %v, %v; want the latest %s and false", s2, built, err, s1.ID)
	}
	if n := e.src.reads.Load(); n != 1 {
		t.Errorf("inventory read %d times, want once", n)
	}
	e.src.version = 8
	s3, built, err := e.b.BuildIfChanged(ctx)
	if err != nil || !built || s3.ID == s1.ID || s3.Version != 8 {
		t.Errorf("BuildIfChanged() at a new version = %v, %v, %v; want a new snapshot of version 8", s3, built, err)
	}
}

func TestRetire(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, fleet(8, testGroups[:1]))
	var ids []string
	for range 3 {
		s, err := e.b.Build(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, s.ID)
		e.clock.Add(time.Hour)
	}
	// now t0+3h: the first was superseded at t0+1h, the second at t0+2h.

	// Garbage: a failed build 2h ago, one 10 minutes ago, one without a
	// marker, and a container that is not a snapshot's.
	putMarker := func(c string, at time.Time) {
		if err := e.dir.Put(ctx, c+"/build.json", strings.NewReader(`{"startedAt":"`+at.Format(time.RFC3339)+`"}`)); err != nil {
			t.Fatal(err)
		}
	}
	putMarker("export-old-failure", e.clock.Now().Add(-2*time.Hour))
	putMarker("export-running", e.clock.Now().Add(-10*time.Minute))
	for _, k := range []string{"export-no-marker/x", "other/x"} {
		if err := e.dir.Put(ctx, k, strings.NewReader("x")); err != nil {
			t.Fatal(err)
		}
	}

	n, err := e.b.Retire(ctx, 90*time.Minute)
	if err != nil || n != 1 {
		t.Fatalf("Retire(90m) = %d, %v; want 1, nil", n, err)
	}
	if !e.reg.retired[ids[0]] || e.reg.retired[ids[1]] || e.reg.retired[ids[2]] {
		t.Errorf("retired = %v, want only the first snapshot %s", e.reg.retired, ids[0])
	}
	wantC := []string{"export-" + ids[1], "export-" + ids[2], "export-no-marker", "export-running"}
	slices.Sort(wantC)
	got := exportContainers(t, e.dir)
	slices.Sort(got)
	if !slices.Equal(got, wantC) {
		t.Errorf("containers after Retire = %q, want %q", got, wantC)
	}

	// An hour later the unmarked garbage and the stalled build go too, and
	// the second snapshot is retired; the latest never is.
	e.clock.Add(61 * time.Minute)
	n, err = e.b.Retire(ctx, 0)
	if err != nil || n != 1 {
		t.Fatalf("Retire(0) = %d, %v; want 1, nil", n, err)
	}
	got = exportContainers(t, e.dir)
	if want := []string{"export-" + ids[2]}; !slices.Equal(got, want) {
		t.Errorf("containers after the second Retire = %q, want %q", got, want)
	}
	if _, err := e.reg.Snapshot(ctx, ids[2]); err != nil {
		t.Errorf("Snapshot(latest) after Retire = %v, want it kept", err)
	}
	names, _ := e.dir.Containers(ctx)
	if !slices.Contains(names, "other") {
		t.Errorf("containers after Retire = %q, want the foreign container kept", names)
	}
}

// A long build logs its progress.
func TestBuildLogsProgress(t *testing.T) {
	e := newEnv(t, fleet(9, testGroups))
	var logs bytes.Buffer
	e.b.Log = slog.New(slog.NewTextHandler(&logs, nil))
	e.b.Now = func() time.Time { e.clock.Add(time.Second); return e.clock.Now() }
	if _, err := e.b.Build(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, msg := range []string{"snapshot build progress", "records_per_second", "snapshot published"} {
		if !strings.Contains(logs.String(), msg) {
			t.Errorf("build log = %s, want it to contain %q", logs.String(), msg)
		}
	}
}
