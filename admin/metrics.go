// Package admin is the server's HTTP side for operators: Prometheus
// metrics (/metrics), liveness (/healthz) and readiness (/readyz). It
// knows the FTP server only through what cmd/ferry tells it (Record
// calls from the server's hooks, and Sources read at each scrape).
package admin

import (
	"strings"
	"sync"
	"time"

	"github.com/ferryftp/ferry/server"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Sources are read at each scrape; nil ones are left out.
type Sources struct {
	// Sessions is the number of control connections open now.
	Sessions func() int
	// Bans is the number of addresses banned now.
	Bans func() int
	// HookQueue is the number of hook deliveries waiting.
	HookQueue func() int
	// Quotas is, for each user with a quota, the bytes used and the quota.
	Quotas func() map[string]QuotaUse
}

// QuotaUse is a user's storage against their byte quota (0: none).
type QuotaUse struct {
	Used, Limit int64
}

// Metrics are the server's Prometheus metrics. No label takes a value a
// client chooses: results and directions are the server's words, and
// user names appear only for users with a quota (the administrator's).
type Metrics struct {
	reg       *prometheus.Registry
	logins    *prometheus.CounterVec
	transfers *prometheus.CounterVec
	bytes     *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	kids      sync.Map // [direction, result] -> *kid: no label hashing per transfer
	loginOK   prometheus.Counter
	loginBad  prometheus.Counter
}

// kid holds the metrics one kind of transfer end adds to.
type kid struct {
	transfers, bytes prometheus.Counter
	duration         prometheus.Observer
}

// Directions of transfers, as labels: the server's names.
const (
	Upload   = server.DirectionUpload
	Download = server.DirectionDownload
	Listing  = server.DirectionListing
)

// NewMetrics registers the metrics, the Go runtime's and the process's.
func NewMetrics(src Sources) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.logins = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ferry_logins_total", Help: "Logins, by result (ok, failed)."}, []string{"result"})
	m.transfers = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ferry_transfers_total", Help: "Transfers ended, by direction (upload, download, listing) and result (ok, aborted, connection_lost, error, no_data_connection, tls_refused, panic)."}, []string{"direction", "result"})
	m.bytes = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ferry_transfer_bytes_total", Help: "Bytes moved by transfers, by direction."}, []string{"direction"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ferry_transfer_duration_seconds", Help: "How long transfers took, by direction.",
		Buckets: []float64{.001, .005, .01, .05, .1, .5, 1, 5, 10, 60, 300, 1800}}, []string{"direction"})
	m.reg.MustRegister(m.logins, m.transfers, m.bytes, m.duration,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), sources{src})
	m.loginOK, m.loginBad = m.logins.WithLabelValues("ok"), m.logins.WithLabelValues("failed") // present from the start, at 0
	for _, d := range []string{Upload, Download, Listing} {
		m.transfers.WithLabelValues(d, "ok")
		m.bytes.WithLabelValues(d)
	}
	return m
}

// Login counts a login or a failed one.
func (m *Metrics) Login(ok bool) {
	if ok {
		m.loginOK.Inc()
	} else {
		m.loginBad.Inc()
	}
}

// Transfer counts an ended transfer; result is the server's ("ok",
// "connection lost" …), made a label word.
func (m *Metrics) Transfer(direction, result string, bytes int64, took time.Duration) {
	k := m.kid(direction, result)
	k.transfers.Inc()
	k.bytes.Add(float64(bytes))
	k.duration.Observe(took.Seconds())
}

func (m *Metrics) kid(direction, result string) *kid {
	key := [2]string{direction, result}
	if k, ok := m.kids.Load(key); ok {
		return k.(*kid)
	}
	k := &kid{
		transfers: m.transfers.WithLabelValues(direction, strings.ReplaceAll(strings.ToLower(result), " ", "_")),
		bytes:     m.bytes.WithLabelValues(direction),
		duration:  m.duration.WithLabelValues(direction),
	}
	m.kids.Store(key, k)
	return k
}

// sources collects the values read at each scrape.
type sources struct{ Sources }

var (
	descSessions = prometheus.NewDesc("ferry_sessions_active", "Control connections open now.", nil, nil)
	descBans     = prometheus.NewDesc("ferry_bans_active", "Addresses banned now by the defender.", nil, nil)
	descQueue    = prometheus.NewDesc("ferry_hook_queue_length", "Hook deliveries waiting.", nil, nil)
	descUsed     = prometheus.NewDesc("ferry_quota_used_bytes", "Bytes stored, for users with a quota.", []string{"user"}, nil)
	descLimit    = prometheus.NewDesc("ferry_quota_limit_bytes", "The byte quota, for users with one.", []string{"user"}, nil)
)

func (s sources) Describe(ch chan<- *prometheus.Desc) {
	ch <- descSessions
	ch <- descBans
	ch <- descQueue
	ch <- descUsed
	ch <- descLimit
}

func (s sources) Collect(ch chan<- prometheus.Metric) {
	if s.Sessions != nil {
		ch <- prometheus.MustNewConstMetric(descSessions, prometheus.GaugeValue, float64(s.Sessions()))
	}
	if s.Bans != nil {
		ch <- prometheus.MustNewConstMetric(descBans, prometheus.GaugeValue, float64(s.Bans()))
	}
	if s.HookQueue != nil {
		ch <- prometheus.MustNewConstMetric(descQueue, prometheus.GaugeValue, float64(s.HookQueue()))
	}
	if s.Quotas != nil {
		for user, q := range s.Quotas() {
			ch <- prometheus.MustNewConstMetric(descUsed, prometheus.GaugeValue, float64(q.Used), user)
			if q.Limit > 0 {
				ch <- prometheus.MustNewConstMetric(descLimit, prometheus.GaugeValue, float64(q.Limit), user)
			}
		}
	}
}
