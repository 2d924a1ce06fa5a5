package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/certinv/certinv/ingest"
)

// newDevicesEnv is an ingest env with device credentials (and the admin API).
func newDevicesEnv(t *testing.T, require bool) *env {
	e := newEnv(t)
	cfg := e.cfg
	cfg.Ingest = &ingest.Service{Store: e.db, Now: e.clock.Now}
	cfg.Devices = e.db
	cfg.Admin = e.db
	cfg.RequireDeviceCredentials = require
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.srv, e.cfg = srv, cfg
	return e
}

func (e *env) enroll(secret, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("POST", PathEnroll, strings.NewReader(body))
	if secret != "" {
		r.Header.Set("Authorization", "Bearer "+secret)
	}
	w := httptest.NewRecorder()
	e.srv.ServeHTTP(w, r)
	return w
}

func (e *env) mustEnroll(t *testing.T, id string) string {
	t.Helper()
	w := e.enroll(enrollment, `{"deviceId":"`+id+`"}`)
	if w.Code != http.StatusOK {
		t.Fatalf("enroll %s = %d %s", id, w.Code, w.Body)
	}
	var out enrollResponse
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	if out.DeviceID != id || !strings.HasPrefix(out.DeviceCredential, deviceCredentialPrefix+id+".") {
		t.Fatalf("enroll answer = %+v", out)
	}
	if w.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("enroll answer Cache-Control = %q, want no-store", w.Header().Get("Cache-Control"))
	}
	return out.DeviceCredential
}

// known reports whether the store holds the device.
func (e *env) known(id string) bool {
	a, err := e.db.DeviceAccess(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return a.Known
}

func TestDeviceCredentials(t *testing.T) {
	e := newDevicesEnv(t, false)
	certs := makeCerts(t, 2)
	me, other, legacy := deviceID(1), deviceID(2), deviceID(3)
	at := e.clock.Now().Add(-1e9)
	body := func(id string) string { return reportBody(id, at, reportCert{Path: "/a.pem", DER: certs[0].der}) }

	wantError(t, e.enroll("wrong", `{"deviceId":"`+me+`"}`), http.StatusUnauthorized, "Unauthorized", "enrollment secret")
	wantError(t, e.enroll(enrollment, `{"deviceId":"ME"}`), http.StatusBadRequest, "InvalidInput", "40 lowercase hex")
	wantError(t, e.enroll(enrollment, `{"device":"x"}`), http.StatusBadRequest, "InvalidInput", "deviceId")
	cred := e.mustEnroll(t, me)
	wantError(t, e.enroll(enrollment, `{"deviceId":"`+me+`"}`), http.StatusConflict, "Conflict", "enrolled already")

	// The credential reports for its device only.
	decodeAnswer(t, e.report(cred, body(me)))
	w := e.report(cred, body(other))
	wantError(t, w, http.StatusForbidden, "Forbidden", "may report only for that device")
	if e.known(other) {
		t.Error("a report refused for another device was stored")
	}
	// An enrolled device cannot be reported with the bare secret.
	wantError(t, e.report(enrollment, reportBody(me, at.Add(1e9), reportCert{Path: "/evil.pem", DER: certs[1].der})),
		http.StatusForbidden, "Forbidden", "must carry its device credential")
	// A device that never enrolled still may (the default).
	decodeAnswer(t, e.report(enrollment, body(legacy)))

	// Forged and tampered credentials.
	for _, bad := range []string{
		cred[:len(cred)-2] + "AA",
		deviceCredentialPrefix + other + "." + strings.Split(cred, ".")[2],
		deviceCredentialPrefix + "zz",
	} {
		w := e.report(bad, body(me))
		if w.Code != http.StatusUnauthorized {
			t.Errorf("report with credential %q = %d, want 401", bad, w.Code)
		}
	}

	// Revoked: reports (with credential or secret) and enrollments refused, clearly.
	r := e.do("POST", "/api/admin/devices/"+me+"/revoke", e.adminToken(), nil)
	if r.Code != http.StatusOK || !strings.Contains(r.Body.String(), `"revoked":true`) || strings.Contains(r.Body.String(), strings.Split(cred, ".")[2]) {
		t.Fatalf("revoke = %d %s", r.Code, r.Body)
	}
	v0, _ := e.db.Version(context.Background())
	wantError(t, e.report(cred, reportBody(me, at.Add(2e9))), http.StatusForbidden, "Forbidden", "revoked by an administrator")
	wantError(t, e.report(enrollment, reportBody(me, at.Add(2e9))), http.StatusForbidden, "Forbidden", "revoked by an administrator")
	wantError(t, e.enroll(enrollment, `{"deviceId":"`+me+`"}`), http.StatusForbidden, "Forbidden", "revoked")
	if v, _ := e.db.Version(context.Background()); v != v0 {
		t.Errorf("refused reports of a revoked device changed the inventory (version %d -> %d)", v0, v)
	}

	// Reset: it may enroll again; the old credential stays dead.
	if r := e.do("POST", "/api/admin/devices/"+me+"/reset", e.adminToken(), nil); r.Code != http.StatusOK {
		t.Fatalf("reset = %d %s", r.Code, r.Body)
	}
	wantError(t, e.report(cred, body(me)), http.StatusUnauthorized, "Unauthorized", "enroll again")
	cred2 := e.mustEnroll(t, me)
	decodeAnswer(t, e.report(cred2, reportBody(me, at.Add(3e9), reportCert{Path: "/a.pem", DER: certs[0].der})))

	// The audit log records enrollments, revocation and reset, never a secret.
	es, err := e.db.AuditEntries(context.Background(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, a := range es {
		actions = append(actions, a.Action)
		for _, c := range []string{cred, cred2} {
			if strings.Contains(a.Details, strings.Split(c, ".")[2]) || strings.Contains(a.Target, strings.Split(c, ".")[2]) {
				t.Errorf("audit entry %+v holds a credential", a)
			}
		}
	}
	if got := strings.Join(actions, ","); got != "device.enroll,device.revoke,device.reset,device.enroll" {
		t.Errorf("audit actions = %s", got)
	}
	if strings.Contains(e.logs.String(), strings.Split(cred2, ".")[2]) {
		t.Error("the log holds a device credential")
	}
}

func TestRequireDeviceCredentials(t *testing.T) {
	e := newDevicesEnv(t, true)
	certs := makeCerts(t, 1)
	id := deviceID(5)
	body := reportBody(id, e.clock.Now(), reportCert{Path: "/a.pem", DER: certs[0].der})
	wantError(t, e.report(enrollment, body), http.StatusForbidden, "Forbidden", "only with a device credential")
	if e.known(id) {
		t.Error("a refused report was stored")
	}
	decodeAnswer(t, e.report(e.mustEnroll(t, id), body))
	if !e.known(id) {
		t.Error("the report with a device credential was not stored")
	}
}
