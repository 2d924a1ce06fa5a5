package httpapi

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/certinv/certinv"
)

var skKey = bytes.Repeat([]byte{7}, 32)

func TestSkiptokenRoundTrip(t *testing.T) {
	p := &certinv.Principal{Issuer: "i", TenantID: "t", AppID: "a", ObjectID: "o"}
	scope := callerScope(p, false, []int64{3, 1, 3})
	if scope != callerScope(p, false, []int64{1, 3}) {
		t.Error("callerScope depends on the order or repetition of group ids")
	}
	for name, other := range map[string]string{
		"all groups":   callerScope(p, true, nil),
		"other groups": callerScope(p, false, []int64{1}),
		"other app":    callerScope(&certinv.Principal{Issuer: "i", TenantID: "t", AppID: "b", ObjectID: "o"}, false, []int64{1, 3}),
		"other tenant": callerScope(&certinv.Principal{Issuer: "i", TenantID: "u", AppID: "a", ObjectID: "o"}, false, []int64{1, 3}),
		"shifted":      callerScope(&certinv.Principal{Issuer: "i", TenantID: "ta", AppID: "", ObjectID: "o"}, false, []int64{1, 3}),
	} {
		if other == scope {
			t.Errorf("callerScope(%s) equals the original's", name)
		}
	}
	in := skiptoken{ExportFileIndex: 2, LineStoppedAt: 50000, SnapshotID: certinv.NewGUID(), Scope: scope}
	in.ExportDefinition.TimePath = "2026-12-03/1500/"
	s := encodeSkiptoken(&in, skKey)
	raw, _ := base64.RawURLEncoding.DecodeString(s)
	if !strings.HasPrefix(string(raw), `{"ExportDefinition":{"TimePath":"2026-12-03/1500/"},"ExportFileIndex":2,"LineStoppedAt":50000,`) {
		t.Errorf("skiptoken JSON = %s, want the vendor's fields first", raw)
	}
	out, err := decodeSkiptoken(s, skKey, scope)
	if err != nil {
		t.Fatalf("decodeSkiptoken(encodeSkiptoken(t)) = %v", err)
	}
	if *out != in {
		t.Errorf("decodeSkiptoken = %+v, want %+v", out, in)
	}
	if _, err := decodeSkiptoken(s, bytes.Repeat([]byte{8}, 32), scope); certinv.KindOf(err) != certinv.EBadRequest {
		t.Errorf("decodeSkiptoken with another key = %v, want bad request", err)
	}
}

func FuzzDecodeSkiptoken(f *testing.F) {
	in := skiptoken{ExportFileIndex: 1, LineStoppedAt: 10, SnapshotID: "s", Scope: "scope"}
	in.ExportDefinition.TimePath = "2026-12-03/1500/"
	good := encodeSkiptoken(&in, skKey)
	f.Add(good)
	f.Add(good + "==")
	f.Add("eyJFeHBvcnREZWZpbml0aW9uIjp7IlRpbWVQYXRoIjoiMjAyMi0wMy0yMS8wNTAxLyJ9LCJFeHBvcnRGaWxlSW5kZXgiOjAsIkxpbmVTdG9wcGVkQXQiOjF9")
	f.Fuzz(func(t *testing.T, s string) {
		out, err := decodeSkiptoken(s, skKey, "scope")
		if err != nil {
			if certinv.KindOf(err) != certinv.EBadRequest {
				t.Fatalf("decodeSkiptoken(%q) kind %s, want bad request", s, certinv.KindOf(err))
			}
			return
		}
		if *out != in {
			t.Fatalf("decodeSkiptoken(%q) = %+v: accepted a token that was not given out", s, out)
		}
	})
}
