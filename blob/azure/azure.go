// Package azure keeps certinv's snapshot files in Azure Blob Storage, the
// store the vendor's own export uses, and signs real service SAS URLs for
// them, so that clients download straight from storage.
//
// A Bucket implements blob.Bucket and blob.URLSigner. The first segment of
// a key names a storage container, the rest the blob in it. Objects are
// block blobs uploaded in parallel blocks and committed at the end, so that
// a blob becomes visible whole or not at all. SAS URLs are read only
// (sp=r), for one blob (sr=b), valid from start to expiry, and signed with
// the account's shared key: storage itself refuses a changed URL.
package azure

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"
	"github.com/certinv/certinv/blob"
)

// Config says which storage account to use: either ConnectionString, or
// AccountURL with AccountKey.
type Config struct {
	// ConnectionString is an Azure Storage connection string with an
	// account key ("DefaultEndpointsProtocol=https;AccountName=...;
	// AccountKey=...;EndpointSuffix=core.windows.net", or with BlobEndpoint).
	ConnectionString string

	// AccountURL is the blob service's URL
	// ("https://ACCOUNT.blob.core.windows.net"), used with AccountKey.
	// AccountName defaults to the host's first label.
	AccountURL  string
	AccountName string
	AccountKey  string // base64, as the portal shows it

	// BlockSize is the size of each block of an upload (default 4 MiB, at
	// least 1 MiB); Concurrency how many blocks go up at once (default 4).
	// Each concurrent block holds a buffer of BlockSize.
	BlockSize   int64
	Concurrency int
}

// Bucket is a blob.Bucket and blob.URLSigner on an Azure storage account.
// It is safe for concurrent use.
type Bucket struct {
	client      *azblob.Client
	cred        *azblob.SharedKeyCredential
	https       bool
	blockSize   int64
	concurrency int

	mu      sync.Mutex
	created map[string]bool // containers this process made or found
}

var (
	_ blob.Bucket    = (*Bucket)(nil)
	_ blob.URLSigner = (*Bucket)(nil)
)

// NewBucket returns the bucket of the account cfg names. It lists one
// container to check that the account answers and accepts the key, so that
// a wrong setting fails at start, not at the first snapshot.
func NewBucket(ctx context.Context, cfg Config) (*Bucket, error) {
	serviceURL, account, key := cfg.AccountURL, cfg.AccountName, cfg.AccountKey
	if cfg.ConnectionString != "" {
		if serviceURL != "" || key != "" {
			return nil, errors.New("azure blob: give a connection string or an account URL and key, not both")
		}
		var err error
		serviceURL, account, key, err = parseConnectionString(cfg.ConnectionString)
		if err != nil {
			return nil, err
		}
	}
	u, err := url.Parse(serviceURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("azure blob: account URL %q is not an http(s) URL", serviceURL)
	}
	if account == "" {
		account, _, _ = strings.Cut(u.Hostname(), ".")
	}
	if key == "" {
		return nil, errors.New("azure blob: an account key is required (SAS URLs are signed with it)")
	}
	cred, err := azblob.NewSharedKeyCredential(account, key)
	if err != nil {
		return nil, errors.New("azure blob: the account key is not valid base64")
	}
	client, err := azblob.NewClientWithSharedKeyCredential(strings.TrimSuffix(serviceURL, "/")+"/", cred, nil)
	if err != nil {
		return nil, fmt.Errorf("azure blob: %w", err)
	}
	b := &Bucket{
		client:      client,
		cred:        cred,
		https:       u.Scheme == "https",
		blockSize:   cfg.BlockSize,
		concurrency: cfg.Concurrency,
		created:     make(map[string]bool),
	}
	if b.blockSize == 0 {
		b.blockSize = 4 << 20
	}
	if b.blockSize < 1<<20 {
		return nil, fmt.Errorf("azure blob: block size %d is under the 1 MiB minimum", b.blockSize)
	}
	if b.concurrency <= 0 {
		b.concurrency = 4
	}
	if err := b.Ping(ctx); err != nil {
		return nil, err
	}
	return b, nil
}

// parseConnectionString returns the blob endpoint, account name and key of
// an Azure Storage connection string.
func parseConnectionString(cs string) (endpoint, account, key string, err error) {
	kv := map[string]string{}
	for part := range strings.SplitSeq(cs, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			// Never quote the string: it holds the key.
			return "", "", "", errors.New("azure blob: the connection string is not a list of name=value pairs")
		}
		kv[strings.ToLower(k)] = v
	}
	account, key = kv["accountname"], kv["accountkey"]
	if account == "" || key == "" {
		return "", "", "", errors.New("azure blob: the connection string needs AccountName and AccountKey")
	}
	endpoint = kv["blobendpoint"]
	if endpoint == "" {
		proto, suffix := kv["defaultendpointsprotocol"], kv["endpointsuffix"]
		if proto == "" {
			proto = "https"
		}
		if suffix == "" {
			suffix = "core.windows.net"
		}
		endpoint = proto + "://" + account + ".blob." + suffix
	}
	return endpoint, account, key, nil
}

// Ping checks that the account answers and accepts the key, for readiness
// checks.
func (b *Bucket) Ping(ctx context.Context) error {
	one := int32(1)
	pager := b.client.NewListContainersPager(&azblob.ListContainersOptions{MaxResults: &one})
	if _, err := pager.NextPage(ctx); err != nil {
		return fmt.Errorf("azure blob: list containers: %w", err)
	}
	return nil
}

// split returns the container and blob name of key.
func split(key string) (container, name string, err error) {
	if err := blob.ValidateKey(key); err != nil {
		return "", "", err
	}
	container, name, ok := strings.Cut(key, "/")
	if !ok {
		return "", "", fmt.Errorf("invalid blob key %q: it must name a container and an object", key)
	}
	if err := validateContainer(container); err != nil {
		return "", "", err
	}
	if len(name) > 1024 {
		return "", "", fmt.Errorf("invalid blob key %q: a blob name is at most 1,024 characters", key)
	}
	return container, name, nil
}

// validateContainer checks Azure's rule for container names: 3 to 63
// lowercase letters, digits and single hyphens, starting and ending with a
// letter or digit.
func validateContainer(name string) error {
	bad := len(name) < 3 || len(name) > 63 || name[0] == '-' || name[len(name)-1] == '-' || strings.Contains(name, "--")
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			bad = true
		}
	}
	if bad {
		return fmt.Errorf("invalid container name %q: Azure wants 3 to 63 lowercase letters, digits and single hyphens", name)
	}
	return nil
}

// ensureContainer creates container unless this process knows it exists.
func (b *Bucket) ensureContainer(ctx context.Context, container string) error {
	b.mu.Lock()
	known := b.created[container]
	b.mu.Unlock()
	if known {
		return nil
	}
	_, err := b.client.CreateContainer(ctx, container, nil)
	if err != nil && !bloberror.HasCode(err, bloberror.ContainerAlreadyExists) {
		return fmt.Errorf("create container %s: %w", container, err)
	}
	b.mu.Lock()
	b.created[container] = true
	b.mu.Unlock()
	return nil
}

// Put uploads r as a block blob at key, creating its container if needed:
// blocks go up in parallel and the blob appears, whole, when its block list
// is committed at the end. A failed or cancelled Put commits nothing (the
// service drops uncommitted blocks within a week); an existing blob stays
// as it was.
func (b *Bucket) Put(ctx context.Context, key string, r io.Reader) error {
	container, name, err := split(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if err := b.ensureContainer(ctx, container); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	// The reader's own error is kept apart: the SDK may report it wrapped
	// in its own words.
	er := &errReader{r: r}
	_, err = b.client.UploadStream(ctx, container, name, er, &azblob.UploadStreamOptions{
		BlockSize:   b.blockSize,
		Concurrency: b.concurrency,
	})
	if err != nil {
		if er.err != nil && !errors.Is(err, er.err) {
			err = fmt.Errorf("%w (%v)", er.err, err)
		}
		if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
			err = fmt.Errorf("%w (%v)", ctxErr, err)
		}
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

// errReader remembers the first error of r other than io.EOF.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}

// Open reads the blob at key from byte off: n bytes, or to its end when
// n < 0. A missing blob or container is an error matching fs.ErrNotExist.
func (b *Bucket) Open(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	container, name, err := split(key)
	if err != nil {
		return nil, err
	}
	if off < 0 {
		return nil, fmt.Errorf("open %s: negative offset %d", key, off)
	}
	if n == 0 {
		// A range of zero bytes means "to the end" to the service: ask
		// only whether the blob exists.
		return b.empty(ctx, key, container, name, off)
	}
	opts := &azblob.DownloadStreamOptions{Range: azblob.HTTPRange{Offset: off}}
	if n > 0 {
		opts.Range.Count = n
	}
	resp, err := b.client.DownloadStream(ctx, container, name, opts)
	if bloberror.HasCode(err, bloberror.InvalidRange) {
		// The offset is at or past the end.
		return b.empty(ctx, key, container, name, off)
	}
	if err != nil {
		return nil, openError(key, err)
	}
	return resp.Body, nil
}

// empty answers a read of no bytes at off: an empty reader when the blob
// exists and off is within or at its end.
func (b *Bucket) empty(ctx context.Context, key, container, name string, off int64) (io.ReadCloser, error) {
	props, err := b.client.ServiceClient().NewContainerClient(container).NewBlobClient(name).GetProperties(ctx, nil)
	if err != nil {
		return nil, openError(key, err)
	}
	if props.ContentLength != nil && off > *props.ContentLength {
		return nil, fmt.Errorf("open %s: offset %d is past the end (%d bytes)", key, off, *props.ContentLength)
	}
	return io.NopCloser(strings.NewReader("")), nil
}

func openError(key string, err error) error {
	if bloberror.HasCode(err, bloberror.BlobNotFound, bloberror.ContainerNotFound, bloberror.ResourceNotFound) {
		return fmt.Errorf("open %s: %w", key, fs.ErrNotExist)
	}
	return fmt.Errorf("open %s: %w", key, err)
}

// Containers lists the account's containers.
func (b *Bucket) Containers(ctx context.Context) ([]string, error) {
	var names []string
	pager := b.client.NewListContainersPager(nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list containers: %w", err)
		}
		for _, c := range page.ContainerItems {
			if c.Name != nil {
				names = append(names, *c.Name)
			}
		}
	}
	return names, nil
}

// DeleteContainer deletes a container and its blobs; one that does not
// exist is not an error. The service removes the blobs in the background;
// they cease to be readable at once.
func (b *Bucket) DeleteContainer(ctx context.Context, container string) error {
	if err := validateContainer(container); err != nil {
		return err
	}
	b.mu.Lock()
	delete(b.created, container)
	b.mu.Unlock()
	_, err := b.client.DeleteContainer(ctx, container, nil)
	if err != nil && !bloberror.HasCode(err, bloberror.ContainerNotFound, bloberror.ContainerBeingDeleted) {
		return fmt.Errorf("delete container %s: %w", container, err)
	}
	return nil
}

// SignedURL returns a service SAS URL of the blob at key: read only (sp=r),
// for that blob alone (sr=b), valid from start (st) to expiry (se), signed
// with the account key (sig), over https only when the account's URL is
// https. Storage refuses it once its path, query or expiry is changed.
func (b *Bucket) SignedURL(ctx context.Context, key string, start, expiry time.Time) (string, error) {
	container, name, err := split(key)
	if err != nil {
		return "", err
	}
	start, expiry = start.UTC().Truncate(time.Second), expiry.UTC().Truncate(time.Second)
	if !expiry.After(start) {
		return "", errors.New("azure blob: expiry must be after start")
	}
	v := sas.BlobSignatureValues{
		StartTime:     start,
		ExpiryTime:    expiry,
		Permissions:   (&sas.BlobPermissions{Read: true}).String(),
		ContainerName: container,
		BlobName:      name,
	}
	if b.https {
		v.Protocol = sas.ProtocolHTTPS
	}
	q, err := v.SignWithSharedKey(b.cred)
	if err != nil {
		return "", fmt.Errorf("sign %s: %w", key, err)
	}
	// The path keeps its slashes, as the vendor's export URLs do (the
	// SDK's own blob URL escapes them as %2F).
	segs := strings.Split(name, "/")
	for i := range segs {
		segs[i] = url.PathEscape(segs[i])
	}
	return b.client.URL() + container + "/" + strings.Join(segs, "/") + "?" + q.Encode(), nil
}
