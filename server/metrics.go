package server

import (
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/converge-sync/converge"
	"github.com/converge-sync/converge/syncproto"
)

// metrics is the server's Prometheus registry (its own, not the global
// one, so that two servers in one process do not collide) and the
// converge.Metrics every sync connection reports to.
type metrics struct {
	reg         *prometheus.Registry
	connections prometheus.Gauge
	accepted    prometheus.Counter
	changesIn   prometheus.Counter
	changesOut  prometheus.Counter
	fanOut      prometheus.Histogram
	storeWrite  prometheus.Histogram
	refusals    *prometheus.CounterVec
	evictions   prometheus.Counter
}

var _ converge.Metrics = (*metrics)(nil)

func newMetrics(loaded func() int, writeErrors func() uint64) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "converge_connections", Help: "Sync connections open now."}),
		accepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "converge_connections_total", Help: "Sync connections accepted."}),
		changesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "converge_changes_in_total", Help: "Changes received from peers that were new to the server, merged and stored (a change already held is not counted)."}),
		changesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "converge_changes_out_total", Help: "Changes sent to peers."}),
		fanOut: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "converge_fanout_seconds",
			Help:    "From a change being durable to its frame being written to a peer.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10), // 100µs to 26s
		}),
		storeWrite: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "converge_store_write_seconds",
			Help:    "One durable write of changes received from a peer.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14), // 0.5ms to 4s
		}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "converge_refusals_total", Help: "Requests and sessions of peers refused or ended, by protocol error code (unavailable: a store failure, or a client too slow to read or silent for three heartbeats; going_away: a shutdown)."},
			[]string{"code"}),
		evictions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "converge_evictions_total", Help: "Documents unloaded from memory to keep within the budget."}),
	}
	m.reg.MustRegister(m.connections, m.accepted, m.changesIn, m.changesOut, m.fanOut, m.storeWrite,
		m.refusals, m.evictions,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "converge_docs_in_memory", Help: "Documents loaded in memory."},
			func() float64 { return float64(loaded()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "converge_store_write_errors_total", Help: "Store writes that failed (a full or broken disk, a read-only store): changes received and not stored, compactions not saved. While the last write failed and none succeeded since, /healthz answers 503."},
			func() float64 { return float64(writeErrors()) }),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	// Every known code from the start, so that a dashboard sees zeros, not
	// missing series.
	for c := syncproto.Code(1); !strings.HasPrefix(c.String(), "code_"); c++ {
		m.refusals.WithLabelValues(c.String())
	}
	return m
}

func (m *metrics) ChangesIn(n int)             { m.changesIn.Add(float64(n)) }
func (m *metrics) ChangesOut(n int)            { m.changesOut.Add(float64(n)) }
func (m *metrics) FanOut(d time.Duration)      { m.fanOut.Observe(d.Seconds()) }
func (m *metrics) StoreWrite(d time.Duration)  { m.storeWrite.Observe(d.Seconds()) }
func (m *metrics) Refused(code syncproto.Code) { m.refusals.WithLabelValues(code.String()).Inc() }
