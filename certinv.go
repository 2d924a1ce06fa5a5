// Package certinv holds the domain of the certificate inventory: the
// certificates found on devices, the records the export API serves, the
// snapshots it serves them from, and the small interfaces that the backends
// (stores, buckets, issuers) implement. It depends on the standard library
// only; every subpackage imports it, and it imports none of them.
package certinv

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
)

// ErrorKind is a machine-readable class of error that a client may see. One
// table in httpapi maps each kind to an HTTP status and a contract error code.
type ErrorKind string

// The kinds of error a client may see.
const (
	EInvalid        ErrorKind = "invalid"      // 400 InvalidInput: a parameter or body is wrong
	EBadRequest     ErrorKind = "bad_request"  // 400 BadRequest: the request cannot be served as asked (e.g. retired snapshot)
	EUnauthorized   ErrorKind = "unauthorized" // 401 Unauthorized: no valid credential
	EForbidden      ErrorKind = "forbidden"    // 403 Forbidden: valid credential, wrong permission; tampered URL
	ENotFound       ErrorKind = "not_found"    // 404 NotFound
	EConflict       ErrorKind = "conflict"     // 409 Conflict: a stale report, an unknown certificate reference
	ETooLarge       ErrorKind = "too_large"    // 413 RequestEntityTooLarge
	ETooManyRequest ErrorKind = "too_many"     // 429 TooManyRequests
	EUnavailable    ErrorKind = "unavailable"  // 503 ServiceUnavailable: no snapshot yet, a dependency down
	EInternal       ErrorKind = "internal"     // 500 InternalServerError: never carries detail
)

// Error is an error whose Message is safe to show to a client. Everything
// that is not an *Error is internal: logged in full, answered in general terms.
type Error struct {
	Kind    ErrorKind
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Kind, e.Message) }

// Errorf returns an *Error of the given kind with a formatted message.
func Errorf(kind ErrorKind, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// KindOf returns the kind of err's first *Error in its chain, or EInternal.
func KindOf(err error) ErrorKind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return EInternal
}

// MessageOf returns the client-safe message of err's first *Error, or a
// general message for internal errors.
func MessageOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "An internal error occurred. Try again later; if it persists, contact the administrator with the request id."
}

// NewGUID returns a random RFC 4122 version 4 GUID in its lowercase string form.
func NewGUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}
