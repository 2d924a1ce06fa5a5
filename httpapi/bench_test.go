package httpapi

import (
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"
)

// discardWriter is a ResponseWriter that counts and drops the body.
type discardWriter struct {
	h      http.Header
	status int
	n      int64
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) WriteHeader(s int)   { w.status = s }
func (w *discardWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return len(p), nil
}

// BenchmarkPage serves one page of pageSize=200000 end to end (token check,
// skiptoken, manifest, gunzip of the part files, copy into the response)
// from an inventory of that many records in SQLite and a built snapshot.
// CERTINV_BENCH_RECORDS changes the inventory's size (default 200000).
//
//	go test -run '^$' -bench BenchmarkPage -benchmem ./httpapi
func BenchmarkPage(b *testing.B) {
	records := 200000
	if s := os.Getenv("CERTINV_BENCH_RECORDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 64 {
			b.Fatalf("CERTINV_BENCH_RECORDS=%q: want an integer of at least 64", s)
		}
		records = n
	}
	e := newEnv(b)
	e.builder.RecordsPerFile = 0 // the defaults: 1,000,000 records a file, 1,000 lines a member
	e.builder.LinesPerMember = 0
	const perDevice = 64
	devices := records / perDevice
	for from := 0; from < devices; from += 500 {
		e.addDevices(from, min(from+500, devices), perDevice, groupByThree)
	}
	snap := e.build()
	tok := e.reader()
	target := PathPages + "?pageSize=" + strconv.Itoa(MaxPageSize)

	// One page to size it.
	w := &discardWriter{h: http.Header{}}
	e.srv.ServeHTTP(w, pageRequest(target, tok))
	if w.status != http.StatusOK {
		b.Fatalf("page = %d", w.status)
	}
	b.SetBytes(w.n)
	b.ReportMetric(float64(snap.Records), "records/page")
	b.ResetTimer()
	for b.Loop() {
		w := &discardWriter{h: http.Header{}}
		e.srv.ServeHTTP(w, pageRequest(target, tok))
		if w.status != http.StatusOK {
			b.Fatalf("page = %d", w.status)
		}
	}
}

func pageRequest(target, tok string) *http.Request {
	r := httptest.NewRequest("GET", target, nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	return r
}
