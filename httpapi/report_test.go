package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/certinv/certinv"
)

func TestDecodeReport(t *testing.T) {
	der := []byte{0x30, 0x03, 0x02, 0x01, 0x01}
	sum := strings.Repeat("ab", 32)
	ok := `{"deviceId":"` + strings.Repeat("a", 40) + `","deviceName":"h.example","osPlatform":"Ubuntu 24.04","collectedAt":"2026-12-03T15:00:00+01:00","rbacGroupName":"Servers",` +
		`"certificates":[{"path":"/etc/ssl/a.pem","der":"` + base64.StdEncoding.EncodeToString(der) + `"},{"path":"/etc/ssl/b.pem","sha256":"` + sum + `"}]}`
	rep, err := decodeReport(strings.NewReader(ok + "\n"))
	if err != nil {
		t.Fatalf("decodeReport(valid) = %v", err)
	}
	var wantSum [32]byte
	hex.Decode(wantSum[:], []byte(sum))
	if rep.Device.ID != strings.Repeat("a", 40) || rep.Device.Name != "h.example" || rep.Device.OS != "Ubuntu 24.04" ||
		!rep.Device.CollectedAt.Equal(time.Date(2026, 12, 3, 14, 0, 0, 0, time.UTC)) || rep.Device.CollectedAt.Location() != time.UTC ||
		rep.GroupName != "Servers" || len(rep.Certificates) != 2 ||
		!bytes.Equal(rep.Certificates[0].DER, der) || rep.Certificates[0].Path != "/etc/ssl/a.pem" ||
		rep.Certificates[1].SHA256 != wantSum || rep.Certificates[1].DER != nil {
		t.Errorf("decodeReport(valid) = %+v", rep)
	}

	base := func(certs string) string {
		return `{"deviceId":"x","deviceName":"h","osPlatform":"o","collectedAt":"2026-12-03T15:00:00Z","certificates":[` + certs + `]}`
	}
	tests := []struct {
		name, body string
		kind       certinv.ErrorKind
		msg        string
	}{
		{"empty", "", certinv.EInvalid, "empty"},
		{"truncated", ok[:50], certinv.EInvalid, "ends in the middle"},
		{"not json", "hello", certinv.EInvalid, "not valid JSON"},
		{"trailing data", ok + `{}`, certinv.EInvalid, "data after"},
		{"trailing garbage", ok + ` x`, certinv.EInvalid, "data after"},
		{"unknown field", strings.Replace(ok, `"osPlatform"`, `"os"`, 1), certinv.EInvalid, `unknown field "os"`},
		{"wrong type", `{"deviceId":5}`, certinv.EInvalid, "deviceId must be of JSON type string"},
		{"bad time", strings.Replace(ok, "2026-12-03T15:00:00+01:00", "03/12/2026", 1), certinv.EInvalid, "RFC 3339"},
		{"no time", `{"deviceId":"x","certificates":[]}`, certinv.EInvalid, "collectedAt is required"},
		{"bad base64", base(`{"path":"p","der":"!!!"}`), certinv.EInvalid, "cannot be read"},
		{"both", base(`{"path":"p","der":"MAA=","sha256":"` + sum + `"}`), certinv.EInvalid, "both der and sha256"},
		{"neither", base(`{"path":"p"}`), certinv.EInvalid, "neither der nor sha256"},
		{"short hash", base(`{"path":"p","sha256":"abcd"}`), certinv.EInvalid, "64 hex characters"},
		{"non-hex hash", base(`{"path":"p","sha256":"` + strings.Repeat("zz", 32) + `"}`), certinv.EInvalid, "64 hex characters"},
		{"too many", base(strings.TrimSuffix(strings.Repeat(`{"path":"p","sha256":"`+sum+`"},`, certinv.MaxCertificatesPerReport+1), ",")), certinv.EInvalid, "at most 20000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := decodeReport(strings.NewReader(tt.body))
			if err == nil {
				t.Fatalf("decodeReport(%.60q) = %+v, want error", tt.body, rep)
			}
			if certinv.KindOf(err) != tt.kind || !strings.Contains(certinv.MessageOf(err), tt.msg) {
				t.Errorf("decodeReport(%.60q) = %v, want %s containing %q", tt.body, err, tt.kind, tt.msg)
			}
		})
	}
}

func FuzzDecodeReport(f *testing.F) {
	f.Add(`{"deviceId":"a","deviceName":"b","osPlatform":"c","collectedAt":"2026-12-03T15:00:00Z","certificates":[{"path":"p","der":"MAA="}]}`)
	f.Add(`{"certificates":[{"path":"p","sha256":"00"}]}`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, body string) {
		rep, err := decodeReport(strings.NewReader(body))
		if err != nil {
			if k := certinv.KindOf(err); k != certinv.EInvalid && k != certinv.ETooLarge {
				t.Fatalf("decodeReport(%q) kind %s, want invalid: %v", body, k, err)
			}
			return
		}
		if len(rep.Certificates) > certinv.MaxCertificatesPerReport {
			t.Fatalf("decodeReport(%q): %d certificates accepted", body, len(rep.Certificates))
		}
		if rep.Device.CollectedAt.IsZero() && !strings.Contains(body, "0001-01-01") {
			t.Fatalf("decodeReport(%q): accepted without collectedAt", body)
		}
	})
}
