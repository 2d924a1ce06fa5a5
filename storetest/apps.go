package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/certinv/certinv"
)

// RunApps runs the contract suite of certinv.AppStore. open returns a new,
// empty store for each subtest; it arranges its own cleanup with t.Cleanup.
func RunApps(t *testing.T, open func(t *testing.T) certinv.AppStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s certinv.AppStore)
	}{
		{"Empty", testAppsEmpty},
		{"CreateAndRead", testAppCreate},
		{"DuplicateID", testAppDuplicate},
		{"List", testAppList},
		{"SetSecret", testAppSetSecret},
		{"Delete", testAppDelete},
		{"UnknownID", testAppUnknown},
		{"Concurrent", testAppConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

// at is the registration time of the first test app: with microseconds,
// to show that the store keeps them.
var at = time.Date(2026, 6, 1, 9, 30, 0, 123456000, time.UTC)

func newApp(n int, created time.Time) *certinv.App {
	h := sha256.Sum256(fmt.Appendf(nil, "secret %d", n))
	return &certinv.App{
		ID:              fmt.Sprintf("00000000-0000-4000-8000-%012d", n),
		Name:            fmt.Sprintf("app %d", n),
		Roles:           []string{certinv.RoleVulnerabilityReadAll, fmt.Sprintf("Role.%d", n)},
		SecretID:        fmt.Sprintf("10000000-0000-4000-8000-%012d", n),
		SecretHash:      h[:],
		CreatedAt:       created,
		SecretCreatedAt: created,
	}
}

func sameApp(got, want *certinv.App) bool {
	return got.ID == want.ID && got.Name == want.Name && slices.Equal(got.Roles, want.Roles) &&
		got.SecretID == want.SecretID && bytes.Equal(got.SecretHash, want.SecretHash) &&
		got.CreatedAt.Equal(want.CreatedAt) && got.SecretCreatedAt.Equal(want.SecretCreatedAt) &&
		got.CreatedAt.Location() == time.UTC && got.SecretCreatedAt.Location() == time.UTC
}

func wantKind(t *testing.T, call string, err error, kind certinv.ErrorKind) {
	t.Helper()
	if err == nil || certinv.KindOf(err) != kind {
		t.Errorf("%s = %v, want an error of kind %s", call, err, kind)
	}
}

func testAppsEmpty(t *testing.T, s certinv.AppStore) {
	apps, err := s.Apps(context.Background())
	if err != nil || len(apps) != 0 {
		t.Errorf("Apps() of a new store = %v, %v; want none", apps, err)
	}
}

func testAppCreate(t *testing.T, s certinv.AppStore) {
	ctx := context.Background()
	for _, want := range []*certinv.App{
		newApp(1, at),
		{ID: "00000000-0000-4000-8000-000000000002", Name: "", Roles: nil, SecretID: "s", SecretHash: make([]byte, 32), CreatedAt: at, SecretCreatedAt: at},
	} {
		if err := s.CreateApp(ctx, want); err != nil {
			t.Fatalf("CreateApp(%s): %v", want.ID, err)
		}
		got, err := s.App(ctx, want.ID)
		if err != nil {
			t.Fatalf("App(%s): %v", want.ID, err)
		}
		if !sameApp(got, want) {
			t.Errorf("App(%s) = %+v, want %+v", want.ID, got, want)
		}
	}
}

func testAppDuplicate(t *testing.T, s certinv.AppStore) {
	ctx := context.Background()
	first := newApp(1, at)
	if err := s.CreateApp(ctx, first); err != nil {
		t.Fatal(err)
	}
	dup := newApp(2, at.Add(time.Hour))
	dup.ID = first.ID
	wantKind(t, "CreateApp(same id)", s.CreateApp(ctx, dup), certinv.EConflict)
	if got, err := s.App(ctx, first.ID); err != nil || !sameApp(got, first) {
		t.Errorf("App(%s) after a refused duplicate = %+v, %v; want the first app unchanged", first.ID, got, err)
	}
}

func testAppList(t *testing.T, s certinv.AppStore) {
	ctx := context.Background()
	// Made out of order: the list is by creation time, then id.
	want := []*certinv.App{newApp(3, at), newApp(4, at), newApp(1, at.Add(time.Minute)), newApp(2, at.Add(2*time.Minute))}
	for _, i := range []int{2, 0, 3, 1} {
		if err := s.CreateApp(ctx, want[i]); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Apps(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("Apps() returned %d apps, want %d", len(got), len(want))
	}
	for i := range want {
		if !sameApp(got[i], want[i]) {
			t.Errorf("Apps()[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func testAppSetSecret(t *testing.T, s certinv.AppStore) {
	ctx := context.Background()
	a, b := newApp(1, at), newApp(2, at)
	for _, app := range []*certinv.App{a, b} {
		if err := s.CreateApp(ctx, app); err != nil {
			t.Fatal(err)
		}
	}
	h := sha256.Sum256([]byte("new secret"))
	later := at.Add(36 * time.Hour)
	if err := s.SetAppSecret(ctx, a.ID, "new-secret-id", h[:], later); err != nil {
		t.Fatalf("SetAppSecret: %v", err)
	}
	want := *a
	want.SecretID, want.SecretHash, want.SecretCreatedAt = "new-secret-id", h[:], later
	if got, err := s.App(ctx, a.ID); err != nil || !sameApp(got, &want) {
		t.Errorf("App(%s) after SetAppSecret = %+v, %v; want %+v", a.ID, got, err, &want)
	}
	if got, err := s.App(ctx, b.ID); err != nil || !sameApp(got, b) {
		t.Errorf("App(%s) of another app after SetAppSecret = %+v, %v; want it unchanged", b.ID, got, err)
	}
}

func testAppDelete(t *testing.T, s certinv.AppStore) {
	ctx := context.Background()
	a, b := newApp(1, at), newApp(2, at)
	for _, app := range []*certinv.App{a, b} {
		if err := s.CreateApp(ctx, app); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteApp(ctx, a.ID); err != nil {
		t.Fatalf("DeleteApp: %v", err)
	}
	_, err := s.App(ctx, a.ID)
	wantKind(t, "App(deleted)", err, certinv.ENotFound)
	wantKind(t, "DeleteApp(deleted)", s.DeleteApp(ctx, a.ID), certinv.ENotFound)
	apps, err := s.Apps(ctx)
	if err != nil || len(apps) != 1 || !sameApp(apps[0], b) {
		t.Errorf("Apps() after a delete = %v, %v; want only %s", apps, err, b.ID)
	}
}

func testAppUnknown(t *testing.T, s certinv.AppStore) {
	ctx := context.Background()
	const id = "00000000-0000-4000-8000-999999999999"
	_, err := s.App(ctx, id)
	wantKind(t, "App(unknown)", err, certinv.ENotFound)
	wantKind(t, "DeleteApp(unknown)", s.DeleteApp(ctx, id), certinv.ENotFound)
	wantKind(t, "SetAppSecret(unknown)", s.SetAppSecret(ctx, id, "x", make([]byte, 32), at), certinv.ENotFound)
}

// testAppConcurrent rotates one app's secret from several goroutines: every
// read sees one whole secret (id and hash of the same rotation), never a mix.
func testAppConcurrent(t *testing.T, s certinv.AppStore) {
	ctx := context.Background()
	app := newApp(1, at)
	if err := s.CreateApp(ctx, app); err != nil {
		t.Fatal(err)
	}
	hashOf := func(secretID string) []byte { h := sha256.Sum256([]byte(secretID)); return h[:] }
	if err := s.SetAppSecret(ctx, app.ID, "start", hashOf("start"), at); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				id := fmt.Sprintf("w%d-%d", w, i)
				if err := s.SetAppSecret(ctx, app.ID, id, hashOf(id), at.Add(time.Duration(i)*time.Second)); err != nil {
					errs <- err
					return
				}
				got, err := s.App(ctx, app.ID)
				if err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(got.SecretHash, hashOf(got.SecretID)) {
					errs <- fmt.Errorf("App() = secret id %s with the hash of another secret", got.SecretID)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
