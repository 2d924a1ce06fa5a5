package httpapi

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/certinv/certinv"
)

// Limits of the query parameters, from the contract.
const (
	DefaultPageSize      = 50000
	MaxPageSize          = 200000
	DefaultSASValidHours = 3
	MaxSASValidHours     = 24
)

// queryParams returns the request's query parameters by lower-case name
// (the reference spells pageSize and pagesize both ways). A parameter given
// twice, in any spelling, is refused, and so is an OData system option
// ($filter, $select...) that the endpoint does not implement: ignoring it
// would answer a different question than the one asked.
func queryParams(rawQuery string, known ...string) (map[string]string, error) {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, certinv.Errorf(certinv.EInvalid, "the query string is malformed")
	}
	out := make(map[string]string, len(q))
	for name, vs := range q {
		lower := strings.ToLower(name)
		if _, dup := out[lower]; dup || len(vs) > 1 {
			return nil, certinv.Errorf(certinv.EInvalid, "the parameter %s is given more than once", truncate(name, 64))
		}
		if strings.HasPrefix(lower, "$") && !contains(known, lower) {
			return nil, certinv.Errorf(certinv.EInvalid, "the query option %s is not supported here; supported: %s", truncate(name, 64), strings.Join(known, ", "))
		}
		out[lower] = vs[0]
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// intParam parses the parameter name (as the client may spell it) of q, an
// integer from lo to hi; def when absent.
func intParam(q map[string]string, lower, display string, lo, hi, def int) (int, bool, error) {
	v, ok := q[lower]
	if !ok {
		return def, false, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, true, certinv.Errorf(certinv.EInvalid, "%s must be an integer between %d and %d", display, lo, hi)
	}
	return n, true, nil
}
