// Package httpserver is wgbot's one HTTP listener: health and readiness
// probes, Prometheus metrics, and the Telegram and payment webhooks, each
// under its own path.
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
	// StaleAfter is how old the last good reconcile may be before /readyz
	// fails; zero means three minutes.
	StaleAfter time.Duration
	Metrics    *metrics.Metrics
	// Extra routes (webhooks) by pattern.
	Routes map[string]http.Handler
}

// New returns the handler with every route; all routes live here.
func New(d Deps) http.Handler {
	if d.StaleAfter == 0 {
		d.StaleAfter = 3 * time.Minute
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", d.readyz)
	if d.Metrics != nil {
		mux.Handle("GET /metrics", d.Metrics.Handler())
	}
	for pattern, h := range d.Routes {
		mux.Handle(pattern, h)
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

func (d Deps) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	checks := map[string]string{}
	ok := true
	if err := d.Pool.Ping(ctx); err != nil {
		checks["database"] = "unreachable"
		ok = false
	} else {
		checks["database"] = "ok"
	}
	lastOK, _, lastErr := d.Reconciler.Status()
	switch {
	case lastOK.IsZero():
		checks["reconcile"] = "not yet"
		ok = false
	case time.Since(lastOK) > d.StaleAfter:
		checks["reconcile"] = "stale since " + lastOK.UTC().Format(time.RFC3339)
		ok = false
	default:
		checks["reconcile"] = "ok"
	}
	if lastErr != nil {
		checks["last_reconcile_error"] = lastErr.Error()
	}
	if d.Device != nil {
		if err := d.Device(); err != nil {
			checks["device"] = err.Error()
			ok = false
		} else {
			checks["device"] = "ok"
		}
	}
	w.Header().Set("Content-Type", "application/json")
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	json.NewEncoder(w).Encode(checks)
}
