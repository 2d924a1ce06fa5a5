// Package cabundle is a real CA bundle: the Mozilla root store as Debian
// 12's ca-certificates (20230311+deb12u1) ships it in
// /etc/ssl/certs/ca-certificates.crt. It is embedded, not read from the
// host, so that every machine has the same bytes: the synthetic fleet's
// public roots (package synth) and the parser's golden tests use it.
package cabundle

import _ "embed"

// PEM is the bundle, PEM certificates one after another.
//
//go:embed ca-certificates.crt
var PEM []byte
