//go:build linux

package server

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferryftp/ferry/storage"
)

// sendfilePair is a connected TCP pair on loopback and a file of size
// random bytes.
func sendfilePair(t *testing.T, size int) (server, client net.Conn, f *os.File, data []byte) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	data = make([]byte, size)
	rand.Read(data)
	name := filepath.Join(t.TempDir(), "f")
	os.WriteFile(name, data, 0o644)
	f, err = os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return server, client, f, data
}

// TestSendFilePath: sendFile takes a file to a plain TCP connection, from
// the file's offset, counts the bytes, closes the connection (the client
// sees its end) and gives its thread back; it leaves anything else, and
// everything once the threads are taken, to the poller.
func TestSendFilePath(t *testing.T) {
	s := &session{srv: &Server{Options: Options{TransferThreads: 1}}}
	s.srv.init()
	sc, cc, f, data := sendfilePair(t, 5<<20+1)
	f.Seek(1000, io.SeekStart)
	x := &transfer{conn: sc}
	got := make(chan []byte)
	go func() { b, _ := io.ReadAll(cc); got <- b }()
	sent, err := s.sendFile(x, sc, f)
	if !sent || err != nil {
		t.Fatalf("sendFile: %v %v", sent, err)
	}
	if b := <-got; !bytes.Equal(b, data[1000:]) {
		t.Fatalf("client got %d bytes, want %d", len(b), len(data)-1000)
	}
	if n := x.bytes.Load(); n != int64(len(data)-1000) {
		t.Fatalf("counted %d bytes", n)
	}
	if len(s.srv.threadSem) != 0 {
		t.Fatal("thread not given back")
	}
	if err := sc.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("connection not handed over: Close gave %v", err)
	}

	// A wrapping storage keeps the path by forwarding storage.ZeroCopy.
	sc3, cc3, f3, data3 := sendfilePair(t, 2<<20)
	go func() { b, _ := io.ReadAll(cc3); got <- b }()
	wrapped := struct {
		io.Reader
		storage.ZeroCopy
	}{f3, f3}
	if sent, err := s.sendFile(&transfer{conn: sc3}, sc3, wrapped); !sent || err != nil {
		t.Fatalf("sendFile of a wrapper that forwards ZeroCopy: %v %v", sent, err)
	}
	if b := <-got; !bytes.Equal(b, data3) {
		t.Fatalf("through the wrapper the client got %d bytes, want %d", len(b), len(data3))
	}

	sc2, _, f2, _ := sendfilePair(t, 10)
	if sent, _ := s.sendFile(&transfer{}, sc2, strings.NewReader("not a file")); sent {
		t.Fatal("sent a reader that is no file")
	}
	if sent, _ := s.sendFile(&transfer{}, struct{ net.Conn }{sc2}, f2); sent {
		t.Fatal("sent to a connection that is no *net.TCPConn")
	}
	if got, _ := s.recvFile(&transfer{}, sc2, new(bytes.Buffer)); got {
		t.Fatal("received into a writer that is no storage.ZeroCopy")
	}
	s.srv.threadSem <- struct{}{} // the one thread is busy
	if sent, _ := s.sendFile(&transfer{}, sc2, f2); sent {
		t.Fatal("sent beyond TransferThreads")
	}
	<-s.srv.threadSem
	off := &session{srv: &Server{Options: Options{TransferThreads: -1}}}
	off.srv.init()
	if sent, _ := off.sendFile(&transfer{}, sc2, f2); sent {
		t.Fatal("sent with TransferThreads < 0")
	}
}

// TestSendFileAbortAndStall: a sendFile blocked on a client that reads
// nothing returns when the transfer is aborted, and by itself after the
// stall timeout; either way its thread is given back.
func TestSendFileAbortAndStall(t *testing.T) {
	for _, name := range []string{"abort", "stall"} {
		t.Run(name, func(t *testing.T) {
			s := &session{srv: &Server{Options: Options{DataStallTimeout: time.Hour}}}
			if name == "stall" {
				s.srv.DataStallTimeout = 200 * time.Millisecond
			}
			s.srv.init()
			sc, _, f, _ := sendfilePair(t, 64<<20)
			x := &transfer{conn: sc}
			type result struct {
				sent bool
				err  error
			}
			done := make(chan result, 1)
			start := time.Now()
			go func() { sent, err := s.sendFile(x, sc, f); done <- result{sent, err} }()
			if name == "abort" {
				deadline := time.Now().Add(10 * time.Second)
				for x.bytes.Load() == 0 { // blocked once the buffers are full
					if time.Now().After(deadline) {
						t.Fatal("sendFile moved no byte in 10s")
					}
					time.Sleep(time.Millisecond)
				}
				x.abort()
			}
			select {
			case r := <-done:
				if !r.sent || !errors.As(r.err, new(netErr)) {
					t.Fatalf("sendFile: %v %v", r.sent, r.err)
				}
				if name == "stall" && time.Since(start) < 200*time.Millisecond {
					t.Fatalf("stalled after %v, before the timeout", time.Since(start))
				}
				if name == "stall" && !errors.Is(r.err, os.ErrDeadlineExceeded) {
					t.Fatalf("stall: %v", r.err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("sendFile still blocked")
			}
			if len(s.srv.threadSem) != 0 {
				t.Fatal("thread not given back")
			}
		})
	}
}
