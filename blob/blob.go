// Package blob defines where snapshot files live (a Bucket) and how clients
// are given download URLs for them (a URLSigner). Dir keeps objects in a
// local folder and LocalSigner signs URLs that certinv serves itself; the
// Azure implementation keeps them in Blob Storage with service SAS URLs.
package blob

import (
	"context"
	"io"
	"time"
)

// Bucket stores immutable objects under slash-separated keys. The first
// segment of a key names its container: a snapshot keeps all its objects in
// one container, so that retiring it is one DeleteContainer.
//
// Errors: Open of a missing object returns an error for which
// errors.Is(err, fs.ErrNotExist) is true.
type Bucket interface {
	// Put stores the bytes of r at key. The object becomes visible whole when
	// Put returns nil, and not at all when it fails or ctx ends.
	Put(ctx context.Context, key string, r io.Reader) error

	// Open reads the object at key from byte off: n bytes, or to its end when
	// n < 0.
	Open(ctx context.Context, key string, off, n int64) (io.ReadCloser, error)

	// Containers lists the containers, in any order.
	Containers(ctx context.Context) ([]string, error)

	// DeleteContainer removes a container and every object in it. Removing a
	// container that does not exist is not an error.
	DeleteContainer(ctx context.Context, container string) error
}

// URLSigner makes download URLs for objects: valid from start until expiry,
// read only, refused once their path, query or expiry is changed.
type URLSigner interface {
	SignedURL(ctx context.Context, key string, start, expiry time.Time) (string, error)
}
