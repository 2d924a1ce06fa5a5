package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/certinv/certinv/blob/azure"
	"github.com/certinv/certinv/postgres"
	"github.com/certinv/certinv/snapshot"
)

// The services of the distributed mode that the replica test runs against;
// scripts/services.sh starts them and sets these variables (scripts/test
// does both).
const (
	envTestPostgres = "CERTINV_TEST_POSTGRES"
	envTestAzure    = "CERTINV_TEST_AZURE"
	envTestRedis    = "CERTINV_TEST_REDIS"
)

// testService returns the setting of a service of scripts/services.sh, or
// fails the test: the distributed mode must not pass unseen.
func testService(t *testing.T, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("%s is not set: the two-replica test runs against real PostgreSQL, Azurite and Redis. "+
			"Run scripts/test (the README's test command), or scripts/services.sh start (as root) and then "+
			`. "$(scripts/services.sh env)"`, name)
	}
	return v
}

// testSchema makes an empty PostgreSQL schema, dropped when the test ends,
// and returns a URL whose connections use it: a fresh deployment.
func testSchema(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	base := testService(t, envTestPostgres)
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("%s=%q: want a postgres:// URL", envTestPostgres, base)
	}
	var b [6]byte
	rand.Read(b[:])
	schema := "certinv_replicas_" + hex.EncodeToString(b[:])
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect to %s: %v", envTestPostgres, err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, `CREATE SCHEMA `+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// testClock is the replicas' API clock: it stands still unless moved, so
// that rate-limit windows cannot slide during the test.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// lockedBuffer collects a replica's log, written by its goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// replica is one `certinv serve` running in this process.
type replica struct {
	name string
	base string // where it listens: http://127.0.0.1:PORT
	log  *lockedBuffer
}

// startReplica runs `certinv serve args...` with the API clock now, and
// returns once it listens. It stops when the test ends.
func startReplica(t *testing.T, name string, args []string, now func() time.Time) *replica {
	t.Helper()
	o, err := parseServe(args, io.Discard)
	if err != nil {
		t.Fatalf("certinv serve %s: %v", strings.Join(args, " "), err)
	}
	o.now = now
	ctx, cancel := context.WithCancel(context.Background())
	r := &replica{name: name, log: &lockedBuffer{}}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := serveOptionsRun(ctx, o, pw, r.log)
		pw.CloseWithError(io.EOF)
		done <- err
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("replica %s: serve: %v", name, err)
		}
		if t.Failed() {
			t.Logf("replica %s log:\n%s", name, r.log)
		}
	})
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("replica %s printed nothing: %v\n%s", name, err, r.log)
	}
	go io.Copy(io.Discard, pr)
	m := regexp.MustCompile(`listening on (\S+)\)`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("replica %s printed %q, want its address", name, line)
	}
	r.base = "http://" + m[1]
	return r
}

// readiness is GET /readyz of a replica.
func (r *replica) readiness(t *testing.T) (int, map[string]struct {
	Status  string
	Message string
	Details map[string]any
}) {
	t.Helper()
	resp, err := http.Get(r.base + "/readyz")
	if err != nil {
		t.Fatalf("replica %s: GET /readyz: %v", r.name, err)
	}
	defer resp.Body.Close()
	var body struct {
		Status string
		Checks map[string]struct {
			Status  string
			Message string
			Details map[string]any
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("replica %s: GET /readyz: %v", r.name, err)
	}
	return resp.StatusCode, body.Checks
}

// waitRound waits until the replica's snapshot schedule has run its first
// round and the replica is ready, and returns its builder's details.
func (r *replica) waitRound(t *testing.T) map[string]any {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		status, checks := r.readiness(t)
		if b := checks["snapshotBuilder"].Details; status == http.StatusOK && b["rounds"] != nil && b["rounds"].(float64) >= 1 {
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica %s not ready after 2 minutes: %d %+v", r.name, status, checks)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestReplicas runs two `certinv serve` replicas on the same PostgreSQL
// schema, Azurite account and Redis, as behind a load balancer: one builds
// the snapshot, the other does not; a traversal pages across both with
// one nextLink; the export's SAS URLs download straight from storage and
// hold the same records as the pages; and the rate limit is one for both.
func TestReplicas(t *testing.T) {
	ctx := context.Background()
	db := testSchema(t)
	blobCS := testService(t, envTestAzure)
	redisURL := testService(t, envTestRedis)
	keys := filepath.Join(t.TempDir(), "keys")
	const publicURL = "https://certinv.test" // the load balancer's
	const devices, certsPerDevice = 24, 10
	const records = devices * certsPerDevice

	// The fleet, seeded into the shared database, and the shared keys.
	mustRun(t, ctx, "keys", "--keys", keys)
	mustRun(t, ctx, "seed", "--db", db, "--devices", fmt.Sprint(devices), "--certs-per-device", fmt.Sprint(certsPerDevice), "--groups", "3", "--seed", "11")

	store, err := postgres.Open(ctx, db, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	bucket, err := azure.NewBucket(ctx, azure.Config{ConnectionString: blobCS})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // this deployment's snapshot containers
		snaps, _ := store.Snapshots(context.Background())
		for _, s := range snaps {
			bucket.DeleteContainer(context.Background(), snapshot.Container(s.ID))
		}
	})

	clock := &testClock{t: time.Now().UTC().Truncate(time.Second)}
	args := []string{"--db", db, "--blob", blobCS, "--redis", redisURL, "--redis-timeout", "5s", "--keys", keys,
		"--addr", "127.0.0.1:0", "--public-url", publicURL, "--snapshot-interval", "1h", "--log-level", "debug"}
	a := startReplica(t, "A", args, clock.Now)
	b := startReplica(t, "B", args, clock.Now)

	// One snapshot, built once: both schedules ran their first round; one
	// built, the other found it built or the lock taken.
	builtA, builtB := a.waitRound(t), b.waitRound(t)
	if got := builtA["builds"].(float64) + builtB["builds"].(float64); got != 1 {
		t.Errorf("builds: A %v (%v), B %v (%v); want 1 in all", builtA["builds"], builtA["lastOutcome"], builtB["builds"], builtB["lastOutcome"])
	}
	for _, r := range []*replica{a, b} {
		_, checks := r.readiness(t)
		for _, name := range []string{"database", "blobStorage", "redis", "snapshot"} {
			if checks[name].Status != "ok" {
				t.Errorf("replica %s: readiness check %s = %+v, want ok", r.name, name, checks[name])
			}
		}
		if k := checks["blobStorage"].Details["kind"]; k != "azure" {
			t.Errorf("replica %s: blob storage kind = %v, want azure", r.name, k)
		}
	}
	snaps, err := store.Snapshots(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(snaps) != 1 || snaps[0].Records != records {
		t.Fatalf("snapshots in the registry = %+v, want 1 of %d records", snaps, records)
	}

	token := strings.TrimSpace(mustRun(t, ctx, "token", "--db", db, "--keys", keys, "--app-id", "pager"))
	at := func(r *replica, link string) string { // the load balancer sends link to r
		if !strings.HasPrefix(link, publicURL+"/") {
			t.Fatalf("link %s is not under the public URL %s", link, publicURL)
		}
		return r.base + strings.TrimPrefix(link, publicURL)
	}

	// Page 1 from A, page 2 from B with A's nextLink, the rest alternating.
	var all []string
	var page2 []string
	link := publicURL + "/api/machines/CertificateAssessmentByMachine?pageSize=100"
	for i := 0; link != ""; i++ {
		r := []*replica{a, b}[i%2]
		req, _ := http.NewRequest(http.MethodGet, at(r, link), nil)
		req.Header.Set("Authorization", "Bearer "+token)
		var page struct {
			Value    []json.RawMessage `json:"value"`
			NextLink string            `json:"@odata.nextLink"`
		}
		doJSON(t, req, http.StatusOK, &page)
		for _, v := range page.Value {
			all = append(all, compact(t, v))
		}
		if i == 1 {
			page2 = all[100:]
		}
		link = page.NextLink
	}
	if len(all) != records || len(page2) != 100 {
		t.Fatalf("traversal across replicas: %d records, page 2 of %d; want %d and 100", len(all), len(page2), records)
	}
	// B's page 2 is A's own page 2: the same records whoever serves it.
	req, _ := http.NewRequest(http.MethodGet, a.base+"/api/machines/CertificateAssessmentByMachine?pageSize=200", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	var fromA struct{ Value []json.RawMessage }
	doJSON(t, req, http.StatusOK, &fromA)
	for i, v := range fromA.Value[100:200] {
		if compact(t, v) != page2[i] {
			t.Fatalf("record %d of page 2 from B differs from A's record %d", i, 100+i)
		}
	}

	// The export's SAS URLs point at storage, download without a token, and
	// hold the pages' records line for line.
	files := exportFiles(t, b.base, token, "?sasValidHours=1")
	account := regexp.MustCompile(`BlobEndpoint=([^;]+)`).FindStringSubmatch(blobCS)
	if account == nil {
		t.Fatalf("%s has no BlobEndpoint", envTestAzure)
	}
	layout := regexp.MustCompile(`^` + regexp.QuoteMeta(strings.TrimRight(account[1], "/")) +
		`/export-[0-9a-f-]{36}/\d{4}-\d\d-\d\d/\d{4}/CertificateAssessmentExport/json/OrgId=[0-9a-f-]{36}/_RbacGroupId=\d+/part-\d{5}-[0-9a-f-]{36}\.c000\.json\.gz\?.*\bsig=`)
	for _, f := range files {
		if !layout.MatchString(f) {
			t.Errorf("export URL %s is not a SAS URL of the storage account in the vendor's layout", f)
		}
		u, _ := url.Parse(f)
		if q := u.Query(); q.Get("sr") != "b" || q.Get("sp") != "r" || q.Get("se") == "" {
			t.Errorf("export URL %s: sr=%q sp=%q se=%q, want b, r and an expiry", f, q.Get("sr"), q.Get("sp"), q.Get("se"))
		}
	}
	if got := readExport(t, files); !equalLines(got, all) {
		t.Errorf("export files hold %d lines that differ from the %d records of the pages", len(got), len(all))
	}
	// No /files route: the storage account serves the files.
	u, _ := url.Parse(files[0])
	if resp, err := http.Get(a.base + "/files" + u.Path); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /files on a replica with Azure storage = %v %v, want 404", resp.Status, err)
	}

	// 31 JSON calls of one application, alternating replicas, at one
	// instant: 30 pass, the 31st gets 429 with the whole minute to wait.
	limited := strings.TrimSpace(mustRun(t, ctx, "token", "--db", db, "--keys", keys, "--app-id", "limits"))
	var codes []int
	var retryAfter string
	for i := range 31 {
		r := []*replica{a, b}[i%2]
		req, _ := http.NewRequest(http.MethodGet, r.base+"/api/machines/CertificateAssessmentByMachine?pageSize=1", nil)
		req.Header.Set("Authorization", "Bearer "+limited)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		codes = append(codes, resp.StatusCode)
		if resp.StatusCode == http.StatusTooManyRequests {
			retryAfter = resp.Header.Get("Retry-After")
		}
	}
	var ok, refused int
	for _, c := range codes {
		switch c {
		case http.StatusOK:
			ok++
		case http.StatusTooManyRequests:
			refused++
		}
	}
	if ok != 30 || refused != 1 || codes[30] != http.StatusTooManyRequests || retryAfter != "60" {
		t.Errorf("31 calls over two replicas: statuses %v (Retry-After %q), want 30 x 200 then one 429 with Retry-After 60", codes, retryAfter)
	}
	// A minute later, either replica lets the application call again.
	clock.Add(time.Minute)
	req, _ = http.NewRequest(http.MethodGet, a.base+"/api/machines/CertificateAssessmentByMachine?pageSize=1", nil)
	req.Header.Set("Authorization", "Bearer "+limited)
	var again struct{ Value []json.RawMessage }
	doJSON(t, req, http.StatusOK, &again)

	// An agent reports through B with the shared enrollment secret.
	secret, err := os.ReadFile(filepath.Join(keys, keyFileEnrollment))
	if err != nil {
		t.Fatal(err)
	}
	der, _ := newCertificate(t)
	report := fmt.Sprintf(`{"deviceId":%q,"deviceName":"replica-host.contoso.com","osPlatform":"Ubuntu 24.04","collectedAt":%q,"certificates":[{"path":"/etc/ssl/certs/r.pem","der":%q}]}`,
		strings.Repeat("cd", 20), time.Now().UTC().Format(time.RFC3339), base64.StdEncoding.EncodeToString(der))
	req, _ = http.NewRequest(http.MethodPost, b.base+"/api/agent/reports", strings.NewReader(report))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(secret)))
	req.Header.Set("Content-Type", "application/json")
	var ingested struct{ Stored int }
	doJSON(t, req, http.StatusOK, &ingested)
	if n, _, _, err := store.Stats(ctx); err != nil || n != devices+1 || ingested.Stored != 1 {
		t.Errorf("after a report through B: %d devices (%v), stored %d; want %d and 1", n, err, ingested.Stored, devices+1)
	}

	// Neither replica's log shows a secret.
	for _, r := range []*replica{a, b} {
		logs := r.log.String()
		key := regexp.MustCompile(`AccountKey=([^;]+)`).FindStringSubmatch(blobCS)
		for _, s := range []string{key[1], strings.TrimSpace(string(secret)), token} {
			if strings.Contains(logs, s) {
				t.Errorf("replica %s's log shows a secret", r.name)
			}
		}
	}
}

// TestRedisDown: with the rate limits in a Redis that does not answer, a
// JSON call is refused with 503 and Retry-After, and /readyz says why;
// with --rate-limit-fail-open the call passes and /readyz is degraded.
func TestRedisDown(t *testing.T) {
	ctx := context.Background()
	data := filepath.Join(t.TempDir(), "data")
	mustRun(t, ctx, "seed", "--data", data, "--devices", "3", "--certs-per-device", "2")
	token := strings.TrimSpace(mustRun(t, ctx, "token", "--data", data))
	// A port nothing listens on: taken, then closed.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "redis://:hunter2@" + ln.Addr().String() + "/0"
	ln.Close()

	for _, tc := range []struct {
		name       string
		failOpen   bool
		page       int
		ready      int
		redisState string
	}{
		{"fail closed", false, http.StatusServiceUnavailable, http.StatusServiceUnavailable, "failed"},
		{"fail open", true, http.StatusOK, http.StatusOK, "degraded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"--data", data, "--redis", down, "--redis-timeout", "200ms", "--addr", "127.0.0.1:0", "--snapshot-interval", "1h"}
			if tc.failOpen {
				args = append(args, "--rate-limit-fail-open")
			}
			r := startReplica(t, "single", args, time.Now)
			deadline := time.Now().Add(time.Minute)
			for { // the first snapshot
				resp, err := http.Get(r.base + "/healthz")
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						break
					}
				}
				if time.Now().After(deadline) {
					t.Fatalf("no snapshot after a minute")
				}
				time.Sleep(50 * time.Millisecond)
			}
			req, _ := http.NewRequest(http.MethodGet, r.base+"/api/machines/CertificateAssessmentByMachine?pageSize=1", nil)
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.page {
				t.Errorf("JSON call with Redis down = %d %s, want %d", resp.StatusCode, body, tc.page)
			}
			if tc.page == http.StatusServiceUnavailable {
				if ra := resp.Header.Get("Retry-After"); ra == "" || !strings.Contains(string(body), `"ServiceUnavailable"`) || !strings.Contains(string(body), "rate limit") {
					t.Errorf("503 = Retry-After %q, body %s; want a Retry-After and a ServiceUnavailable error about rate limits", ra, body)
				}
			}
			status, checks := r.readiness(t)
			if status != tc.ready || checks["redis"].Status != tc.redisState {
				t.Errorf("GET /readyz = %d, redis %+v; want %d and %s", status, checks["redis"], tc.ready, tc.redisState)
			}
			if logs := r.log.String(); strings.Contains(logs, "hunter2") {
				t.Errorf("the log shows Redis's password:\n%s", logs)
			}
		})
	}
}
