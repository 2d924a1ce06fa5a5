package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/certinv/certinv"
	"github.com/certinv/certinv/client"
)

// inventory is what one collection found: every (path, hash) once, within
// the server's limits, and the DER of as many certificates as the budget
// holds.
type inventory struct {
	certs     []certinv.ReportedCertificate // Path and SHA256; DER set when it is to be sent
	der       map[[32]byte][]byte           // held DER by hash
	heldBytes int64
	warnings  int
	dropped   int
}

// errEnough stops a collection that found all it was looking for.
var errEnough = errors.New("enough")

// collect runs the collector. With want nil it builds the inventory; with
// want set, it only gathers the DER of those hashes (another pass for
// certificates the server asks for beyond the held budget), and stops
// early once it has them all.
func (a *Agent) collect(ctx context.Context, want map[[32]byte]bool) (*inventory, error) {
	budget := a.MaxHeldDERBytes
	if budget <= 0 {
		budget = DefaultMaxHeldDERBytes
	}
	log := a.log()
	inv := &inventory{der: make(map[[32]byte][]byte)}
	type key struct {
		path string
		sum  [32]byte
	}
	seen := make(map[key]bool)
	overLimit := false
	found := func(path string, der []byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if len(der) == 0 || len(der) > certinv.MaxCertificateBytes {
			inv.dropped++
			warnOnce(log, &inv.warnings, path, fmt.Errorf("certificate of %d bytes left out: the server takes 1 to %d", len(der), certinv.MaxCertificateBytes))
			return nil
		}
		sum := sha256.Sum256(der)
		if want != nil {
			if want[sum] && inv.der[sum] == nil {
				inv.der[sum] = bytes.Clone(der)
				if len(inv.der) == len(want) {
					return errEnough
				}
			}
			return nil
		}
		p, ok := cleanPath(path)
		if !ok {
			inv.dropped++
			warnOnce(log, &inv.warnings, path, fmt.Errorf("path longer than %d bytes left out", certinv.MaxPathBytes))
			return nil
		}
		k := key{p, sum}
		if seen[k] {
			return nil
		}
		if len(inv.certs) >= certinv.MaxCertificatesPerReport {
			inv.dropped++
			if !overLimit {
				overLimit = true
				log.Warn("more certificates than a report may hold: the rest are left out", "limit", certinv.MaxCertificatesPerReport)
			}
			return nil
		}
		seen[k] = true
		inv.certs = append(inv.certs, certinv.ReportedCertificate{Path: p, SHA256: sum})
		if inv.der[sum] == nil && inv.heldBytes+int64(len(der)) <= budget {
			inv.der[sum] = bytes.Clone(der)
			inv.heldBytes += int64(len(der))
		}
		return nil
	}
	warn := func(path string, err error) { warnOnce(log, &inv.warnings, path, err) }
	err := a.Collect(ctx, found, warn)
	if errors.Is(err, errEnough) {
		err = nil
	}
	if inv.warnings > maxWarningsLogged {
		log.Warn("more problems while collecting were not logged", "count", inv.warnings-maxWarningsLogged)
	}
	if err == nil {
		err = ctx.Err()
	}
	return inv, err
}

// warnOnce logs the first maxWarningsLogged warnings of a collection and
// counts all.
func warnOnce(log interface {
	Warn(msg string, args ...any)
}, n *int, path string, err error) {
	*n++
	if *n <= maxWarningsLogged {
		log.Warn("problem while collecting certificates", "path", path, "err", err)
	}
}

// fillDER sets the DER of one certificate of each hash the server lacks,
// collecting again those beyond the held budget; it drops the certificates
// whose DER cannot be had any more (the file changed since). It returns how
// many certificates now carry DER anew and how many were dropped.
func (a *Agent) fillDER(ctx context.Context, rep *client.Report, inv *inventory, missing [][32]byte) (added, dropped int, err error) {
	need := make(map[[32]byte]bool, len(missing))
	var absent map[[32]byte]bool
	for _, h := range missing {
		need[h] = true
		if inv.der[h] == nil {
			if absent == nil {
				absent = make(map[[32]byte]bool)
			}
			absent[h] = true
		}
	}
	if absent != nil {
		a.log().Info("collecting again the certificates the server asks for beyond the held budget", "certificates", len(absent))
		again, err := a.collect(ctx, absent)
		if err != nil {
			return 0, 0, err
		}
		// Held for the length of this report only.
		for h, der := range again.der {
			inv.der[h] = der
		}
	}
	kept := rep.Certificates[:0]
	for _, c := range rep.Certificates {
		if need[c.SHA256] {
			der := inv.der[c.SHA256]
			if der == nil {
				dropped++
				a.log().Warn("certificate gone since it was collected: left out of this report", "path", c.Path)
				continue
			}
			if len(c.DER) == 0 {
				c.DER = der
				added++
			}
			delete(need, c.SHA256) // one DER per hash is enough
		}
		kept = append(kept, c)
	}
	rep.Certificates = kept
	return added, dropped, nil
}

// cleanPath makes a path acceptable to the server: valid UTF-8 without
// control characters (a file name may hold either), escaped as \xNN and
// \uNNNN so that it still names the file. ok is false when it is too long.
func cleanPath(p string) (string, bool) {
	clean := utf8.ValidString(p)
	if clean {
		for _, r := range p {
			if unicode.IsControl(r) {
				clean = false
				break
			}
		}
	}
	if !clean {
		var b strings.Builder
		for i := 0; i < len(p); {
			r, size := utf8.DecodeRuneInString(p[i:])
			switch {
			case r == utf8.RuneError && size == 1:
				fmt.Fprintf(&b, `\x%02x`, p[i])
			case unicode.IsControl(r):
				q := strconv.QuoteRuneToASCII(r)
				b.WriteString(q[1 : len(q)-1])
			default:
				b.WriteString(p[i : i+size])
			}
			i += size
		}
		p = b.String()
	}
	if p == "" || len(p) > certinv.MaxPathBytes {
		return p, false
	}
	return p, true
}
