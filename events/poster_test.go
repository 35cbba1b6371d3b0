package events

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestPoster: one connection carries many POSTs; a connection the server
// closed while idle, or after its answer, is replaced without a failed
// delivery; credentials in the URL go as basic authentication; an error
// never shows the URL's token.
func TestPoster(t *testing.T) {
	var conns, posts atomic.Int32
	var auth atomic.Value
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		posts.Add(1)
		if u, p, ok := r.BasicAuth(); ok {
			auth.Store(u + ":" + p)
		}
		if r.Header.Get("Idempotency-Key") == "" || r.Header.Get("Content-Type") != "application/json" {
			w.WriteHeader(400)
			return
		}
		w.WriteHeader(204)
	}))
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	var p poster
	defer p.close()
	ctx := context.Background()
	for i := range 20 {
		if err := p.post(ctx, srv.URL+"/hook", "id", []byte(`{}`)); err != nil {
			t.Fatalf("post %d: %v", i, err)
		}
	}
	if conns.Load() != 1 || posts.Load() != 20 {
		t.Fatalf("%d connections for %d posts, want 1 for 20", conns.Load(), posts.Load())
	}
	// The server closes idle connections: the next POST takes a new one.
	srv.CloseClientConnections()
	deadline := time.Now().Add(5 * time.Second)
	for p.alive() {
		if time.Now().After(deadline) {
			t.Fatal("a closed connection still looks alive")
		}
		time.Sleep(5 * time.Millisecond) // the close travels over loopback
	}
	if err := p.post(ctx, srv.URL+"/hook", "id", []byte(`{}`)); err != nil || conns.Load() != 2 {
		t.Fatalf("after the server closed: %v, %d connections", err, conns.Load())
	}
	// Keep-alive off on the server: each POST on a new connection.
	srv.Config.SetKeepAlivesEnabled(false)
	for range 3 {
		if err := p.post(ctx, srv.URL+"/hook", "id", []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	if conns.Load() != 5 {
		t.Errorf("%d connections after three without keep-alive, want 5", conns.Load())
	}
	srv.Config.SetKeepAlivesEnabled(true)
	u := strings.Replace(srv.URL, "http://", "http://hook:s3cret@", 1) + "/hook?token=s3cret"
	if err := p.post(ctx, u, "id", []byte(`{}`)); err != nil || auth.Load() != "hook:s3cret" {
		t.Fatalf("credentials in the URL: %v %v", err, auth.Load())
	}
	err := p.post(ctx, "http://127.0.0.1:1/hook?token=s3cret", "id", []byte(`{}`))
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("a refused connection: %v", err)
	}
}
