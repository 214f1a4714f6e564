// Package httpserver is wgbot's HTTP side: the published listener with the
// Telegram and payment webhooks, and the operator's private one with
// Prometheus metrics and detailed readiness, each with timeouts and limits
// that keep slow clients from holding it.
package httpserver

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"wgbot/logs"
	"wgbot/metrics"
	"wgbot/reconcile"
)

// Deps are what the routes need.
type Deps struct {
	Pool       *pgxpool.Pool
	Reconciler *reconcile.Reconciler
	Log        *slog.Logger
	// Device checks the live WireGuard interface; nil unless the apply mode
	// is device.
	Device func() error
	// Checks are further readiness conditions, such as the Telegram bot
	// having set its update mode.
	Checks []Check
	// StaleAfter is how old the last good reconcile may be before /readyz
	// fails; zero means three minutes.
	StaleAfter time.Duration
	Metrics    *metrics.Metrics
	// Extra routes (webhooks) by pattern; served on the public listener.
	Routes map[string]http.Handler
}

// Check is one readiness condition. Probe returns nil when it holds; its
// error's text is shown only by the private /readyz (the component behind
// it logs the failure too). The public /readyz shows Reason instead.
type Check struct {
	Name   string
	Reason string // fixed text, e.g. "webhook not set yet"
	Probe  func() error
	// Degrades marks a check the published listener's own work does not
	// need: the public /readyz shows its failure as degraded and stays
	// ready (payment webhooks are served in a Telegram outage, and a load
	// balancer must not drop every process for it); the private one fails.
	Degrades bool
}

// Public returns the handler of the published listener (HTTP_ADDR): the
// webhooks, /healthz, and a /readyz that names what is not ready in fixed
// words, never an internal error's text.
func Public(d Deps) http.Handler {
	return d.handler(true, false, false)
}

// Private returns the handler of the operator's listener (METRICS_ADDR):
// /metrics, /healthz and a /readyz with the error behind each failing check.
func Private(d Deps) http.Handler {
	return d.handler(false, true, true)
}

// Published returns every route on one handler, with the public /readyz:
// for METRICS_ADDR equal to HTTP_ADDR (the default).
func Published(d Deps) http.Handler {
	return d.handler(true, true, false)
}

// handler builds the routes: the product's own live here, and Deps.Routes
// adds the caller's (the Telegram webhook, the sandbox's). detailed picks the
// private /readyz.
func (d Deps) handler(public, private, detailed bool) http.Handler {
	if d.StaleAfter == 0 {
		d.StaleAfter = 3 * time.Minute
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) { d.readyz(w, r, detailed) })
	if private && d.Metrics != nil {
		mux.Handle("GET /metrics", d.Metrics.Handler())
	}
	if public {
		for pattern, h := range d.Routes {
			mux.Handle(pattern, h)
		}
	}
	return d.withRequestID(mux)
}

// withRequestID gives every request an id (the caller's X-Request-Id if it
// is a sane token, else a new one), echoes it, puts it in the context for
// every log line the request writes, and logs the request. Only the path is
// logged: query strings may carry tokens.
func (d Deps) withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !saneID(id) {
			id = logs.NewID()
		}
		w.Header().Set("X-Request-Id", id)
		ctx := logs.With(r.Context(), slog.String("request_id", id))
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		start := time.Now()
		next.ServeHTTP(rec, r.WithContext(ctx))
		if r.URL.Path != "/healthz" && r.URL.Path != "/readyz" && r.URL.Path != "/metrics" {
			d.Log.InfoContext(ctx, "http request", "method", r.Method, "path", r.URL.Path, "status", rec.status,
				"took", time.Since(start).String())
		}
	})
}

func saneID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// readyz answers 200 when everything is ready, else 503, with one entry
// per check. detailed adds the text of each failure, which may name hosts,
// paths or SQL: only for the private listener. Without it a failing check
// that only degrades is shown as such and leaves the answer 200.
func (d Deps) readyz(w http.ResponseWriter, r *http.Request, detailed bool) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	checks := map[string]string{}
	ok, degraded := true, false
	fail := func(name, reason string, err error) {
		ok = false
		checks[name] = reason
		if detailed && err != nil {
			checks[name] = reason + ": " + err.Error()
		}
	}
	if err := d.Pool.Ping(ctx); err != nil {
		fail("database", "unreachable", err)
	} else {
		checks["database"] = "ok"
	}
	lastOK, _, lastErr := d.Reconciler.Status()
	switch {
	case lastOK.IsZero():
		fail("reconcile", "not yet", lastErr)
	case time.Since(lastOK) > d.StaleAfter:
		fail("reconcile", "stale since "+lastOK.UTC().Format(time.RFC3339), lastErr)
	default:
		checks["reconcile"] = "ok"
		if detailed && lastErr != nil {
			checks["last_reconcile_error"] = lastErr.Error()
		}
	}
	all := d.Checks
	if d.Device != nil {
		all = append([]Check{{Name: "device", Reason: "WireGuard interface unavailable", Probe: d.Device}}, all...)
	}
	for _, c := range all {
		err := c.Probe()
		switch {
		case err != nil && c.Degrades && !detailed:
			degraded = true
			checks[c.Name] = c.Reason + " (degraded)"
		case err != nil:
			fail(c.Name, c.Reason, err)
		default:
			checks[c.Name] = "ok"
		}
	}
	checks["status"] = "ready"
	if degraded {
		checks["status"] = "degraded"
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if !ok {
		checks["status"] = "not ready"
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	json.NewEncoder(w).Encode(checks)
}
