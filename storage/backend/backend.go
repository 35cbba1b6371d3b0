// Package backend opens a storage location: a local directory (a path,
// or a file:// URL) with localfs, or an S3 bucket and prefix (an s3://
// URL) with s3fs. Backends on one S3 store share one client.
package backend

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ferryftp/ferry/storage"
	"github.com/ferryftp/ferry/storage/localfs"
	"github.com/ferryftp/ferry/storage/s3fs"
)

// IsURL reports whether loc is a URL (scheme://…) rather than a path.
func IsURL(loc string) bool {
	i := strings.Index(loc, "://")
	return i > 0 && !strings.ContainsAny(loc[:i], `/\.`)
}

// LocalDir returns the directory of a local location (a path or a
// file:// URL), and false for any other.
func LocalDir(loc string) (string, bool) {
	if !IsURL(loc) {
		return loc, true
	}
	u, err := url.Parse(loc)
	if err != nil || u.Scheme != "file" || (u.Host != "" && u.Host != "localhost") || u.Path == "" {
		return "", false
	}
	return u.Path, true
}

// Check validates loc without opening it (for configuration checks).
func Check(loc string) error {
	if _, ok := LocalDir(loc); ok {
		return nil
	}
	if strings.HasPrefix(loc, "s3://") {
		_, err := s3fs.ParseURL(loc)
		return err
	}
	if strings.HasPrefix(loc, "file:") {
		return fmt.Errorf("storage %q: a file URL is file:///absolute/path", loc)
	}
	return fmt.Errorf("storage %q: unknown scheme (file:///dir or s3://bucket/prefix)", redact(loc))
}

// redact keeps the scheme and host of a URL for a message.
func redact(loc string) string {
	if u, err := url.Parse(loc); err == nil {
		return u.Scheme + "://" + u.Host + "/…"
	}
	return "(unparsable)"
}

// Opener opens locations. The zero value is ready to use.
type Opener struct {
	// Local are the options of local directories.
	Local localfs.Options
	// Claims, when set, marks the running uploads of object stores for
	// every server sharing them (a cluster); nil: this process's.
	Claims s3fs.Claims

	mu      sync.Mutex
	clients map[string]*s3.Client // by endpoint, region and addressing
}

// Open opens the backend of loc.
func (o *Opener) Open(ctx context.Context, loc string) (storage.FS, error) {
	if dir, ok := LocalDir(loc); ok {
		return localfs.New(dir, o.Local)
	}
	if err := Check(loc); err != nil {
		return nil, err
	}
	l, _ := s3fs.ParseURL(loc)
	c, err := o.client(ctx, l)
	if err != nil {
		return nil, err
	}
	l.Config.Claims = o.Claims
	return s3fs.New(ctx, c, l.Config)
}

func (o *Opener) client(ctx context.Context, l s3fs.Location) (*s3.Client, error) {
	key := fmt.Sprintf("%s|%s|%t", l.Endpoint, l.Region, l.PathStyle)
	o.mu.Lock()
	defer o.mu.Unlock()
	if c, ok := o.clients[key]; ok {
		return c, nil
	}
	c, err := l.Client(ctx)
	if err != nil {
		return nil, err
	}
	if o.clients == nil {
		o.clients = map[string]*s3.Client{}
	}
	o.clients[key] = c
	return c, nil
}
