package certparse

import "time"

// parseValidity reads Validity ::= SEQUENCE { notBefore Time, notAfter Time }.
func parseValidity(b []byte) (notBefore, notAfter time.Time, ok bool) {
	nb, rest, ok := readElement(b)
	if !ok {
		return
	}
	na, rest, ok := readElement(rest)
	if !ok || len(rest) != 0 {
		return time.Time{}, time.Time{}, false
	}
	if notBefore, ok = parseTime(nb); !ok {
		return
	}
	notAfter, ok = parseTime(na)
	return notBefore, notAfter, ok
}

// parseTime reads a UTCTime or GeneralizedTime, in UTC. Beyond what DER
// allows it accepts the forms that old certificates carry and crypt32
// reads: UTCTime without seconds and with a ±hhmm offset; GeneralizedTime
// with fractional seconds (dropped: the export has whole seconds) or an
// offset. UTCTime years 50 to 99 are 1950 to 1999 (RFC 5280).
func parseTime(e element) (time.Time, bool) {
	s := e.content
	var year int
	switch e.tag {
	case tagUTCTime:
		y, ok := digits(s, 2)
		if !ok {
			return time.Time{}, false
		}
		year = 1900 + y
		if y < 50 {
			year = 2000 + y
		}
		s = s[2:]
	case tagGeneralizedTime:
		y, ok := digits(s, 4)
		if !ok {
			return time.Time{}, false
		}
		year = y
		s = s[4:]
	default:
		return time.Time{}, false
	}
	var f [4]int // month, day, hour, minute
	for i := range f {
		v, ok := digits(s, 2)
		if !ok {
			return time.Time{}, false
		}
		f[i] = v
		s = s[2:]
	}
	sec := 0
	if v, ok := digits(s, 2); ok {
		sec = v
		s = s[2:]
	} else if e.tag == tagGeneralizedTime {
		return time.Time{}, false
	}
	if e.tag == tagGeneralizedTime && len(s) > 0 && (s[0] == '.' || s[0] == ',') {
		i := 1
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == 1 {
			return time.Time{}, false
		}
		s = s[i:]
	}
	offset := 0
	switch {
	case len(s) == 1 && s[0] == 'Z':
	case len(s) == 5 && (s[0] == '+' || s[0] == '-'):
		h, ok1 := digits(s[1:], 2)
		m, ok2 := digits(s[3:], 2)
		if !ok1 || !ok2 || h > 23 || m > 59 {
			return time.Time{}, false
		}
		offset = (h*60 + m) * 60
		if s[0] == '-' {
			offset = -offset
		}
	default:
		return time.Time{}, false
	}
	month, day, hour, minute := f[0], f[1], f[2], f[3]
	if month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, 0, time.UTC)
	if t.Day() != day { // 31 April and the like
		return time.Time{}, false
	}
	return t.Add(-time.Duration(offset) * time.Second), true
}

// digits reads n decimal digits from the front of s.
func digits(s []byte, n int) (int, bool) {
	if len(s) < n {
		return 0, false
	}
	v := 0
	for _, c := range s[:n] {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, true
}
