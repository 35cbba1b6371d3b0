package admin

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ferryftp/ferry/admin/admintest"
)

func TestMetrics(t *testing.T) {
	m := NewMetrics(Sources{
		Sessions:  func() int { return 1 },
		Bans:      func() int { return 2 },
		HookQueue: func() int { return 7 },
		Quotas:    func() map[string]QuotaUse { return map[string]QuotaUse{"alice": {Used: 100, Limit: 1000}} },
	})
	var ready error = errors.New("shutting down")
	srv := httptest.NewServer(Handler(m, func() error { return ready }))
	defer srv.Close()
	m.Login(true)
	m.Login(false)
	m.Login(false)
	m.Transfer(Upload, "ok", 4096, time.Millisecond)
	m.Transfer(Upload, "connection lost", 100, time.Second)
	m.Transfer(Download, "ok", 10, time.Millisecond)
	f := admintest.Scrape(t, srv.URL+"/metrics")
	for _, c := range []struct {
		fam    string
		labels []string
		want   float64
	}{
		{"ferry_sessions_active", nil, 1},
		{"ferry_logins_total", []string{"result", "ok"}, 1},
		{"ferry_logins_total", []string{"result", "failed"}, 2},
		{"ferry_transfers_total", []string{"direction", "upload", "result", "ok"}, 1},
		{"ferry_transfers_total", []string{"direction", "upload", "result", "connection_lost"}, 1},
		{"ferry_transfers_total", []string{"direction", "listing", "result", "ok"}, 0},
		{"ferry_transfer_bytes_total", []string{"direction", "upload"}, 4196},
		{"ferry_transfer_duration_seconds", []string{"direction", "upload"}, 2},
		{"ferry_bans_active", nil, 2},
		{"ferry_hook_queue_length", nil, 7},
		{"ferry_quota_used_bytes", []string{"user", "alice"}, 100},
		{"ferry_quota_limit_bytes", []string{"user", "alice"}, 1000},
	} {
		if got := admintest.Value(f, c.fam, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.fam, c.labels, got, c.want)
		}
	}
	if f["go_goroutines"] == nil || f["process_cpu_seconds_total"] == nil {
		t.Error("no Go runtime or process metrics")
	}
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 503} {
		resp, err := http.Get(srv.URL + path)
		if err != nil || resp.StatusCode != want {
			t.Errorf("%s: %v %v, want %d", path, resp.Status, err, want)
		}
		resp.Body.Close()
	}
	ready = nil
	if resp, err := http.Get(srv.URL + "/readyz"); err != nil || resp.StatusCode != 200 {
		t.Errorf("/readyz when ready: %v %v", resp.Status, err)
	}
}

// BenchmarkTransfer: what the metrics add to one transfer's end.
func BenchmarkTransfer(b *testing.B) {
	m := NewMetrics(Sources{})
	for b.Loop() {
		m.Transfer(Upload, "ok", 4096, 200*time.Microsecond)
	}
}
