package agent

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certinv/certinv/client"
	"github.com/certinv/certinv/client/servertest"
)

// TestEnrollment: the first report enrolls the device and keeps its own
// credential (0600) in the state folder; every report after it, from this
// agent or a new one on the same state, uses that credential and never the
// enrollment secret again.
func TestEnrollment(t *testing.T) {
	ctx := context.Background()
	ft := newFakeTime()
	srv := servertest.New(t, ft.Now)
	state := t.TempDir()
	var bearers []string
	srv.OnRequest(func(r *http.Request) {
		bearers = append(bearers, r.URL.Path+" "+strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
	})
	logs := new(bytes.Buffer)
	a := newAgent(t, srv.URL, ft, fixed(threeAtFour(t), new(int)), logs)
	a.StateDir = state
	if _, err := a.ReportOnce(ctx); err != nil {
		t.Fatalf("first ReportOnce() error = %v", err)
	}
	path := filepath.Join(state, CredentialFile)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatalf("no credential kept after the first report: %v", err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("credential file mode = %v, want 0600", st.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	cred := strings.TrimSpace(string(b))
	if !strings.HasPrefix(cred, "cidv1."+testDevice+".") {
		t.Fatalf("kept credential = %q, want one of device %s", cred, testDevice)
	}

	// A new agent process on the same state folder.
	b2 := newAgent(t, srv.URL, ft, fixed(threeAtFour(t), new(int)), logs)
	b2.StateDir = state
	ft.Add(6 * time.Hour)
	if _, err := b2.ReportOnce(ctx); err != nil {
		t.Fatalf("ReportOnce() of a restarted agent error = %v", err)
	}
	if len(bearers) < 3 || !strings.HasPrefix(bearers[0], client.PathEnroll+" "+servertest.Secret) {
		t.Fatalf("requests = %q, want an enrollment with the secret first", bearers)
	}
	for _, b := range bearers[1:] {
		if !strings.HasPrefix(b, client.PathReports+" "+cred) {
			t.Errorf("request %q after enrollment, want a report with the device credential", b)
		}
	}
	if strings.Contains(logs.String(), cred) || strings.Contains(logs.String(), servertest.Secret) {
		t.Errorf("the agent's log holds the credential or the secret")
	}
}

// TestEnrollmentRefusals: a device enrolled already whose credential is
// lost, and a credential file of another device, stop the report with an
// error that says what an administrator does; nothing is reported.
func TestEnrollmentRefusals(t *testing.T) {
	ctx := context.Background()
	ft := newFakeTime()
	srv := servertest.New(t, ft.Now)

	cl, err := client.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Enroll(ctx, servertest.Secret, testDevice); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Enroll(ctx, "wrong", testDevice); err == nil {
		t.Errorf("Enroll with a wrong secret = nil error, want a refusal")
	}

	a := newAgent(t, srv.URL, ft, fixed(threeAtFour(t), new(int)), nil)
	a.StateDir = t.TempDir()
	srv.ResetCounters()
	_, err = a.ReportOnce(ctx)
	if !errors.Is(err, client.ErrAlreadyEnrolled) || !strings.Contains(err.Error(), "certinv device reset --id "+testDevice) {
		t.Errorf("ReportOnce() of a device enrolled elsewhere = %v, want ErrAlreadyEnrolled naming certinv device reset", err)
	}
	if _, reports := srv.Requests(); reports != 0 {
		t.Errorf("server got %d reports, want none", reports)
	}

	other := newAgent(t, srv.URL, ft, fixed(threeAtFour(t), new(int)), nil)
	other.StateDir = t.TempDir()
	if err := os.WriteFile(filepath.Join(other.StateDir, CredentialFile), []byte("cidv1."+strings.Repeat("0", 40)+".x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := other.ReportOnce(ctx); err == nil || !strings.Contains(err.Error(), "not one of device") {
		t.Errorf("ReportOnce() with another device's credential = %v, want an error saying so", err)
	}
}
