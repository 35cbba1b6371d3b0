package server_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryftp/ferry/auth"
	"github.com/ferryftp/ferry/server"
	"github.com/ferryftp/ferry/storage"
	"github.com/ferryftp/ferry/storage/memfs"
)

// panicLog records whether a session or a transfer panicked (the server
// recovers and logs it; for the fuzzer that is a failure).
type panicLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (p *panicLog) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if bytes.Contains(b, []byte("panic")) {
		p.buf.Write(b)
	}
	return len(b), nil
}

func (p *panicLog) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.String()
}

// dropTelnetRefusals removes IAC DONT x and IAC WONT x from b.
func dropTelnetRefusals(b []byte) []byte {
	out := b[:0:0]
	for i := 0; i < len(b); i++ {
		if b[i] == 0xff && i+2 < len(b) && (b[i+1] == 0xfc || b[i+1] == 0xfe) {
			i += 2
			continue
		}
		out = append(out, b[i])
	}
	return out
}

// FuzzSession feeds command sequences to an in-process server over
// net.Pipe. No input may panic a session, put a malformed line on the
// control connection, or stop the server from serving the next client.
func FuzzSession(f *testing.F) {
	for _, s := range []string{
		"USER alice\r\nPASS secret\r\nPWD\r\nMKD a\r\nCWD a\r\nCDUP\r\nLIST\r\nNLST\r\nQUIT\r\n",
		"USER alice\r\nPASS secret\r\nTYPE A\r\nREST 5\r\nRETR f\r\nRNFR f\r\nRNTO g\r\nDELE g\r\nSIZE f\r\nMDTM f\r\n",
		"USER alice\r\nPASS secret\r\nPASV\r\nEPSV\r\nEPSV ALL\r\nPORT 1,2,3,4,5,6\r\nEPRT |1|127.0.0.1|5000|\r\nABOR\r\nSTAT\r\nSTAT /\r\n",
		"USER alice\r\nPASS secret\r\nMLST\r\nMLSD\r\nOPTS MLST type;size;\r\nHASH f\r\nOPTS HASH MD5\r\nSITE CHMOD 644 f\r\nMFMT 20200101000000 f\r\nREIN\r\nUSER x\r\n",
		"USER alice\r\nPASS secret\r\nSTOU\r\nAPPE f\r\nSTOR f\r\nALLO 10\r\nRMD d\r\nXMKD q\r\nXPWD\r\nXCWD q\r\nXRMD /q\r\nFEAT\r\nHELP\r\nHELP RETR\r\nSYST\r\n",
		"HOST example.com\r\nUSER alice\r\nPASS wrong\r\nPASS secret\r\nUSER alice\r\nPASS secret\r\nACCT x\r\nSMNT /\r\nMODE S\r\nSTRU F\r\n",
		"AUTH TLS\r\nUSER alice\r\nPASS secret\r\n",
		"PBSZ 0\r\nPROT P\r\nCCC\r\nAUTH SSL\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"\xff\xf4\xff\xf2NOOP\r\n\xff\xfb\x01NOOP\r\n\xff\xfd\x03NOOP\r\nNO\xffOP\r\n",
		"USER alice\r\nPASS secret\r\nMKD \"a\"\"b\"\r\nMKD a\r\x00b\r\nCWD ..\r\nCWD ../../..\r\nLIST *\r\nNLST */*/*\r\nSTAT a*a*a*b\r\n",
		"USER alice\r\nPASS secret\r\nLIST -la\r\nLIST -R /\r\nNLST -a\r\nREST 99999999999999999999\r\nREST -1\r\nMDTM 20200101000000 f\r\n",
		"\r\n\n\r\r\n" + strings.Repeat("X", 5000) + "\r\nNOOP\r\n",
		"USER anonymous\r\nPASS a@b\r\nLANG EN\r\nOPTS UTF8 ON\r\nCLNT test\r\nMFCT 20200101000000 f\r\nMFF modify=20200101000000; f\r\nMODE Z\r\n",
	} {
		f.Add(s)
	}
	fsys := memfs.New()
	ctx := context.Background()
	if up, err := fsys.Create(ctx, "f", storage.CreateOptions{}); err == nil {
		up.Write([]byte("line one\nline two\n"))
		up.Commit()
	}
	fsys.Mkdir(ctx, "d")
	var logs panicLog
	srv := &server.Server{
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Auth: auth.Func(func(ctx context.Context, c auth.ConnInfo, user, pass string) (*auth.Account, error) {
			if user == "alice" && pass == "secret" {
				return &auth.Account{User: user, FS: fsys, Perms: auth.Permissions{Write: true}}, nil
			}
			return nil, auth.ErrBadCredentials
		}),
		Options: server.Options{
			LoginFailDelay:     -1,
			DataConnectTimeout: 20 * time.Millisecond,
			DataStallTimeout:   50 * time.Millisecond,
			CommandTimeout:     200 * time.Millisecond,
			LoginTimeout:       2 * time.Second,
			MaxBadCommands:     1000,
		},
	}
	ln := newPipeListener()
	go srv.Serve(ln)
	f.Cleanup(func() { srv.Close() })

	f.Fuzz(func(t *testing.T, script string) {
		c := ln.dial()
		c.SetDeadline(time.Now().Add(3 * time.Second))
		go func() {
			io.WriteString(c, script)
			io.WriteString(c, "\r\nQUIT\r\n")
		}()
		out, _ := io.ReadAll(c)
		c.Close()
		if p := logs.String(); p != "" {
			t.Fatalf("panic on %q:\n%s", script, p)
		}
		if !bytes.HasPrefix(out, []byte("220 ")) {
			t.Fatalf("no greeting: %q", out)
		}
		// Every line the server sent (Telnet refusals aside) ends in CRLF
		// and holds no other CR or LF: no input splits a reply. A CR in a
		// name goes as CR NUL (RFC 2640 §3.1).
		out = dropTelnetRefusals(out)
		out = bytes.ReplaceAll(out, []byte("\r\x00"), nil)
		for len(out) > 0 {
			i := bytes.Index(out, []byte("\r\n"))
			if i < 0 {
				if len(bytes.TrimRight(out, "\x00\x01\x03")) > 0 { // after 234 the rest may be cut
					t.Fatalf("unterminated line %q", out)
				}
				break
			}
			if bytes.ContainsAny(out[:i], "\r\n") {
				t.Fatalf("a reply line holds CR or LF: %q", out[:i])
			}
			out = out[i+2:]
		}
		// The server still serves.
		d := ln.dial()
		d.SetDeadline(time.Now().Add(3 * time.Second))
		go io.WriteString(d, "USER alice\r\nPASS secret\r\nNOOP\r\nQUIT\r\n")
		got, _ := io.ReadAll(d)
		d.Close()
		for _, want := range []string{"220 ", "331 ", "230 ", "200 ", "221 "} {
			if !bytes.Contains(got, []byte(want)) {
				t.Fatalf("after %q the next client got %q", script, got)
			}
		}
	})
}
