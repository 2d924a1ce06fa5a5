package scan

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// This file holds the logic of the system stores that build-tagged files
// reach: store names and paths for Windows, keychain parsing for macOS. It
// has no build tag so that its tests run everywhere.

// storeRoot is the place that names every LocalMachine store.
const storeRoot = "LocalMachine"

// KnownStores are the LocalMachine system stores of Windows 10 and 11 and
// Windows Server. Scan reads each that exists, with any others that the
// system enumerates.
var KnownStores = []string{
	"AAD Token Issuer", "AuthRoot", "CA", "ClientAuthIssuer", "Disallowed",
	"eSIM Certification Authorities", "FlightRoot", "Homegroup Machine Certificates",
	"Local NonRemovable Certificates", "My", "OemEsim", "PasspointTrustedRoots",
	"Remote Desktop", "REQUEST", "Root", "SmartCardRoot", "TestSignRoot", "Trust",
	"TrustedAppRoot", "TrustedDevices", "TrustedPeople", "TrustedPublisher",
	"Windows Live ID Token Issuer", "WebHosting",
}

// Hooks set by the build-tagged files of the systems that have them.
var (
	// listSystemStores returns the names of the LocalMachine stores the
	// system enumerates (Windows).
	listSystemStores func(ctx context.Context) ([]string, error)
	// readSystemStore returns the DER of every certificate in a
	// LocalMachine store, errStoreMissing when it does not exist (Windows).
	readSystemStore func(ctx context.Context, store string) ([][]byte, error)
	// readKeychain returns a keychain's certificates as PEM (macOS).
	readKeychain func(ctx context.Context, path string, maxBytes int64) ([]byte, error)
)

var errStoreMissing = errors.New("store does not exist")

// StorePath returns where a certificate of a LocalMachine store lives, as
// the vendor writes it: LocalMachine\<store>\<SHA-1 of the DER, uppercase hex>.
func StorePath(store string, der []byte) string {
	sum := sha1.Sum(der)
	return storeRoot + `\` + store + `\` + strings.ToUpper(hex.EncodeToString(sum[:]))
}

// isStorePlace reports whether a place names LocalMachine stores:
// "LocalMachine" (all of them) or "LocalMachine\<store>".
func isStorePlace(place string) bool {
	head, _, _ := strings.Cut(place, `\`)
	return strings.EqualFold(head, storeRoot) && strings.Count(place, `\`) <= 1
}

// storesOf returns the stores a place names, given the enumerated ones:
// one store, or for "LocalMachine" the known and enumerated ones, without
// repeats (store names are case-insensitive), sorted.
func storesOf(place string, enumerated []string) []string {
	if _, store, ok := strings.Cut(place, `\`); ok {
		return []string{store}
	}
	seen := map[string]bool{}
	var out []string
	for _, list := range [][]string{KnownStores, enumerated} {
		for _, s := range list {
			if k := strings.ToLower(s); s != "" && !seen[k] {
				seen[k] = true
				out = append(out, s)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return strings.ToLower(out[i]) < strings.ToLower(out[j]) })
	return out
}

func (s *scanner) stores(ctx context.Context, place string) error {
	if readSystemStore == nil {
		s.warnf(place, "system certificate stores are read on Windows only")
		return nil
	}
	var enumerated []string
	if listSystemStores != nil && !strings.Contains(place, `\`) {
		var err error
		if enumerated, err = listSystemStores(ctx); err != nil {
			s.warnf(place, "cannot enumerate the system stores: %v", err)
		}
	}
	single := strings.Contains(place, `\`)
	for _, store := range storesOf(place, enumerated) {
		if err := ctx.Err(); err != nil {
			return err
		}
		ders, err := readSystemStore(ctx, store)
		if err != nil {
			if !errors.Is(err, errStoreMissing) || single {
				s.warnf(storeRoot+`\`+store, "%v", err)
			}
			continue
		}
		p := &parser{}
		for i, der := range ders {
			p.addChecked(fmt.Sprintf("certificate %d", i+1), "", der)
		}
		for _, err := range p.errs {
			s.warn(Warning{Path: storeRoot + `\` + store, Err: err})
		}
		for _, e := range p.entries {
			if err := s.emitOne(ctx, StorePath(store, e.DER), e.DER); err != nil {
				return err
			}
		}
	}
	return nil
}

// isKeychain reports whether a place names a macOS keychain file.
func isKeychain(place string) bool {
	return strings.HasSuffix(place, ".keychain") || strings.HasSuffix(place, ".keychain-db")
}

// keychain reads a keychain through the system's security tool, whose PEM
// output is parsed like a file's; every certificate's path is the keychain.
func (s *scanner) keychain(ctx context.Context, path string) error {
	pemData, err := readKeychain(ctx, path, s.maxSize)
	if err != nil {
		s.warnf(path, "%v", err)
		return nil
	}
	entries, errs := ParseFile(path, pemData, nil)
	for _, err := range errs {
		s.warn(Warning{Path: path, Err: err})
	}
	return s.emit(ctx, path, entries)
}
