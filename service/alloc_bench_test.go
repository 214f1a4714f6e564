package service_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"wgbot"
	"wgbot/postgres"
	"wgbot/postgres/pgtest"
)

// BenchmarkAllocate measures issuing a trial (keys, sealing, the allocating
// transaction) at several concurrencies with 1k and 50k peers already on
// the server, and, in the same run, the ceiling: pgbench running a
// one-row insert transaction under the same advisory lock. Run with
//
//	go test -run '^$' -bench Allocate -benchtime 2000x ./service
//
// and compare allocs/s against pgbench's tps at the same concurrency.
func BenchmarkAllocate(b *testing.B) {
	for _, existing := range []int{1_000, 50_000} {
		e := benchEnv(b, "10.128.0.0/9") // room for 8M hosts
		seedPeers(b, e, existing)
		for _, conc := range []int{1, 16, 64} {
			b.Run(fmt.Sprintf("peers=%d/conc=%d", existing, conc), func(b *testing.B) {
				users := make([]wgbot.User, b.N)
				base := time.Now().UnixNano() % 1e12
				for i := range users {
					users[i] = e.user(b, base*100+int64(i))
				}
				latencies := make([]time.Duration, b.N)
				var next atomic.Int64
				var wg sync.WaitGroup
				b.ResetTimer()
				start := time.Now()
				for range conc {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for {
							i := int(next.Add(1)) - 1
							if i >= b.N {
								return
							}
							t0 := time.Now()
							if _, err := e.svc.IssueTrial(context.Background(), users[i]); err != nil {
								b.Error(err)
								return
							}
							latencies[i] = time.Since(t0)
						}
					}()
				}
				wg.Wait()
				elapsed := time.Since(start)
				b.StopTimer()
				sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
				b.ReportMetric(float64(b.N)/elapsed.Seconds(), "allocs/s")
				b.ReportMetric(float64(latencies[b.N/2].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(latencies[b.N*99/100].Microseconds())/1000, "p99-ms")
			})
		}
	}
	for _, conc := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("pgbench-ceiling/conc=%d", conc), func(b *testing.B) {
			tps := pgbenchCeiling(b, conc)
			b.ReportMetric(tps, "tps")
		})
	}
}

// benchEnv is the product's configuration: DB_POOL_MAX=10 and a job
// client attached to the store, as in serve.
func benchEnv(b *testing.B, subnet string) *env {
	e, err := newEnv(context.Background(), pgtest.URL(b)+"&pool_max_conns=10", subnet, nil,
		storeSetup{opts: postgres.Options{ReminderDays: []int{3, 1}}, jobs: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(e.pool.Close)
	return e
}

// seedPeers fills the server with n active peers the fast way and moves
// the allocator's high-water mark past them, as n earlier issuances would.
func seedPeers(b *testing.B, e *env, n int) {
	ctx := context.Background()
	_, err := e.pool.Exec(ctx, fmt.Sprintf(`
		INSERT INTO users (telegram_id) SELECT -g FROM generate_series(1, %d) g;
		INSERT INTO subscriptions (user_id, plan, status, device_limit, starts_at, expires_at)
			SELECT id, 'month', 'active', 1, now(), now() + interval '30 days' FROM users WHERE telegram_id < 0;
		INSERT INTO peers (subscription_id, server_id, name, ip, public_key, private_key_enc, preshared_key_enc, key_id, status)
			SELECT s.id, 1, 'seed', '10.128.0.1'::inet + s.id, 'seed-' || s.id, '\x00', '\x00', 'k', 'active'
			FROM subscriptions s;
		UPDATE servers SET next_ip = (SELECT max(ip) + 1 FROM peers);
		ANALYZE`, n))
	if err != nil {
		b.Fatal(err)
	}
}

// pgbenchCeiling runs a one-row insert under pg_advisory_xact_lock on a
// fresh table for 5 seconds: the fastest a lock-serialized allocator can go
// on this machine.
func pgbenchCeiling(b *testing.B, conc int) float64 {
	e := benchEnv(b, "10.0.0.0/24")
	if _, err := e.pool.Exec(context.Background(), `CREATE TABLE bench_rows (id bigserial PRIMARY KEY, server_id bigint, ip inet, created_at timestamptz DEFAULT now())`); err != nil {
		b.Fatal(err)
	}
	url := strings.Replace(e.url, "&pool_max_conns=10", "", 1) // a pgx-only parameter
	return pgtest.Pgbench(b, url, fmt.Sprintf(`BEGIN;
SELECT pg_advisory_xact_lock(%d, 1);
INSERT INTO bench_rows (server_id, ip) VALUES (1, '10.0.0.2');
COMMIT;
`, testLockID), conc)
}
