// Package metrics defines wgbot's Prometheus metrics in one place. Every
// component gets the *Metrics it reports to; a nil *Metrics records nothing,
// so tests and CLI commands need no registry.
package metrics

import (
	"context"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"wgbot/postgres"
)

// Metrics holds every collector wgbot updates.
type Metrics struct {
	registry *prometheus.Registry

	IssuanceSeconds   *prometheus.HistogramVec // by operation
	IssuanceErrors    *prometheus.CounterVec   // by operation, kind
	ReconcileSeconds  prometheus.Histogram
	ReconcileChanges  *prometheus.CounterVec // by target (file, device_add, device_update, device_remove)
	ReconcileFailures prometheus.Counter
	Payments          *prometheus.CounterVec // by provider, outcome
	TelegramErrors    *prometheus.CounterVec // by code
}

// New registers the collectors, plus scrape-time gauges read from the pool
// and the database (peers by status, job queue depth).
func New(pool *pgxpool.Pool) *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		IssuanceSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "wgbot_issuance_duration_seconds", Help: "Time to issue a peer, from request to WireGuard applied.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"operation"}),
		IssuanceErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wgbot_issuance_errors_total", Help: "Failed issuances by error kind.",
		}, []string{"operation", "kind"}),
		ReconcileSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "wgbot_reconcile_duration_seconds", Help: "Time of one reconcile (database, wg0.conf, device).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		ReconcileChanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wgbot_reconcile_changes_total", Help: "Changes applied by the reconciler.",
		}, []string{"target"}),
		ReconcileFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wgbot_reconcile_failures_total", Help: "Reconciles that failed (retried).",
		}),
		Payments: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wgbot_payments_total", Help: "Payment confirmations by provider and outcome.",
		}, []string{"provider", "outcome"}),
		TelegramErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wgbot_telegram_api_errors_total", Help: "Bot API errors by code.",
		}, []string{"code"}),
	}
	m.registry.MustRegister(m.IssuanceSeconds, m.IssuanceErrors, m.ReconcileSeconds, m.ReconcileChanges,
		m.ReconcileFailures, m.Payments, m.TelegramErrors,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if pool != nil {
		m.registry.MustRegister(&poolCollector{pool: pool}, &dbCollector{pool: pool})
	}
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// ObserveIssuance records one issuance attempt.
func (m *Metrics) ObserveIssuance(operation string, start time.Time, errKind string) {
	if m == nil {
		return
	}
	m.IssuanceSeconds.WithLabelValues(operation).Observe(time.Since(start).Seconds())
	if errKind != "" {
		m.IssuanceErrors.WithLabelValues(operation, errKind).Inc()
	}
}

// ObserveReconcile records one reconcile and what it changed.
func (m *Metrics) ObserveReconcile(d time.Duration, fileChanged bool, added, updated, removed int, failed bool) {
	if m == nil {
		return
	}
	m.ReconcileSeconds.Observe(d.Seconds())
	if failed {
		m.ReconcileFailures.Inc()
		return
	}
	if fileChanged {
		m.ReconcileChanges.WithLabelValues("file").Inc()
	}
	m.ReconcileChanges.WithLabelValues("device_add").Add(float64(added))
	m.ReconcileChanges.WithLabelValues("device_update").Add(float64(updated))
	m.ReconcileChanges.WithLabelValues("device_remove").Add(float64(removed))
}

// Payment records a payment confirmation's outcome (credited, duplicate,
// mismatch, forged, unavailable, ...).
func (m *Metrics) Payment(provider, outcome string) {
	if m == nil {
		return
	}
	m.Payments.WithLabelValues(provider, outcome).Inc()
}

// TelegramError records a Bot API error code (429, 403, 5xx, network).
func (m *Metrics) TelegramError(code string) {
	if m == nil {
		return
	}
	m.TelegramErrors.WithLabelValues(code).Inc()
}

var (
	poolAcquired = prometheus.NewDesc("wgbot_db_pool_acquired_connections", "Connections in use.", nil, nil)
	poolIdle     = prometheus.NewDesc("wgbot_db_pool_idle_connections", "Idle connections.", nil, nil)
	poolMax      = prometheus.NewDesc("wgbot_db_pool_max_connections", "DB_POOL_MAX.", nil, nil)
	poolWaits    = prometheus.NewDesc("wgbot_db_pool_wait_count_total", "Acquires that had to wait.", nil, nil)
	poolWaitSecs = prometheus.NewDesc("wgbot_db_pool_wait_duration_seconds_total", "Time spent waiting to acquire.", nil, nil)
	peersDesc    = prometheus.NewDesc("wgbot_peers", "Peers by status.", []string{"status"}, nil)
	jobsDesc     = prometheus.NewDesc("wgbot_jobs", "Job queue rows by state.", []string{"state"}, nil)

	serverPeers = prometheus.NewDesc("wgbot_server_peers", "Active peers per server.", []string{"server"}, nil)
	serverLag   = prometheus.NewDesc("wgbot_server_revision_lag", "Revisions of a server its wgbot node has not applied yet.",
		[]string{"server"}, nil)
	serverBeat = prometheus.NewDesc("wgbot_server_heartbeat_age_seconds", "Seconds since a server's wgbot node last reported.",
		[]string{"server"}, nil)

	// Traffic as the host owning each server's device collects it
	// (USAGE_INTERVAL): what its peers sent (received by the server) and
	// what they were sent, since collection began.
	serverRx = prometheus.NewDesc("wgbot_server_received_bytes_total", "Bytes a server's WireGuard device received from its peers.",
		[]string{"server"}, nil)
	serverTx = prometheus.NewDesc("wgbot_server_transmitted_bytes_total", "Bytes a server's WireGuard device sent to its peers.",
		[]string{"server"}, nil)
)

type poolCollector struct{ pool *pgxpool.Pool }

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- poolAcquired
	ch <- poolIdle
	ch <- poolMax
	ch <- poolWaits
	ch <- poolWaitSecs
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.pool.Stat()
	ch <- prometheus.MustNewConstMetric(poolAcquired, prometheus.GaugeValue, float64(s.AcquiredConns()))
	ch <- prometheus.MustNewConstMetric(poolIdle, prometheus.GaugeValue, float64(s.IdleConns()))
	ch <- prometheus.MustNewConstMetric(poolMax, prometheus.GaugeValue, float64(s.MaxConns()))
	ch <- prometheus.MustNewConstMetric(poolWaits, prometheus.CounterValue, float64(s.EmptyAcquireCount()))
	ch <- prometheus.MustNewConstMetric(poolWaitSecs, prometheus.CounterValue, s.AcquireDuration().Seconds())
}

// dbCollector reads counts at scrape time: two small GROUP BY queries on
// indexed columns, bounded by a short timeout so a slow database cannot
// hang the scrape.
type dbCollector struct{ pool *pgxpool.Pool }

func (c *dbCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- peersDesc
	ch <- jobsDesc
	ch <- serverPeers
	ch <- serverLag
	ch <- serverBeat
	ch <- serverRx
	ch <- serverTx
}

func (c *dbCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c.grouped(ctx, ch, peersDesc, `SELECT status, count(*) FROM peers GROUP BY status`)
	c.grouped(ctx, ch, jobsDesc, `SELECT state::text, count(*) FROM river_job GROUP BY state`)
	c.servers(ctx, ch)
}

// servers reports each server's load, and for a server a `wgbot node`
// runs, how far its node lags and when it last reported.
func (c *dbCollector) servers(ctx context.Context, ch chan<- prometheus.Metric) {
	rows, err := c.pool.Query(ctx, `SELECT sv.name, `+postgres.ServerActivePeers+`,
			sv.revision - n.revision, extract(epoch FROM now() - n.seen_at)::float8, k.rx, k.tx
		FROM servers sv LEFT JOIN node_status n ON n.server_id = sv.id LEFT JOIN usage_collections k ON k.server_id = sv.id`)
	if err != nil {
		return
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var peers int64
		var lag *int64
		var age *float64
		var rx, tx *int64
		if rows.Scan(&name, &peers, &lag, &age, &rx, &tx) != nil {
			continue
		}
		if rx != nil {
			ch <- prometheus.MustNewConstMetric(serverRx, prometheus.CounterValue, float64(*rx), name)
			ch <- prometheus.MustNewConstMetric(serverTx, prometheus.CounterValue, float64(*tx), name)
		}
		ch <- prometheus.MustNewConstMetric(serverPeers, prometheus.GaugeValue, float64(peers), name)
		if lag != nil {
			ch <- prometheus.MustNewConstMetric(serverLag, prometheus.GaugeValue, float64(*lag), name)
			ch <- prometheus.MustNewConstMetric(serverBeat, prometheus.GaugeValue, *age, name)
		}
	}
}

func (c *dbCollector) grouped(ctx context.Context, ch chan<- prometheus.Metric, desc *prometheus.Desc, sql string) {
	rows, err := c.pool.Query(ctx, sql)
	if err != nil {
		return
	}
	defer rows.Close()
	for rows.Next() {
		var label string
		var n int64
		if rows.Scan(&label, &n) == nil {
			ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, float64(n), label)
		}
	}
}
