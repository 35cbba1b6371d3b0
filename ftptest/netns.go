package ftptest

import (
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// SecondIPv6 is the address a test uses as a second IPv6 host beside ::1.
const SecondIPv6 = "::2"

// netnsEnv marks a test binary re-run inside a private network namespace.
const netnsEnv = "FERRY_TEST_NETNS"

// WithSecondIPv6 prepares a test that needs two IPv6 loopback addresses,
// ::1 and SecondIPv6. When the machine already has both, it returns true
// and the test goes on here. Otherwise it re-runs this one test inside a
// private user and network namespace (unshare -rn) whose loopback holds
// both, reports that run's outcome, and returns false: the caller returns
// at once. Without unshare and ip (iproute2) the test is Missing.
//
// Only top-level tests can use it: the re-run selects the test by name.
func WithSecondIPv6(t *testing.T) bool {
	t.Helper()
	if canBind(SecondIPv6) {
		return true
	}
	if os.Getenv(netnsEnv) != "" {
		t.Fatalf("inside the test namespace %s is not bindable", SecondIPv6)
	}
	for _, tool := range []string{"unshare", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			Missing(t, "no second IPv6 address and no %s to make one: %v", tool, err)
			return false
		}
	}
	script := `ip link set lo up && ip -6 addr add ` + SecondIPv6 + `/128 dev lo && exec "$0" "$@"`
	cmd := exec.CommandContext(t.Context(), "unshare", "-rn", "sh", "-c", script,
		os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), netnsEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil && !strings.Contains(string(out), "=== RUN") {
		Missing(t, "cannot make a network namespace: %v\n%s", err, out)
		return false
	}
	t.Logf("run in a network namespace with %s:\n%s", SecondIPv6, out)
	if err != nil {
		t.Fatalf("in the namespace: %v", err)
	}
	return false
}

func canBind(ip string) bool {
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}
