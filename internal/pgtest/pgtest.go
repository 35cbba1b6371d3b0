// Package pgtest starts a throwaway PostgreSQL cluster for the tests:
// initdb and pg_ctl from Debian's postgresql (as the postgres user when
// the tests run as root), in a temporary directory, on a loopback
// address, with fsync off. It stops when the test ends.
package pgtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"testing"

	"github.com/ferryftp/ferry/ftptest"
)

// Server is a running cluster.
type Server struct {
	// URL connects as the superuser to the postgres database.
	URL       string
	dir, data string
	pgctl     string
	run       func(name string, args ...string) *exec.Cmd
}

// bin finds a PostgreSQL program: on PATH, else in the newest
// /usr/lib/postgresql/N/bin.
func bin(name string) string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Strings(dirs)
	for i := len(dirs) - 1; i >= 0; i-- {
		if p := filepath.Join(dirs[i], name); fileExists(p) {
			return p
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return ""
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// Start starts a cluster listening on host (a 127.0.0.x address) for the
// test. Without PostgreSQL the test is skipped (failed under
// FERRY_INTEROP=1).
func Start(t testing.TB, host string) *Server {
	t.Helper()
	if bin("initdb") == "" || bin("pg_ctl") == "" {
		ftptest.Missing(t, "PostgreSQL (initdb, pg_ctl) not installed")
	}
	s, err := Launch(host, freePort(t, host))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Launch starts a cluster on host:port in a new temporary directory
// (for tools; tests call Start). Stop ends it and removes the directory.
func Launch(host string, port int) (*Server, error) {
	initdb, pgctl := bin("initdb"), bin("pg_ctl")
	if initdb == "" || pgctl == "" {
		return nil, fmt.Errorf("PostgreSQL (initdb, pg_ctl) not installed")
	}
	dir, err := os.MkdirTemp("", "ferry-pg-")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, run: func(name string, args ...string) *exec.Cmd { return exec.Command(name, args...) }}
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root: as the postgres user.
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("running as root without a postgres user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		runuser, err := exec.LookPath("runuser")
		if err == nil {
			err = os.Chown(dir, uid, gid)
		}
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		s.run = func(name string, args ...string) *exec.Cmd {
			return exec.Command(runuser, append([]string{"-u", "postgres", "--", name}, args...)...)
		}
	}
	s.data, s.pgctl = filepath.Join(dir, "data"), pgctl
	if out, err := s.run(initdb, "-D", s.data, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8").CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	opts := fmt.Sprintf("-c listen_addresses=%s -c port=%d -c unix_socket_directories=%s -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200", host, port, dir)
	if out, err := s.run(pgctl, "-D", s.data, "-o", opts, "-l", filepath.Join(dir, "log"), "-w", "-t", "60", "start").CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "log"))
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
	s.URL = fmt.Sprintf("postgres://postgres@%s/postgres?sslmode=disable", net.JoinHostPort(host, strconv.Itoa(port)))
	return s, nil
}

// Stop stops the cluster at once and removes its directory.
func (s *Server) Stop() {
	s.run(s.pgctl, "-D", s.data, "-m", "immediate", "-w", "stop").Run()
	os.RemoveAll(s.dir)
}

func freePort(t testing.TB, host string) int {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
