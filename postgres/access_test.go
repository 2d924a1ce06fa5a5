package postgres

import (
	"testing"

	"github.com/certinv/certinv/storetest"
)

func TestAccess(t *testing.T) {
	storetest.RunAccess(t, func(t *testing.T) storetest.AccessStore { return openTest(t) })
}
