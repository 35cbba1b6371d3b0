package client_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"strings"

	"github.com/ferryftp/ferry/auth"
	"github.com/ferryftp/ferry/client"
	"github.com/ferryftp/ferry/server"
	"github.com/ferryftp/ferry/storage/memfs"
)

// exampleServer starts a server for the examples: user "demo", password
// "s3cret", files in memory.
func exampleServer() (addr string, stop func()) {
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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve(ln)
	return ln.Addr().String(), func() { srv.Close() }
}

// Log in, upload, list, download and rename; every call takes a context
// (a deadline or a cancel ends it and its transfer).
func Example() {
	addr, stop := exampleServer()
	defer stop()
	ctx := context.Background()
	c, err := client.Dial(ctx, addr, &client.Config{User: "demo", Password: "s3cret"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	if err := c.Mkdir(ctx, "docs"); err != nil {
		log.Fatal(err)
	}
	if _, err := c.Store(ctx, "docs/a.txt", strings.NewReader("first file\n"), nil); err != nil {
		log.Fatal(err)
	}
	entries, err := c.List(ctx, "docs")
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range entries {
		fmt.Println(e.Name, e.Size)
	}
	d, err := c.Retrieve(ctx, "docs/a.txt", nil)
	if err != nil {
		log.Fatal(err)
	}
	b, err := io.ReadAll(d)
	d.Close()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%q\n", b)
	if err := c.Rename(ctx, "docs/a.txt", "docs/b.txt"); err != nil {
		log.Fatal(err)
	}
	entries, _ = c.List(ctx, "docs")
	fmt.Println(entries[0].Name)
	// Output:
	// a.txt 11
	// "first file\n"
	// b.txt
}
