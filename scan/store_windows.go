//go:build windows

package scan

import (
	"context"
	"errors"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/windows"
)

// The Windows side of the system stores: thin calls into crypt32. The
// logic (which stores, which paths) is in system.go.

func init() {
	readSystemStore = windowsReadStore
	listSystemStores = windowsListStores
}

// windowsReadStore returns the DER of every certificate of a LocalMachine
// system store, opened read-only and only if it exists.
func windowsReadStore(ctx context.Context, store string) ([][]byte, error) {
	name, err := windows.UTF16PtrFromString(store)
	if err != nil {
		return nil, err
	}
	h, err := windows.CertOpenStore(windows.CERT_STORE_PROV_SYSTEM_W, 0, 0,
		windows.CERT_SYSTEM_STORE_LOCAL_MACHINE|windows.CERT_STORE_OPEN_EXISTING_FLAG|windows.CERT_STORE_READONLY_FLAG,
		uintptr(unsafe.Pointer(name)))
	if err != nil {
		if errors.Is(err, windows.ERROR_FILE_NOT_FOUND) {
			return nil, errStoreMissing
		}
		return nil, err
	}
	defer windows.CertCloseStore(h, 0)
	var out [][]byte
	var c *windows.CertContext
	for {
		if err := ctx.Err(); err != nil {
			if c != nil {
				windows.CertFreeCertificateContext(c)
			}
			return nil, err
		}
		c, err = windows.CertEnumCertificatesInStore(h, c)
		if c == nil {
			break // CRYPT_E_NOT_FOUND: the end
		}
		der := unsafe.Slice(c.EncodedCert, c.Length)
		out = append(out, append([]byte(nil), der...))
	}
	return out, nil
}

var (
	crypt32                 = windows.NewLazySystemDLL("crypt32.dll")
	procCertEnumSystemStore = crypt32.NewProc("CertEnumSystemStore")

	enumMu       sync.Mutex
	enumNames    []string
	enumCallback = sync.OnceValue(func() uintptr {
		// BOOL CertEnumSystemStoreCallback(const void *pvSystemStore,
		// DWORD dwFlags, PCERT_SYSTEM_STORE_INFO pStoreInfo,
		// void *pvReserved, void *pvArg)
		return syscall.NewCallback(func(store *uint16, flags uint32, info, reserved, arg uintptr) uintptr {
			enumNames = append(enumNames, windows.UTF16PtrToString(store))
			return 1 // go on
		})
	})
)

// windowsListStores enumerates the LocalMachine system stores.
func windowsListStores(ctx context.Context) ([]string, error) {
	if err := procCertEnumSystemStore.Find(); err != nil {
		return nil, err
	}
	enumMu.Lock()
	defer enumMu.Unlock()
	enumNames = nil
	r, _, err := procCertEnumSystemStore.Call(uintptr(windows.CERT_SYSTEM_STORE_LOCAL_MACHINE), 0, 0, enumCallback())
	if r == 0 {
		return nil, err
	}
	return append([]string(nil), enumNames...), nil
}
