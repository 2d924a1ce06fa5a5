package httpapi

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	"github.com/certinv/certinv"
)

// skiptoken is the position of a traversal, in the vendor's shape
// (ExportDefinition.TimePath, ExportFileIndex, LineStoppedAt) with certinv's
// additions: the snapshot it reads, the scope of the caller it was given to,
// and an HMAC-SHA256 over all of them.
type skiptoken struct {
	ExportDefinition struct {
		TimePath string `json:"TimePath"`
	} `json:"ExportDefinition"`
	ExportFileIndex int    `json:"ExportFileIndex"`
	LineStoppedAt   int64  `json:"LineStoppedAt"`
	SnapshotID      string `json:"SnapshotId"`
	Scope           string `json:"Scope"`
	Signature       string `json:"Signature"`
}

// restartHint ends every skiptoken refusal: the client's way out.
const restartHint = "; start again from the first page (call the endpoint without $skiptoken)"

// maxSkiptokenLen bounds the token before it is decoded.
const maxSkiptokenLen = 2048

// mac computes the signature of t's fields under key. Each field is written
// with its length, so no two different tokens share a message.
func (t *skiptoken) mac(key []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("certinv-skiptoken-v1"))
	for _, f := range []string{t.ExportDefinition.TimePath, strconv.Itoa(t.ExportFileIndex),
		strconv.FormatInt(t.LineStoppedAt, 10), t.SnapshotID, t.Scope} {
		m.Write([]byte{0})
		m.Write([]byte(strconv.Itoa(len(f))))
		m.Write([]byte{0})
		m.Write([]byte(f))
	}
	return m.Sum(nil)
}

// encodeSkiptoken signs t and returns it as unpadded URL-safe base64 of JSON.
func encodeSkiptoken(t *skiptoken, key []byte) string {
	t.Signature = base64.RawURLEncoding.EncodeToString(t.mac(key))
	b, err := json.Marshal(t)
	if err != nil {
		panic(err) // strings and integers only: cannot fail
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeSkiptoken parses and checks a $skiptoken: base64 (URL-safe, padded
// or not) of JSON with a valid signature and the caller's scope. Every
// refusal is EBadRequest and tells the client to start again.
func decodeSkiptoken(s string, key []byte, scope string) (*skiptoken, error) {
	if len(s) > maxSkiptokenLen {
		return nil, certinv.Errorf(certinv.EBadRequest, "the $skiptoken is too long to be one this server gave out"+restartHint)
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return nil, certinv.Errorf(certinv.EBadRequest, "the $skiptoken is not URL-safe base64"+restartHint)
	}
	var t skiptoken
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil || dec.More() {
		return nil, certinv.Errorf(certinv.EBadRequest, "the $skiptoken is not a token this server gave out"+restartHint)
	}
	sig, err := base64.RawURLEncoding.DecodeString(t.Signature)
	if err != nil || !hmac.Equal(sig, t.mac(key)) {
		return nil, certinv.Errorf(certinv.EBadRequest, "the $skiptoken's signature is not valid (the token was changed or made elsewhere)"+restartHint)
	}
	// Signed by us: the fields are ours. The scope is checked only now, so a
	// forged token cannot probe other callers' scopes.
	if !hmac.Equal([]byte(t.Scope), []byte(scope)) {
		return nil, certinv.Errorf(certinv.EBadRequest, "the $skiptoken was given to another caller, or the caller's device groups changed"+restartHint)
	}
	if t.ExportFileIndex < 0 || t.LineStoppedAt < 0 {
		return nil, certinv.Errorf(certinv.EBadRequest, "the $skiptoken's position is not valid"+restartHint)
	}
	return &t, nil
}

// callerScope identifies whom a traversal belongs to and what it may see:
// the token's issuer, tenant, application and object, and the group filter.
// A skiptoken is only accepted from the same scope.
func callerScope(p *certinv.Principal, all bool, groups []int64) string {
	h := sha256.New()
	for _, f := range []string{"certinv-scope-v1", p.Issuer, p.TenantID, p.AppID, p.ObjectID} {
		h.Write([]byte(strconv.Itoa(len(f))))
		h.Write([]byte{0})
		h.Write([]byte(f))
	}
	if all {
		h.Write([]byte("all"))
	} else {
		ids := slices.Clone(groups)
		slices.Sort(ids)
		ids = slices.Compact(ids)
		h.Write([]byte("groups"))
		for _, id := range ids {
			h.Write([]byte{0})
			h.Write([]byte(strconv.FormatInt(id, 10)))
		}
	}
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:16])
}
