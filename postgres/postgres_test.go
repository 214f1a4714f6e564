package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"wgbot/postgres"
	"wgbot/postgres/pgtest"
)

func TestMain(m *testing.M) {
	if url := os.Getenv(ensureServerChildEnv); url != "" {
		if err := ensureServerChild(url); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	pgtest.Main(m)
}

// Seed edge case: several simultaneous requests must not spike connections.
func TestPoolNeverExceedsMax(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	app := fmt.Sprintf("wgbot-pooltest-%d", time.Now().UnixNano())
	pool, err := postgres.Open(ctx, postgres.PoolConfig{URL: url, MinConns: 2, MaxConns: 5, ConnectTimeout: 5 * time.Second, ApplicationName: app})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()

	monitor, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer monitor.Close(ctx)

	var peak atomic.Int64
	done := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			var n int64
			if err := monitor.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`, app).Scan(&n); err == nil && n > peak.Load() {
				peak.Store(n)
			}
			select {
			case <-done:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()

	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			switch i % 3 {
			case 0: // read
				_, err = pool.Exec(ctx, `SELECT pg_sleep(0.01)`)
			case 1: // write
				_, err = pool.Exec(ctx, `INSERT INTO users (telegram_id) VALUES ($1)`, i)
			case 2: // transaction
				err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
					if _, err := tx.Exec(ctx, `INSERT INTO users (telegram_id) VALUES ($1)`, i); err != nil {
						return err
					}
					_, err := tx.Exec(ctx, `SELECT pg_sleep(0.01)`)
					return err
				})
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(done)
	<-sampled
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := peak.Load(); got > 5 {
		t.Fatalf("wgbot held %d connections at once, DB_POOL_MAX is 5", got)
	} else if got < 2 {
		t.Fatalf("sampled at most %d connections: the monitor did not see the load", got)
	}
	t.Logf("peak connections: %d (max 5)", peak.Load())
}

// Each UNIQUE guard behind an invariant rejects a duplicate by itself, even
// if the code above it were wrong.
func TestConstraints(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.New(t)
	setup := `
		INSERT INTO users (id, telegram_id) VALUES (1, 100), (2, 200);
		INSERT INTO servers (id, name, interface, endpoint, subnet, address, public_key, next_ip)
			VALUES (1, 'main', 'wg0', 'vpn.example.com:51820', '10.8.0.0/24', '10.8.0.1', 'srvkey', '10.8.0.2');
		INSERT INTO subscriptions (id, user_id, plan, is_trial, status, device_limit, starts_at, expires_at)
			VALUES (1, 1, 'trial', true, 'active', 1, now(), now() + interval '3 days'),
			       (2, 2, 'month', false, 'active', 3, now(), now() + interval '30 days');
		INSERT INTO peers (subscription_id, server_id, name, ip, public_key, private_key_enc, preshared_key_enc, key_id, status)
			VALUES (1, 1, 'phone', '10.8.0.2', 'key-a', '\x00', '\x00', 'k1', 'active');
		INSERT INTO payments (provider, provider_payment_id, amount, currency, status, days)
			VALUES ('stars', 'charge-1', 100, 'XTR', 'credited', 30);
		SELECT setval('users_id_seq', 10), setval('subscriptions_id_seq', 10), setval('servers_id_seq', 10);`
	if _, err := pool.Exec(ctx, setup); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, sql, constraint string
	}{
		{"second telegram user row", `INSERT INTO users (telegram_id) VALUES (100)`, "users_telegram_id_key"},
		{"second trial for a user", `UPDATE subscriptions SET status = 'expired' WHERE id = 1;
			INSERT INTO subscriptions (user_id, plan, is_trial, status, device_limit, starts_at, expires_at)
			VALUES (1, 'trial', true, 'active', 1, now(), now())`, "subscriptions_one_trial"},
		{"second live subscription", `INSERT INTO subscriptions (user_id, plan, status, device_limit, starts_at, expires_at)
			VALUES (2, 'month', 'active', 1, now(), now())`, "subscriptions_one_active"},
		{"duplicate active server and ip", `INSERT INTO peers (subscription_id, server_id, name, ip, public_key, private_key_enc, preshared_key_enc, key_id, status)
			VALUES (2, 1, 'laptop', '10.8.0.2', 'key-b', '\x00', '\x00', 'k1', 'active')`, "peers_server_ip"},
		{"disabled peer still holds its ip", `UPDATE peers SET status = 'disabled';
			INSERT INTO peers (subscription_id, server_id, name, ip, public_key, private_key_enc, preshared_key_enc, key_id, status)
			VALUES (2, 1, 'laptop', '10.8.0.2', 'key-b', '\x00', '\x00', 'k1', 'active')`, "peers_server_ip"},
		{"duplicate public key", `INSERT INTO peers (subscription_id, server_id, name, ip, public_key, private_key_enc, preshared_key_enc, key_id, status)
			VALUES (2, 1, 'laptop', '10.8.0.3', 'key-a', '\x00', '\x00', 'k1', 'active')`, "peers_public_key_key"},
		{"duplicate provider payment", `INSERT INTO payments (provider, provider_payment_id, amount, currency, status, days)
			VALUES ('stars', 'charge-1', 100, 'XTR', 'credited', 30)`, "payments_provider_provider_payment_id_key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
				_, err := tx.Exec(ctx, tt.sql)
				if err == nil {
					return errors.New("rollback")
				}
				return err
			})
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != "23505" || pgErr.ConstraintName != tt.constraint {
				t.Fatalf("want unique violation of %s, got %v", tt.constraint, err)
			}
		})
	}
	t.Run("revoked peer frees its ip", func(t *testing.T) {
		_, err := pool.Exec(ctx, `UPDATE peers SET status = 'revoked';
			INSERT INTO peers (subscription_id, server_id, name, ip, public_key, private_key_enc, preshared_key_enc, key_id, status)
			VALUES (2, 1, 'laptop', '10.8.0.2', 'key-c', '\x00', '\x00', 'k1', 'active')`)
		if err != nil {
			t.Fatal(err)
		}
	})
}
