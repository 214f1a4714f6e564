package panel_test

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"
)

// seedLarge fills the database to the size the panel must stay fast at:
// 100,000 users over a year, a subscription for nine in ten (a quarter
// of them trials, a third expired), 300,000 payments (a fifth of the
// users never paid, 2% refunded, a few flagged).
func (e *env) seedLarge() {
	e.t.Helper()
	for _, sql := range []string{
		`INSERT INTO users (telegram_id, username, first_name, language, banned, created_at)
		SELECT 10000000 + g, 'user' || g, (ARRAY['Anna','Boris','Ivan','Maria','John','Olga','Pavel','Kate'])[1 + g % 8] || ' ' || g,
			CASE WHEN g % 3 = 0 THEN 'ru' ELSE 'en' END, g % 500 = 0,
			now() - (g % 365) * interval '1 day' - (g % 1440) * interval '1 minute'
		FROM generate_series(1, 100000) g`,
		`INSERT INTO subscriptions (user_id, plan, is_trial, status, device_limit, starts_at, expires_at, created_at, updated_at)
		SELECT id, CASE WHEN id % 4 = 0 THEN 'trial' ELSE 'month' END, id % 4 = 0, CASE WHEN id % 3 = 0 THEN 'expired' ELSE 'active' END, 3,
			created_at, CASE WHEN id % 3 = 0 THEN created_at + interval '30 days' ELSE now() + (id % 30) * interval '1 day' END, created_at, created_at
		FROM users WHERE id % 10 <> 9`,
		`WITH m AS (SELECT min(id) AS first FROM users WHERE telegram_id > 10000000)
		INSERT INTO payments (provider, provider_payment_id, user_id, amount, currency, status, days, flagged, applied_at, refunded_at)
		SELECT CASE WHEN g % 3 = 0 THEN 'yookassa' ELSE 'stars' END, 'bench-' || g, m.first + g % 80000,
			CASE WHEN g % 3 = 0 THEN 19900 ELSE 150 END, CASE WHEN g % 3 = 0 THEN 'RUB' ELSE 'XTR' END,
			CASE WHEN g % 50 = 0 THEN 'refunded' ELSE 'credited' END, 30, CASE WHEN g % 1000 = 0 THEN 'check me' ELSE '' END,
			now() - (g % 365) * interval '1 day' - (g % 1440) * interval '1 minute',
			CASE WHEN g % 50 = 0 THEN now() - (g % 365) * interval '1 day' + interval '1 hour' END
		FROM generate_series(1, 300000) g, m`,
		`ANALYZE`,
	} {
		e.exec(sql)
	}
}

// BenchmarkPanel measures whole requests to the panel (the queries and
// the rendering) at 100,000 users and 300,000 payments and reports each
// page's median and 95th percentile. Run with
//
//	go test ./panel -run '^$' -bench Panel -benchtime 200x
//
// The figures are in docs/benchmarks.md.
func BenchmarkPanel(b *testing.B) {
	e := newEnv(b)
	start := time.Now()
	e.seedLarge()
	b.Logf("seeded in %v", time.Since(start).Round(time.Millisecond))
	c, _ := e.signIn()
	pages := []struct{ name, path string }{
		{"users", "/panel/users"},
		{"users-page-40", ""}, // filled in below: a deep page
		{"users-active", "/panel/users?status=active"},
		{"users-expired", "/panel/users?status=expired"},
		{"users-trial", "/panel/users?status=trial"},
		{"users-never-paid", "/panel/users?status=never_paid"},
		{"users-banned", "/panel/users?status=banned"},
		{"search-id", "/panel/users?q=10054321"},
		{"search-username", "/panel/users?q=" + url.QueryEscape("@user4242")},
		{"search-name", "/panel/users?q=Olga"},
		{"search-none", "/panel/users?q=Xavier"},
		{"user", "/panel/users/10054321"},
		{"payments-flagged", "/panel/payments?flagged=1"},
		{"dashboard", "/panel/"},
	}
	var first int64
	e.stack.Pool.QueryRow(e.ctx, `SELECT id FROM users ORDER BY id DESC OFFSET 2000 LIMIT 1`).Scan(&first)
	pages[1].path = "/panel/users?before=" + strconv.FormatInt(first, 10)
	for _, pg := range pages {
		b.Run(pg.name, func(b *testing.B) {
			var took []time.Duration
			for b.Loop() {
				t0 := time.Now()
				if status, _ := c.get(pg.path); status != http.StatusOK {
					b.Fatalf("%s answered %d", pg.path, status)
				}
				took = append(took, time.Since(t0))
			}
			slices.Sort(took)
			b.ReportMetric(ms(took[len(took)/2]), "p50-ms")
			b.ReportMetric(ms(took[(len(took)*95)/100]), "p95-ms")
		})
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
