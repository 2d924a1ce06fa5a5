package datadir

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func TestSecretsAreMadeOnceAndKept(t *testing.T) {
	d, err := Open(filepath.Join(t.TempDir(), "data"))
	if err != nil {
		t.Fatal(err)
	}
	// Many goroutines race to make the same secret; all must see one value.
	var wg sync.WaitGroup
	got := make([][]byte, 16)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := d.URLSigningKey()
			if err != nil {
				t.Error(err)
			}
			got[i] = k
		}()
	}
	wg.Wait()
	for i, k := range got {
		if len(k) != 32 || !bytes.Equal(k, got[0]) {
			t.Fatalf("URLSigningKey() #%d = %x, want the same 32 bytes as #0 = %x", i, k, got[0])
		}
	}
	st, err := os.Stat(filepath.Join(d.Root, "keys", "url-signing.key"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode = %v, want 0600", st.Mode().Perm())
	}
	sk, err := d.SkiptokenKey()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(sk, got[0]) {
		t.Errorf("SkiptokenKey() equals URLSigningKey(): keys must be independent")
	}
	s1, err := d.EnrollmentSecret()
	if err != nil {
		t.Fatal(err)
	}
	d2, _ := Open(d.Root)
	s2, _ := d2.EnrollmentSecret()
	if s1 == "" || s1 != s2 {
		t.Errorf("EnrollmentSecret() = %q then %q, want one stable non-empty secret", s1, s2)
	}
}

func TestWriteFileOnceKeepsExisting(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := WriteFileOnce(p, []byte("first"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := WriteFileOnce(p, []byte("second"), 0o600)
	if !errors.Is(err, fs.ErrExist) {
		t.Errorf("WriteFileOnce on an existing file = %v, want fs.ErrExist", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "first" {
		t.Errorf("file = %q, want %q", b, "first")
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(p), ".f.tmp-*"))
	if len(left) != 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
}

func TestCorruptKeyIsAClearError(t *testing.T) {
	d, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d.Root, "keys", "skiptoken-signing.key"), []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := d.SkiptokenKey(); err == nil {
		t.Errorf("SkiptokenKey() with a corrupt file = nil error, want an error")
	}
	if _, err := Open(""); err == nil {
		t.Errorf("Open(\"\") = nil error, want an error naming --data")
	}
}
