package sqlite

import (
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certinv/certinv"
	"github.com/certinv/certinv/storetest"
)

func TestRederive(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, filepath.Join(t.TempDir(), "certinv.db"))
	certs := storetest.NewCertificates(t, 3)
	set := certinv.DeviceSet{Device: certinv.Device{ID: strings.Repeat("ab", 20), Name: "h.example.com", CollectedAt: time.Unix(100, 0)}}
	for i, c := range certs {
		sc := c.Stored()
		sc.JSON = []byte(`"thumbprint":"derived by an old parser"`)
		set.New = append(set.New, sc)
		set.Links = append(set.Links, certinv.Link{Path: fmt.Sprintf("p%d", i), SHA256: c.SHA256})
	}
	if res, err := db.ApplyDeviceSets(ctx, []certinv.DeviceSet{set}); err != nil || res[0].Err != nil {
		t.Fatalf("ApplyDeviceSets: %v %v", err, res)
	}
	v0, _ := db.Version(ctx)

	// The new parser: a pure function of the DER that refuses certs[2].
	refused := certs[2].DER
	derive := func(der []byte) ([]byte, error) {
		if string(der) == string(refused) {
			return nil, errors.New("refused by the new parser")
		}
		return fmt.Appendf(nil, `"thumbprint":"%X"`, sha1.Sum(der)), nil
	}
	changed, failed, err := db.Rederive(ctx, 2, derive)
	if err != nil || changed != 2 || failed != 1 {
		t.Fatalf("Rederive = %d changed, %d failed, %v; want 2, 1, nil", changed, failed, err)
	}
	got := map[string]string{}
	if _, err := db.ReadInventory(ctx, func(r *certinv.InventoryRow) error {
		got[r.Path] = string(r.CertificateJSON)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for i, c := range certs {
		want := fmt.Sprintf(`"thumbprint":"%X"`, sha1.Sum(c.DER))
		if i == 2 {
			want = `"thumbprint":"derived by an old parser"`
		}
		if p := fmt.Sprintf("p%d", i); got[p] != want {
			t.Errorf("after Rederive, %s reads %s, want %s", p, got[p], want)
		}
	}
	if v, _ := db.Version(ctx); v <= v0 {
		t.Errorf("Version after Rederive changed fragments = %d, want more than %d (a new snapshot must carry them)", v, v0)
	}

	// At that version already: nothing to do, whatever derive would say.
	v1, _ := db.Version(ctx)
	changed, failed, err = db.Rederive(ctx, 2, func([]byte) ([]byte, error) { return []byte("x"), nil })
	if err != nil || changed != 0 || failed != 0 {
		t.Errorf("second Rederive at the same version = %d, %d, %v; want 0, 0, nil", changed, failed, err)
	}
	if v, _ := db.Version(ctx); v != v1 {
		t.Errorf("Version after a no-op Rederive = %d, want %d", v, v1)
	}
}

func TestRederiveStoppedResumes(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	db := openTest(t, filepath.Join(t.TempDir(), "certinv.db"))
	c := storetest.NewCertificates(t, 1)[0]
	set := certinv.DeviceSet{
		Device: certinv.Device{ID: strings.Repeat("cd", 20), Name: "h", CollectedAt: time.Unix(1, 0)},
		Links:  []certinv.Link{{Path: "p", SHA256: c.SHA256}},
		New:    []certinv.StoredCertificate{c.Stored()},
	}
	if res, err := db.ApplyDeviceSets(ctx, []certinv.DeviceSet{set}); err != nil || res[0].Err != nil {
		t.Fatalf("ApplyDeviceSets: %v %v", err, res)
	}
	cancel()
	if _, _, err := db.Rederive(ctx, 3, func([]byte) ([]byte, error) { return []byte(`"a":1`), nil }); err == nil {
		t.Fatalf("Rederive with a cancelled context = nil error, want one")
	}
	// Not recorded as done: a later run does the work.
	changed, _, err := db.Rederive(context.Background(), 3, func([]byte) ([]byte, error) { return []byte(`"a":1`), nil })
	if err != nil || changed != 1 {
		t.Errorf("Rederive after an interrupted one = %d changed, %v; want 1, nil", changed, err)
	}

	// A run stopped after it changed fragments but before it recorded the
	// version: the next run finds nothing to change, yet must still bump
	// the inventory version so that a snapshot carries the new fragments.
	if _, err := db.writer.ExecContext(context.Background(), `UPDATE meta SET derivation = 2`); err != nil {
		t.Fatal(err)
	}
	v, _ := db.Version(context.Background())
	changed, _, err = db.Rederive(context.Background(), 3, func([]byte) ([]byte, error) { return []byte(`"a":1`), nil })
	if err != nil || changed != 0 {
		t.Fatalf("Rederive over fragments already new = %d changed, %v; want 0, nil", changed, err)
	}
	if v2, _ := db.Version(context.Background()); v2 <= v {
		t.Errorf("Version after recording a new parser version = %d, want more than %d", v2, v)
	}
}
