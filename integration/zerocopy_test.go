package integration

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestZeroCopy watches the ferry process with strace while curl uploads and
// downloads a file: the bytes must move by sendfile(2) (RETR) and splice(2)
// (STOR), not by read/write through user space, and the download's socket
// is corked while sendfile runs (full segments) and uncorked after.
func TestZeroCopy(t *testing.T) {
	sums := traceTransfers(t)
	if sums["sendfile"] < zcSize {
		t.Errorf("RETR sent %d bytes with sendfile, want %d", sums["sendfile"], zcSize)
	}
	if sums["splice"] < 2*zcSize { // socket->pipe and pipe->file
		t.Errorf("STOR moved %d bytes with splice, want %d", sums["splice"], 2*zcSize)
	}
	if sums["read"]+sums["write"] > zcSize/4 {
		t.Errorf("%d bytes went through read/write", sums["read"]+sums["write"])
	}
	if sums["cork"] != 1 || sums["uncork"] != 1 {
		t.Errorf("RETR corked its socket %d times and uncorked it %d, want once each", sums["cork"], sums["uncork"])
	}
}

// TestSendfileOff: with sendfile = false (vsftpd's use_sendfile=NO) the
// same transfers copy through memory: no sendfile, no splice, and the
// bytes come back whole.
func TestSendfileOff(t *testing.T) {
	sums := traceTransfers(t, "--sendfile=false")
	if sums["sendfile"] != 0 || sums["splice"] != 0 {
		t.Errorf("sendfile off, yet %d bytes by sendfile and %d by splice", sums["sendfile"], sums["splice"])
	}
	if sums["cork"] != 0 {
		t.Errorf("sendfile off, yet the socket was corked %d times", sums["cork"])
	}
	if sums["read"] < 2*zcSize || sums["write"] < 2*zcSize { // each way: socket and file
		t.Errorf("sendfile off: %d bytes read and %d written, want at least %d each", sums["read"], sums["write"], 2*zcSize)
	}
}

// zcSize is the file traceTransfers moves each way.
const zcSize = 8 << 20

// traceTransfers starts ferry with args, uploads and downloads a file of
// zcSize with curl under strace, checks the copy is whole, and returns
// the bytes each of sendfile, splice, read and write moved, and the
// corks and uncorks of TCP_CORK.
func traceTransfers(t *testing.T, args ...string) map[string]int64 {
	t.Helper()
	strace := need(t, "strace")
	curl := need(t, "curl")
	f := startFerry(t, "127.0.0.1:0", args...)
	local := t.TempDir()
	randFile(t, local, "z.bin", zcSize)
	out := filepath.Join(local, "strace.out")
	st := exec.Command(strace, "-f", "-qq", "-e", "trace=sendfile,splice,read,write,setsockopt", "-o", out, "-p", strconv.Itoa(f.cmd.Process.Pid))
	stderr, _ := st.StderrPipe()
	if err := st.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		st.Process.Signal(syscall.SIGINT)
		st.Wait()
	}()
	// strace -qq prints nothing on attach; wait until the trace file shows
	// a syscall (a NOOP from a client makes one) or give up.
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			t.Log("strace:", sc.Text())
		}
	}()
	user := f.User + ":" + f.Password
	deadline := time.Now().Add(60 * time.Second)
	for {
		run(t, curl, "-sS", "--user", user, "-Q", "NOOP", f.URL+"/")
		if b, _ := os.ReadFile(out); bytes.Contains(b, []byte("NOOP")) {
			break // strace sees the server's reads
		}
		if time.Now().After(deadline) {
			t.Fatal("strace did not attach within 60 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	run(t, curl, "-sS", "--fail", "--user", user, "-T", filepath.Join(local, "z.bin"), f.URL+"/z.bin")
	run(t, curl, "-sS", "--fail", "--user", user, "-o", filepath.Join(local, "back.bin"), f.URL+"/z.bin")
	st.Process.Signal(syscall.SIGINT)
	st.Wait()
	trace, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	sums := map[string]int64{}
	// With several threads strace splits a call that another thread
	// interrupts into "sendfile(… <unfinished ...>" and
	// "<... sendfile resumed>…) = N": count both forms.
	re := regexp.MustCompile(`(?:^|\s)(?:<\.\.\. )?(sendfile|splice|read|write)(?:\(| resumed>).*\)\s+=\s+(\d+)`)
	for _, l := range strings.Split(string(trace), "\n") {
		if m := re.FindStringSubmatch(l); m != nil {
			n, _ := strconv.ParseInt(m[2], 10, 64)
			sums[m[1]] += n
		}
	}
	// A download by sendfile corks its socket and uncorks it at the end.
	sums["cork"] = int64(strings.Count(string(trace), "TCP_CORK, [1]"))
	sums["uncork"] = int64(strings.Count(string(trace), "TCP_CORK, [0]"))
	t.Logf("bytes by syscall, and corks: %v", sums)
	a, _ := os.ReadFile(filepath.Join(local, "z.bin"))
	b, _ := os.ReadFile(filepath.Join(local, "back.bin"))
	if len(a) != zcSize || !bytes.Equal(a, b) {
		t.Fatalf("the file came back %d bytes, differing", len(b))
	}
	return sums
}
