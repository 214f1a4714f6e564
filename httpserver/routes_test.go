package httpserver_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"wgbot"
	"wgbot/config"
	"wgbot/httpserver"
	"wgbot/metrics"
	"wgbot/postgres"
	"wgbot/postgres/pgtest"
	"wgbot/reconcile"
	"wgbot/secret"
	"wgbot/service"
	"wgbot/wireguard/wgconf"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// proxy forwards TCP to PostgreSQL and can be cut and restored, to show
// /readyz following the database without stopping the shared server.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			down := p.down
			if !down {
				p.conns = append(p.conns, c)
			}
			p.mu.Unlock()
			if down {
				c.Close()
				continue
			}
			go p.pipe(c)
		}
	}()
	return p
}

func (p *proxy) pipe(c net.Conn) {
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns = append(p.conns, s)
	p.mu.Unlock()
	go io.Copy(s, c)
	io.Copy(c, s)
	c.Close()
	s.Close()
}

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *proxy) restore() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

func TestMetricsAndReadiness(t *testing.T) {
	ctx := context.Background()
	dbURL, err := url.Parse(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	px := newProxy(t, dbURL.Host)
	dbURL.Host = px.ln.Addr().String()
	pool, err := postgres.Open(ctx, postgres.PoolConfig{URL: dbURL.String(), MinConns: 1, MaxConns: 4, ConnectTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	m := metrics.New(pool)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store := postgres.NewStore(pool, 720301, 0)
	priv, _ := wgtypes.GeneratePrivateKey()
	conf := filepath.Join(t.TempDir(), "wg0.conf")
	os.WriteFile(conf, []byte("[Interface]\nPrivateKey = "+priv.String()+"\n"), 0o600)
	srv, err := store.EnsureServer(ctx, wgbot.Server{Name: "main", Interface: "wg0", Endpoint: "vpn.example.com:51820",
		Subnet: netip.MustParsePrefix("10.60.0.0/24"), Address: netip.MustParseAddr("10.60.0.1"), PublicKey: priv.PublicKey().String()})
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := secret.NewKeyring(bytes.Repeat([]byte{1}, 32))
	rec, err := reconcile.New(store, keys, nil, reconcile.Config{ServerID: srv.ID, Mode: config.ApplyFile,
		File: wgconf.Config{Path: conf}, Metrics: m}, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go rec.Run(runCtx)
	svc := service.New(store, keys, rec, service.Config{Server: srv, TrialDays: 3, Metrics: m, ApplyWait: 5 * time.Second}, nil, log)
	h := httpserver.New(httpserver.Deps{Pool: pool, Reconciler: rec, Log: log, Metrics: m, StaleAfter: time.Minute})

	for i := range 3 {
		u, err := svc.Register(ctx, wgbot.User{TelegramID: int64(i + 1)}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.IssueTrial(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	u, _ := svc.Register(ctx, wgbot.User{TelegramID: 1}, 0)
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
	noDevice := httpserver.New(httpserver.Deps{Pool: pool, Reconciler: rec, Log: log, StaleAfter: time.Minute,
		Device: func() error { return errors.New("wg0: no such interface") }})
	if code := get(t, noDevice, "/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz = %d with the WireGuard interface missing", code)
	}
	px.cut()
	if code := get(t, h, "/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz = %d with the database cut off", code)
	}
	if code := get(t, h, "/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz = %d: liveness must not depend on the database", code)
	}
	px.restore()
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
