package httpserver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"wgbot"
	"wgbot/httpserver"
	"wgbot/metrics"
	"wgbot/postgres"
	"wgbot/postgres/pgtest"
	"wgbot/reconcile"
	"wgbot/secret"
	"wgbot/service"
	"wgbot/service/servicetest"
	"wgbot/wireguard/wgconf"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestMetricsAndReadiness(t *testing.T) {
	ctx := context.Background()
	px, dbURL := pgtest.NewProxy(t, pgtest.URL(t))
	pool, err := postgres.Open(ctx, postgres.PoolConfig{URL: dbURL, MinConns: 1, MaxConns: 4, ConnectTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	m := metrics.New(pool)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store := postgres.NewStore(pool, postgres.Options{LockID: servicetest.LockID}, nil)
	priv, _ := wgtypes.GeneratePrivateKey()
	conf := filepath.Join(t.TempDir(), "wg0.conf")
	os.WriteFile(conf, []byte("[Interface]\nPrivateKey = "+priv.String()+"\n"), 0o600)
	srv, err := store.EnsureServer(ctx, wgbot.Server{Name: "main", Interface: "wg0", Endpoint: "vpn.example.com:51820",
		Subnet: netip.MustParsePrefix("10.60.0.0/24"), Address: netip.MustParseAddr("10.60.0.1"), PublicKey: priv.PublicKey().String()})
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := secret.NewKeyring(bytes.Repeat([]byte{1}, 32))
	rec, err := reconcile.New(store, keys, nil, reconcile.Config{ServerID: srv.ID, Mode: reconcile.ModeFile,
		File: wgconf.Config{Path: conf}, Metrics: m}, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go rec.Run(runCtx)
	svc := service.New(store, keys, rec, service.Config{Server: srv, TrialDays: 3, Metrics: m, ApplyWait: 5 * time.Second}, nil, log)
	h := httpserver.Private(httpserver.Deps{Pool: pool, Reconciler: rec, Log: log, Metrics: m, StaleAfter: time.Minute})

	for i := range 3 {
		u, err := svc.Register(ctx, wgbot.User{TelegramID: int64(i + 1)}, "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.IssueTrial(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	u, _ := svc.Register(ctx, wgbot.User{TelegramID: 1}, "")
	svc.IssueTrial(ctx, u) // refused: trial used

	families := scrape(t, h)
	want := map[string]func(float64) bool{
		`wgbot_issuance_duration_seconds_count{operation="trial"}`:         func(v float64) bool { return v == 4 },
		`wgbot_issuance_errors_total{kind="trial_used",operation="trial"}`: func(v float64) bool { return v == 1 },
		`wgbot_reconcile_duration_seconds_count`:                           func(v float64) bool { return v >= 1 },
		`wgbot_reconcile_changes_total{target="device_add"}`:               func(v float64) bool { return v == 0 }, // file mode
		`wgbot_reconcile_changes_total{target="file"}`:                     func(v float64) bool { return v >= 1 },
		`wgbot_peers{status="active"}`:                                     func(v float64) bool { return v == 3 },
		`wgbot_db_pool_max_connections`:                                    func(v float64) bool { return v == 4 },
		`wgbot_db_pool_acquired_connections`:                               func(v float64) bool { return v >= 0 && v <= 4 },
	}
	for series, ok := range want {
		v, found := families[series]
		if !found || !ok(v) {
			t.Errorf("%s = %v (present %v)", series, v, found)
		}
	}

	if code := get(t, h, "/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz = %d with the database up", code)
	}
	noDevice := httpserver.Private(httpserver.Deps{Pool: pool, Reconciler: rec, Log: log, StaleAfter: time.Minute,
		Device: func() error { return errors.New("wg0: no such interface") }})
	if code := get(t, noDevice, "/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz = %d with the WireGuard interface missing", code)
	}
	px.Cut()
	if code := get(t, h, "/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz = %d with the database cut off", code)
	}
	if code := get(t, h, "/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz = %d: liveness must not depend on the database", code)
	}
	px.Restore()
	deadline := time.Now().Add(10 * time.Second)
	for get(t, h, "/readyz") != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("/readyz did not recover with the database")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func get(t *testing.T, h http.Handler, path string) int {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code
}

// scrape returns every sample as `name{labels}` → value.
func scrape(t *testing.T, h http.Handler) map[string]float64 {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(rec.Body.String()))
	if err != nil {
		t.Fatalf("metrics do not parse: %v", err)
	}
	out := map[string]float64{}
	for name, f := range fams {
		for _, m := range f.Metric {
			var labels []string
			for _, l := range m.Label {
				labels = append(labels, l.GetName()+`="`+l.GetValue()+`"`)
			}
			key := name
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case m.Counter != nil:
				out[key] = m.Counter.GetValue()
			case m.Gauge != nil:
				out[key] = m.Gauge.GetValue()
			case m.Histogram != nil:
				out[name+"_count"+strings.TrimPrefix(key, name)] = float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return out
}

// The published listener's /readyz says what is not ready in fixed words;
// the private one and only it adds the errors behind them (paths, hosts,
// driver messages). /metrics is only on the private one; the webhooks only
// on the public one; New, for one listener, has everything.
func TestReadyzPublicHidesErrors(t *testing.T) {
	ctx := context.Background()
	pool, err := postgres.Open(ctx, postgres.PoolConfig{URL: pgtest.URL(t), MinConns: 1, MaxConns: 4, ConnectTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store := postgres.NewStore(pool, postgres.Options{LockID: servicetest.LockID}, nil)
	priv, _ := wgtypes.GeneratePrivateKey()
	srv, err := store.EnsureServer(ctx, wgbot.Server{Name: "main", Interface: "wg0", Endpoint: "vpn.example.com:51820",
		Subnet: netip.MustParsePrefix("10.61.0.0/24"), Address: netip.MustParseAddr("10.61.0.1"), PublicKey: priv.PublicKey().String()})
	if err != nil {
		t.Fatal(err)
	}
	// wg0.conf under a directory that does not exist: every reconcile fails
	// with an error naming the path.
	secretPath := filepath.Join(t.TempDir(), "secret-operator-dir", "wg0.conf")
	keys, _ := secret.NewKeyring(bytes.Repeat([]byte{1}, 32))
	rec, err := reconcile.New(store, keys, nil, reconcile.Config{ServerID: srv.ID, Mode: reconcile.ModeFile,
		File: wgconf.Config{Path: secretPath}}, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rec.Reconcile(ctx); err == nil {
		t.Fatal("the reconcile should fail without its directory")
	}
	hook := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	deps := httpserver.Deps{Pool: pool, Reconciler: rec, Log: log, Metrics: metrics.New(pool),
		Device: func() error { return errors.New("wgsecret0: netlink says no such device") },
		Checks: []httpserver.Check{{Name: "telegram", Reason: "webhook not set yet", Degrades: true,
			Probe: func() error { return errors.New("setWebhook: dial tcp 149.154.167.220:443: i/o timeout") }}},
		Routes: map[string]http.Handler{"POST /webhooks/cryptopay": hook}}
	internals := []string{"secret-operator-dir", "wgsecret0", "netlink", "149.154.167.220", "i/o timeout"}

	readyz := func(h http.Handler) (int, map[string]string, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		var body map[string]string
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("/readyz body %q: %v", rec.Body.String(), err)
		}
		return rec.Code, body, rec.Body.String()
	}
	for name, h := range map[string]http.Handler{"public": httpserver.Public(deps), "published one listener": httpserver.Published(deps)} {
		code, body, raw := readyz(h)
		if code != http.StatusServiceUnavailable || body["status"] != "not ready" {
			t.Errorf("%s /readyz = %d %q, want 503 not ready", name, code, raw)
		}
		want := map[string]string{"database": "ok", "reconcile": "not yet", "device": "WireGuard interface unavailable",
			"telegram": "webhook not set yet (degraded)"}
		for k, v := range want {
			if body[k] != v {
				t.Errorf("%s /readyz %s = %q, want %q", name, k, body[k], v)
			}
		}
		for _, s := range internals {
			if strings.Contains(raw, s) {
				t.Errorf("%s /readyz shows internal text %q: %s", name, s, raw)
			}
		}
	}
	for _, h := range []http.Handler{httpserver.Private(deps)} {
		code, _, raw := readyz(h)
		if code != http.StatusServiceUnavailable {
			t.Errorf("private /readyz = %d", code)
		}
		for _, s := range internals {
			if !strings.Contains(raw, s) {
				t.Errorf("private /readyz lacks the detail %q: %s", s, raw)
			}
		}
	}

	routes := []struct {
		method, path          string
		public, private, both int
	}{
		{http.MethodGet, "/metrics", http.StatusNotFound, http.StatusOK, http.StatusOK},
		{http.MethodGet, "/healthz", http.StatusOK, http.StatusOK, http.StatusOK},
		{http.MethodPost, "/webhooks/cryptopay", http.StatusOK, http.StatusNotFound, http.StatusOK},
	}
	for _, r := range routes {
		for name, c := range map[string]struct {
			h    http.Handler
			want int
		}{"public": {httpserver.Public(deps), r.public}, "private": {httpserver.Private(deps), r.private},
			"one listener": {httpserver.Published(deps), r.both}} {
			rec := httptest.NewRecorder()
			c.h.ServeHTTP(rec, httptest.NewRequest(r.method, r.path, nil))
			if rec.Code != c.want {
				t.Errorf("%s %s on the %s handler = %d, want %d", r.method, r.path, name, rec.Code, c.want)
			}
		}
	}
}

// Issue 13 §7: payment webhooks are served in a Telegram outage, so a load
// balancer probing the published /readyz must not drop every process for
// it. A check that only degrades (the bot's update mode) is shown there but
// leaves it ready; the operator's /readyz still fails for it.
func TestReadyzPublicDegradedByTelegram(t *testing.T) {
	ctx := context.Background()
	pool, err := postgres.Open(ctx, postgres.PoolConfig{URL: pgtest.URL(t), MinConns: 1, MaxConns: 4, ConnectTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store := postgres.NewStore(pool, postgres.Options{LockID: 720302}, nil)
	priv, _ := wgtypes.GeneratePrivateKey()
	conf := filepath.Join(t.TempDir(), "wg0.conf")
	os.WriteFile(conf, []byte("[Interface]\nPrivateKey = "+priv.String()+"\n"), 0o600)
	srv, err := store.EnsureServer(ctx, wgbot.Server{Name: "main", Interface: "wg0", Endpoint: "vpn.example.com:51820",
		Subnet: netip.MustParsePrefix("10.62.0.0/24"), Address: netip.MustParseAddr("10.62.0.1"), PublicKey: priv.PublicKey().String()})
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := secret.NewKeyring(bytes.Repeat([]byte{1}, 32))
	rec, err := reconcile.New(store, keys, nil, reconcile.Config{ServerID: srv.ID, Mode: reconcile.ModeFile,
		File: wgconf.Config{Path: conf}}, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rec.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	var telegramDown atomic.Bool
	telegramDown.Store(true)
	deps := httpserver.Deps{Pool: pool, Reconciler: rec, Log: log,
		Checks: []httpserver.Check{{Name: "telegram", Reason: "webhook not set yet", Degrades: true, Probe: func() error {
			if telegramDown.Load() {
				return errors.New("setWebhook: 502 Bad Gateway")
			}
			return nil
		}}}}
	readyz := func(h http.Handler) (int, map[string]string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		var body map[string]string
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("/readyz body %q: %v", rec.Body.String(), err)
		}
		return rec.Code, body
	}
	for name, h := range map[string]http.Handler{"public": httpserver.Public(deps), "published one listener": httpserver.Published(deps)} {
		code, body := readyz(h)
		if code != http.StatusOK || body["status"] != "degraded" || body["telegram"] != "webhook not set yet (degraded)" {
			t.Errorf("%s /readyz with only Telegram down = %d %v, want 200, degraded", name, code, body)
		}
	}
	for name, h := range map[string]http.Handler{"private": httpserver.Private(deps)} {
		code, body := readyz(h)
		if code != http.StatusServiceUnavailable || body["status"] != "not ready" ||
			body["telegram"] != "webhook not set yet: setWebhook: 502 Bad Gateway" {
			t.Errorf("%s /readyz with Telegram down = %d %v, want 503 with the error", name, code, body)
		}
	}
	telegramDown.Store(false)
	for _, h := range []http.Handler{httpserver.Public(deps), httpserver.Private(deps), httpserver.Published(deps)} {
		if code, body := readyz(h); code != http.StatusOK || body["status"] != "ready" || body["telegram"] != "ok" {
			t.Errorf("/readyz with everything up = %d %v", code, body)
		}
	}
}
