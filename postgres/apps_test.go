package postgres

import (
	"testing"

	"github.com/certinv/certinv"
	"github.com/certinv/certinv/storetest"
)

func TestAppStore(t *testing.T) {
	storetest.RunApps(t, func(t *testing.T) certinv.AppStore { return openTest(t) })
}
