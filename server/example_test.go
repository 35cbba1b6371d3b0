package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"log/slog"
	"net"
	"strings"

	"github.com/ferryftp/ferry/auth"
	"github.com/ferryftp/ferry/client"
	"github.com/ferryftp/ferry/server"
	"github.com/ferryftp/ferry/storage"
	"github.com/ferryftp/ferry/storage/memfs"
)

// A server embedded in a program: its own authentication (here one user
// with a fixed password; a real one would ask a database and compare
// hashes) and its own storage (here in memory; any storage.FS, such as
// localfs on a directory). Options left zero take their defaults.
func Example() {
	files := memfs.New()
	srv := &server.Server{
		Auth: auth.Func(func(ctx context.Context, c auth.ConnInfo, user, pass string) (*auth.Account, error) {
			if user != "demo" || pass != "s3cret" {
				return nil, auth.ErrBadCredentials
			}
			return &auth.Account{User: user, FS: files, Perms: auth.Permissions{Write: true}}, nil
		}),
		Logger: slog.New(slog.DiscardHandler),
	}
	srv.Options.Welcome = "Example server."
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()

	// Any FTP client can now log in; Ferry's own, for instance.
	ctx := context.Background()
	c, err := client.Dial(ctx, ln.Addr().String(), &client.Config{User: "demo", Password: "s3cret"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Store(ctx, "hello.txt", strings.NewReader("hello, world\n"), nil); err != nil {
		log.Fatal(err)
	}
	// The upload is in the server's storage.
	r, err := files.Open(ctx, "hello.txt", 0)
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	b, _ := io.ReadAll(r)
	fmt.Printf("%q\n", b)
	// Output: "hello, world\n"
}

// Interface guard: a storage backend of one's own implements storage.FS
// (and any optional capability it has, such as storage.Chtimeser).
var _ storage.FS = memfs.New()

// readOnly is a storage.FS of one's own: it wraps another and refuses
// every change (the server maps fs.ErrPermission to 550).
type readOnly struct{ storage.FS }

func (readOnly) Create(context.Context, string, storage.CreateOptions) (storage.Upload, error) {
	return nil, fs.ErrPermission
}
func (readOnly) Mkdir(context.Context, string) error          { return fs.ErrPermission }
func (readOnly) Remove(context.Context, string) error         { return fs.ErrPermission }
func (readOnly) RemoveDir(context.Context, string) error      { return fs.ErrPermission }
func (readOnly) Rename(context.Context, string, string) error { return fs.ErrPermission }

// guests is an auth.Authenticator of one's own: any name logs in, with
// the password "guest", to the same read-only files.
type guests struct{ files storage.FS }

func (g guests) Authenticate(ctx context.Context, c auth.ConnInfo, user, pass string) (*auth.Account, error) {
	if pass != "guest" {
		return nil, auth.ErrBadCredentials
	}
	return &auth.Account{User: user, FS: g.files, Perms: auth.Permissions{Write: true}}, nil
}

// A server with an authenticator and a storage backend of one's own.
func Example_customBackends() {
	files := memfs.New()
	u, _ := files.Create(context.Background(), "notice.txt", storage.CreateOptions{})
	io.WriteString(u, "read me\n")
	u.Commit()
	srv := &server.Server{Auth: guests{readOnly{files}}, Logger: slog.New(slog.DiscardHandler)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()

	ctx := context.Background()
	c, err := client.Dial(ctx, ln.Addr().String(), &client.Config{User: "visitor", Password: "guest"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	entries, _ := c.List(ctx, "/")
	for _, e := range entries {
		fmt.Println(e.Name, e.Size)
	}
	_, err = c.Store(ctx, "upload.txt", strings.NewReader("x"), nil)
	var fe *client.Error
	if errors.As(err, &fe) {
		fmt.Println("upload refused:", fe.Code)
	}
	// Output:
	// notice.txt 8
	// upload refused: 550
}
