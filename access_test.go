package certinv

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

func TestMatchGlob(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"*", "", true},
		{"*", "anything", true},
		{"", "", true},
		{"", "x", false},
		{"web*", "WEB1.corp", true},
		{"web*", "aweb1", false},
		{"*.corp.example.com", "db.CORP.example.com", true},
		{"*.corp.example.com", "corp.example.com", false},
		{"h?st", "host", true},
		{"h?st", "hst", false},
		{"h?st", "hoost", false},
		{"é?", "éa", true},
		{"?", "é", true},
		{"[ab]", "[ab]", true},
		{"[ab]", "a", false},
		{"a*b*c", "aXXbYYc", true},
		{"a*b*c", "aXXcYYb", false},
		{"*a*a*a*a*b", strings.Repeat("a", 50), false},
	}
	for _, tc := range tests {
		if got := MatchGlob(tc.pattern, tc.s); got != tc.want {
			t.Errorf("MatchGlob(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}

// FuzzMatchGlob checks MatchGlob against a regular expression built from
// the same pattern.
func FuzzMatchGlob(f *testing.F) {
	f.Add("web*.corp", "WEB1.corp")
	f.Add("h?st*", "hést-1")
	f.Add("*a*", "bab")
	f.Fuzz(func(t *testing.T, pattern, s string) {
		if len(pattern) > 64 || len(s) > 256 || !printable(pattern) || !printable(s) {
			return
		}
		var re strings.Builder
		re.WriteString("(?s)^")
		for _, r := range asciiLower(pattern) {
			switch r {
			case '*':
				re.WriteString(".*")
			case '?':
				re.WriteString(".")
			default:
				re.WriteString(regexp.QuoteMeta(string(r)))
			}
		}
		re.WriteString("$")
		want := regexp.MustCompile(re.String()).MatchString(asciiLower(s))
		if got := MatchGlob(pattern, s); got != want {
			t.Errorf("MatchGlob(%q, %q) = %v, want %v (regexp %s)", pattern, s, got, want, re.String())
		}
	})
}

func TestRuleNormalize(t *testing.T) {
	r := GroupRule{GroupName: "eu", DomainSuffix: " .EU.Example.COM. "}
	if err := r.Normalize(); err != nil || r.DomainSuffix != "eu.example.com" {
		t.Errorf("Normalize() = %v, DomainSuffix %q; want nil, %q", err, r.DomainSuffix, "eu.example.com")
	}
	if !r.Matches("db.eu.example.com", "", nil) || !r.Matches("EU.example.com", "", nil) || r.Matches("xeu.example.com", "", nil) {
		t.Errorf("domain suffix %q matches wrongly", r.DomainSuffix)
	}
}

func TestNormalizeTags(t *testing.T) {
	got, err := NormalizeTags([]string{"prod", "eu", "prod"})
	if err != nil || len(got) != 2 || got[0] != "eu" || got[1] != "prod" {
		t.Errorf("NormalizeTags(prod, eu, prod) = %q, %v; want [eu prod]", got, err)
	}
	many := make([]string, MaxTagsPerDevice+1)
	for i := range many {
		many[i] = fmt.Sprintf("t%02d", i)
	}
	if _, err := NormalizeTags(many); KindOf(err) != EInvalid {
		t.Errorf("NormalizeTags(%d tags) error = %v, want kind %s", len(many), err, EInvalid)
	}
	if _, err := NormalizeTags([]string{""}); KindOf(err) != EInvalid {
		t.Errorf("NormalizeTags(empty tag) error = %v, want kind %s", err, EInvalid)
	}
}
