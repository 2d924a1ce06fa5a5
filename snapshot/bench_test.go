package snapshot_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/certinv/certinv"
	"github.com/certinv/certinv/blob"
	"github.com/certinv/certinv/snapshot"
)

// The benchmarks compare each hot path with a floor measured in the same run:
//
//	go test -run '^$' -bench . -benchtime 1x ./snapshot            # each benchmark alone
//	go test -run '^$' -bench Ratios ./snapshot                     # the targets, as ratios
//
// CERTINV_BENCH_RECORDS sets the fleet size (default 100000; the targets are
// stated at 1000000).

func benchRecords(b *testing.B) int {
	n := 100_000
	if v := os.Getenv("CERTINV_BENCH_RECORDS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1000 {
			b.Fatalf("CERTINV_BENCH_RECORDS=%q: want an integer of at least 1000", v)
		}
	}
	return n
}

type benchFleet struct {
	rows []certinv.InventoryRow
	recs []certinv.Record
	raw  int64 // NDJSON bytes
}

var (
	fleetMu    sync.Mutex
	fleetCache = map[int]*benchFleet{}
)

// benchGroups spreads n records over 10 RBAC groups.
func benchGroups(n int) []group {
	gs := make([]group, 10)
	for i := range gs {
		gs[i] = group{id: int64(100 + i), name: fmt.Sprintf("Group %d", i), records: n / 10}
	}
	gs[9].records += n % 10
	return gs
}

func getFleet(n int) *benchFleet {
	fleetMu.Lock()
	defer fleetMu.Unlock()
	if f := fleetCache[n]; f != nil {
		return f
	}
	rows, recs := fleetRecords(42, benchGroups(n))
	f := &benchFleet{rows: rows, recs: recs}
	var buf []byte
	for i := range recs {
		buf = recs[i].AppendJSON(buf[:0])
		f.raw += int64(len(buf)) + 1
	}
	fleetCache[n] = f
	return f
}

func benchBuilder(b *testing.B, f *benchFleet, dir *blob.Dir) *snapshot.Builder {
	reg := &memRegistry{now: time.Now}
	return &snapshot.Builder{
		Source:   &rowsSource{version: 1, rows: f.rows},
		Registry: reg,
		Bucket:   dir,
		OrgID:    testOrg,
	}
}

// BenchmarkBuild builds a snapshot of the fleet into a Dir (files synced).
func BenchmarkBuild(b *testing.B) {
	f := getFleet(benchRecords(b))
	dir, err := blob.NewDir(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	bl := benchBuilder(b, f, dir)
	b.SetBytes(f.raw)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		s, err := bl.Build(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := dir.DeleteContainer(context.Background(), snapshot.Container(s.ID)); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(len(f.rows))*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkBuildFloor is the least a build can cost: encoding the same
// records (Record.AppendJSON) as NDJSON and gzipping them at the same level,
// in chunks of the same size on as many goroutines, in memory.
func BenchmarkBuildFloor(b *testing.B) {
	f := getFleet(benchRecords(b))
	b.SetBytes(f.raw)
	b.ReportAllocs()
	for b.Loop() {
		buildFloor(f.recs, snapshot.DefaultLevel, snapshot.DefaultLinesPerMember, runtime.GOMAXPROCS(0))
	}
	b.ReportMetric(float64(len(f.rows))*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

func buildFloor(recs []certinv.Record, level, chunk, workers int) (compressed int64) {
	return encodeFloor(recs, level, chunk, workers)
}

// encodeFloor encodes recs as NDJSON in chunks of chunk lines and gzips each
// chunk at level, on workers goroutines, in memory.
func encodeFloor[T any, P interface {
	*T
	AppendJSON([]byte) []byte
}](recs []T, level, chunk, workers int) (compressed int64) {
	var next, total atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			zw, _ := gzip.NewWriterLevel(io.Discard, level)
			var raw []byte
			var out bytes.Buffer
			for {
				i := int(next.Add(1)-1) * chunk
				if i >= len(recs) {
					return
				}
				raw = raw[:0]
				for j := i; j < min(i+chunk, len(recs)); j++ {
					raw = P(&recs[j]).AppendJSON(raw)
					raw = append(raw, '\n')
				}
				out.Reset()
				zw.Reset(&out)
				zw.Write(raw)
				zw.Close()
				total.Add(int64(out.Len()))
			}
		})
	}
	wg.Wait()
	return total.Load()
}

// servedSnapshot is a snapshot of the bench fleet, built once per size.
type servedSnapshot struct {
	dir *blob.Dir
	m   *snapshot.Manifest
	gz  [][]byte // the part files
}

var (
	servedMu    sync.Mutex
	servedCache = map[int]*servedSnapshot{}
)

func getServed(b *testing.B, n int) *servedSnapshot {
	servedMu.Lock()
	defer servedMu.Unlock()
	if s := servedCache[n]; s != nil {
		return s
	}
	root, err := os.MkdirTemp("", "certinv-bench-")
	if err != nil {
		b.Fatal(err)
	}
	// The cache outlives a benchmark's TempDir; the process's end removes
	// nothing, so remove it when the package's benchmarks are done.
	benchCleanup = append(benchCleanup, func() { os.RemoveAll(root) })
	dir, err := blob.NewDir(root)
	if err != nil {
		b.Fatal(err)
	}
	s, err := benchBuilder(b, getFleet(n), dir).Build(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	m, err := snapshot.ReadManifest(context.Background(), dir, s.ManifestKey)
	if err != nil {
		b.Fatal(err)
	}
	sv := &servedSnapshot{dir: dir, m: m}
	for _, f := range m.Files {
		data, err := os.ReadFile(dir.Root() + "/" + f.Key)
		if err != nil {
			b.Fatal(err)
		}
		sv.gz = append(sv.gz, data)
	}
	servedCache[n] = sv
	return sv
}

var benchCleanup []func()

func TestMain(m *testing.M) {
	code := m.Run()
	for _, f := range benchCleanup {
		f()
	}
	os.Exit(code)
}

// pageSize is the page of the CopyRecords benchmarks: the API's largest.
func pageSize(n int) int64 { return min(200_000, int64(n)) }

// BenchmarkCopyRecords serves the first page (200,000 records, or the whole
// fleet if smaller) to io.Discard. Its MB/s count uncompressed bytes, as
// BenchmarkGunzipFloor's do.
func BenchmarkCopyRecords(b *testing.B) {
	n := benchRecords(b)
	sv := getServed(b, n)
	page := pageSize(n)
	b.SetBytes(pageBytes(getFleet(n), page))
	b.ReportAllocs()
	for b.Loop() {
		_, copied, _, err := sv.m.CopyRecords(context.Background(), sv.dir, snapshot.Position{}, page, nil, io.Discard, []byte(","))
		if err != nil || copied != page {
			b.Fatalf("CopyRecords() = %d, %v; want %d", copied, err, page)
		}
	}
}

// pageBytes is the NDJSON size of the first page records.
func pageBytes(f *benchFleet, page int64) int64 {
	var total int64
	var buf []byte
	for i := range page {
		buf = f.recs[i].AppendJSON(buf[:0])
		total += int64(len(buf)) + 1
	}
	return total
}

// BenchmarkGunzipFloor gunzips, from memory to io.Discard, the same members
// that BenchmarkCopyRecords reads: the least serving a page can cost.
func BenchmarkGunzipFloor(b *testing.B) {
	n := benchRecords(b)
	sv := getServed(b, n)
	page := pageSize(n)
	parts := pageMembers(sv, page)
	b.SetBytes(pageBytes(getFleet(n), page))
	b.ReportAllocs()
	zr := new(gzip.Reader)
	for b.Loop() {
		for _, p := range parts {
			if err := zr.Reset(bytes.NewReader(p)); err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, zr); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// pageMembers returns, per file, the compressed bytes of the members that
// hold the first page records.
func pageMembers(sv *servedSnapshot, page int64) [][]byte {
	var parts [][]byte
	lpm := int64(sv.m.LinesPerMember)
	for i, f := range sv.m.Files {
		if page <= 0 {
			break
		}
		take := min(page, f.Records)
		page -= take
		end := f.Size
		if k := (take-1)/lpm + 1; k < int64(len(f.Members)) {
			end = f.Members[k]
		}
		parts = append(parts, sv.gz[i][:end])
	}
	return parts
}

// firstByte records when the first byte of a page arrives, then discards.
type firstByte struct {
	start time.Time
	ttfb  time.Duration
}

func (w *firstByte) Write(p []byte) (int, error) {
	if w.ttfb == 0 {
		w.ttfb = time.Since(w.start)
	}
	return len(p), nil
}

// positionOf returns the position of the i-th record of the snapshot.
func positionOf(m *snapshot.Manifest, i int64) snapshot.Position {
	for f := range m.Files {
		if i < m.Files[f].Records {
			return snapshot.Position{File: f, Line: i}
		}
		i -= m.Files[f].Records
	}
	return snapshot.Position{File: len(m.Files)}
}

// ttfb returns the median time to the first byte of a page at from.
func ttfb(b *testing.B, sv *snapshot.Manifest, dir *blob.Dir, from snapshot.Position, page int64) time.Duration {
	var ds []time.Duration
	for range 31 {
		w := &firstByte{start: time.Now()}
		if _, _, _, err := sv.CopyRecords(context.Background(), dir, from, page, nil, w, []byte(",")); err != nil {
			b.Fatal(err)
		}
		ds = append(ds, w.ttfb)
	}
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// heapSampler samples the live heap every so many writes of a page.
type heapSampler struct {
	writes int
	peak   uint64
}

func (h *heapSampler) Write(p []byte) (int, error) {
	h.writes++
	if h.writes%64 == 0 {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		h.peak = max(h.peak, ms.HeapAlloc)
	}
	return len(p), nil
}

func heapNow() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// buildPeakHeap builds a snapshot of n records and returns the peak of the
// live heap above the fleet in memory, sampled after a GC 20 times during
// the build (HeapAlloc without a GC would count garbage, which GOGC lets grow
// with the live heap, here mostly the fleet itself), and the bytes the build
// allocated.
func buildPeakHeap(b *testing.B, n int) (peak, alloc uint64) {
	f := getFleet(n)
	dir, err := blob.NewDir(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	bl := benchBuilder(b, f, dir)
	src := bl.Source.(*rowsSource)
	base := heapNow()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	every := max(1, n/20)
	src.afterRow = func(i int) error {
		if i%every == every/2 {
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
		}
		return nil
	}
	s, err := bl.Build(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if err := dir.DeleteContainer(context.Background(), snapshot.Container(s.ID)); err != nil {
		b.Fatal(err)
	}
	// The samples count the allocations of the samples' own ReadMemStats
	// calls; they are small.
	alloc = after.TotalAlloc - before.TotalAlloc
	if peak < base {
		return 0, alloc
	}
	return peak - base, alloc
}

// BenchmarkRatios measures each hot path and its floor in one run,
// alternating them so that a machine shared with other work weighs on both
// alike, and reports the user-facing targets as ratios of medians:
//
//	build/floor      <= 1.5   (time of a build over the floor's)
//	page/gunzip      >= 0.7   (speed of a page over a bare gunzip's)
//	ttfb50/ttfb1     <= 2     (first byte of page 50 over page 1)
//	page-heap-MB     <= 64    (heap growth while serving a page)
//
// and the build's allocation and peak heap at n/4 and n records, to show
// they are flat. It runs once whatever -benchtime says.
func BenchmarkRatios(b *testing.B) {
	n := benchRecords(b)
	f := getFleet(n)
	sv := getServed(b, n)
	page := pageSize(n)
	pageRaw := pageBytes(f, page)
	for b.Loop() {
		dir, err := blob.NewDir(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		bl := benchBuilder(b, f, dir)
		build := func() {
			s, err := bl.Build(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			if err := dir.DeleteContainer(context.Background(), snapshot.Container(s.ID)); err != nil {
				b.Fatal(err)
			}
		}
		floor := func() {
			buildFloor(f.recs, snapshot.DefaultLevel, snapshot.DefaultLinesPerMember, runtime.GOMAXPROCS(0))
		}
		tBuild, tFloor := alternate(build, floor, 5)

		serve := func() {
			if _, _, _, err := sv.m.CopyRecords(context.Background(), sv.dir, snapshot.Position{}, page, nil, io.Discard, []byte(",")); err != nil {
				b.Fatal(err)
			}
		}
		parts := pageMembers(sv, page)
		zr := new(gzip.Reader)
		gunzip := func() {
			for _, p := range parts {
				if err := zr.Reset(bytes.NewReader(p)); err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, zr); err != nil {
					b.Fatal(err)
				}
			}
		}
		tPage, tGunzip := alternate(serve, gunzip, 15)

		// Pages of the API's default size (50,000) start on member
		// boundaries; so do pages of n/50 rounded to whole members, which
		// put page 50 at the end of the fleet. The worst case starts one
		// line before a member's end: it inflates LinesPerMember-1 lines it
		// does not serve, a bounded cost whatever the depth.
		lpm := int64(snapshot.DefaultLinesPerMember)
		size := max(lpm, int64(n)/50/lpm*lpm)
		t1 := ttfb(b, sv.m, sv.dir, snapshot.Position{}, size)
		t50 := ttfb(b, sv.m, sv.dir, positionOf(sv.m, 49*size), size)
		worstAt := positionOf(sv.m, int64(n)-lpm-1)
		tWorst := ttfb(b, sv.m, sv.dir, worstAt, size)

		base := heapNow()
		h := &heapSampler{}
		if _, _, _, err := sv.m.CopyRecords(context.Background(), sv.dir, snapshot.Position{}, page, nil, h, []byte(",")); err != nil {
			b.Fatal(err)
		}
		var pageHeap uint64
		if h.peak > base {
			pageHeap = h.peak - base
		}
		smallPeak, smallAlloc := buildPeakHeap(b, n/4)
		largePeak, largeAlloc := buildPeakHeap(b, n)

		b.ReportMetric(float64(tBuild)/float64(tFloor), "build/floor")
		b.ReportMetric(float64(tGunzip)/float64(tPage), "page/gunzip")
		b.ReportMetric(float64(t50)/float64(t1), "ttfb50/ttfb1")
		b.ReportMetric(float64(pageHeap)/(1<<20), "page-heap-MB")
		b.Logf("\n"+
			"records %d (%.0f MB NDJSON), cores %d, gzip level %d\n"+
			"build        %v  %.0f records/s\n"+
			"build floor  %v  %.0f records/s\n"+
			"build/floor  %.2f (target <= 1.5)\n"+
			"page of %d   %v  %.0f MB/s\n"+
			"gunzip floor %v  %.0f MB/s\n"+
			"page/gunzip  %.2f (target >= 0.7)\n"+
			"ttfb page 1 %v, page 50 %v (pages of %d): ratio %.2f (target <= 2)\n"+
			"ttfb worst case (a page starting at line %d of a member, at %v): %v\n"+
			"heap growth serving a page: %.2f MB (target <= 64)\n"+
			"build peak live heap:   %.1f MB at %d records, %.1f MB at %d records\n"+
			"build allocation:       %.1f MB at %d records, %.1f MB at %d records",
			n, float64(f.raw)/1e6, runtime.GOMAXPROCS(0), snapshot.DefaultLevel,
			tBuild, float64(n)/tBuild.Seconds(),
			tFloor, float64(n)/tFloor.Seconds(),
			float64(tBuild)/float64(tFloor),
			page, tPage, float64(pageRaw)/tPage.Seconds()/1e6,
			tGunzip, float64(pageRaw)/tGunzip.Seconds()/1e6,
			float64(tGunzip)/float64(tPage),
			t1, t50, size, float64(t50)/float64(t1),
			worstAt.Line%lpm, worstAt, tWorst,
			float64(pageHeap)/(1<<20),
			float64(smallPeak)/(1<<20), n/4, float64(largePeak)/(1<<20), n,
			float64(smallAlloc)/(1<<20), n/4, float64(largeAlloc)/(1<<20), n)
	}
}

// alternate runs a and b in turn, runs times each after one warm-up, and
// returns the median time of each.
func alternate(a, b func(), runs int) (ta, tb time.Duration) {
	a()
	b()
	var as, bs []time.Duration
	for range runs {
		start := time.Now()
		a()
		as = append(as, time.Since(start))
		start = time.Now()
		b()
		bs = append(bs, time.Since(start))
	}
	slices.Sort(as)
	slices.Sort(bs)
	return as[runs/2], bs[runs/2]
}

func mbps(r testing.BenchmarkResult) float64 {
	return float64(r.Bytes) * float64(r.N) / r.T.Seconds() / 1e6
}

// BenchmarkLevels compresses the fleet's lines in members of 1,000 lines at
// each gzip level, reporting the compression ratio: the grounds for
// DefaultLevel.
func BenchmarkLevels(b *testing.B) {
	f := getFleet(min(benchRecords(b), 50_000))
	for _, level := range []int{1, 2, 3, 4, 5, 6, 9} {
		b.Run(fmt.Sprintf("level=%d", level), func(b *testing.B) {
			b.SetBytes(f.raw)
			var out int64
			for b.Loop() {
				out = buildFloor(f.recs, level, snapshot.DefaultLinesPerMember, 1)
			}
			b.ReportMetric(float64(f.raw)/float64(out), "ratio")
		})
	}
}
