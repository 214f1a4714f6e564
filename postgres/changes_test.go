package postgres_test

import (
	"context"
	"slices"
	"testing"

	"wgbot/postgres"
	"wgbot/postgres/pgtest"
)

// The triggers log every peer change with a revision a reader of
// "revision > applied" cannot miss: the transaction's own bump when it made
// one (even in the same statement as the insert, as the allocator does), a
// bump of their own when it did not. Delivery marks log nothing; pruning
// makes older readers reconcile in full.
func TestChangesSince(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.New(t)
	store := postgres.NewStore(pool, postgres.Options{LockID: 720301}, nil)
	if _, err := pool.Exec(ctx, `
		INSERT INTO users (id, telegram_id) VALUES (1, 100);
		INSERT INTO servers (id, name, interface, endpoint, subnet, address, public_key, next_ip)
			VALUES (1, 'main', 'wg0', 'vpn.example.com:51820', '10.8.0.0/24', '10.8.0.1', 'srvkey', '10.8.0.2');
		INSERT INTO subscriptions (id, user_id, plan, is_trial, status, device_limit, starts_at, expires_at)
			VALUES (1, 1, 'trial', true, 'active', 9, now(), now() + interval '3 days')`); err != nil {
		t.Fatal(err)
	}
	insert := func(ip, key string) int64 {
		var id int64
		if err := pool.QueryRow(ctx, `WITH p AS (INSERT INTO peers (subscription_id, server_id, name, ip, public_key, private_key_enc, preshared_key_enc, key_id, status)
				VALUES (1, 1, 'd', $1, $2, '\x00', '\x00', 'k1', 'active') RETURNING id),
			s AS (UPDATE servers SET revision = revision + 1 WHERE id = 1)
			SELECT id FROM p`, ip, key).Scan(&id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	changes := func(since int64) postgres.PeerChanges {
		c, err := store.ChangesSince(ctx, 1, since)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a := insert("10.8.0.2", "key-a")
	c := changes(0)
	if c.Revision != 1 || len(c.Active) != 1 || c.Active[0].ID != a || c.Full {
		t.Fatalf("after one insert with its bump: %+v", c)
	}
	b := insert("10.8.0.3", "key-b")
	if c := changes(1); c.Revision != 2 || len(c.Active) != 1 || c.Active[0].ID != b || c.Rows != 1 {
		t.Fatalf("since 1: %+v", c)
	}
	// A change without a bump of its own still gets a new revision.
	if _, err := pool.Exec(ctx, `UPDATE peers SET status = 'revoked', revoked_at = now() WHERE id = $1`, a); err != nil {
		t.Fatal(err)
	}
	c = changes(2)
	if c.Revision != 3 || len(c.Active) != 0 || !slices.Equal(c.Gone, []int64{a}) {
		t.Fatalf("revoke without a bump: %+v", c)
	}
	// Columns neither the file nor the device shows log nothing.
	if _, err := pool.Exec(ctx, `UPDATE peers SET name = 'renamed' WHERE id = $1`, b); err != nil {
		t.Fatal(err)
	}
	if c := changes(3); c.Revision != 3 || c.Rows != 0 {
		t.Fatalf("a rename logged a change: %+v", c)
	}
	if err := store.PruneChanges(ctx, 1, 2); err != nil {
		t.Fatal(err)
	}
	if c := changes(1); !c.Full {
		t.Fatalf("a reader behind the pruned log was not told to reconcile in full: %+v", c)
	}
	if c := changes(2); c.Full || !slices.Equal(c.Gone, []int64{a}) {
		t.Fatalf("a reader at the pruned revision: %+v", c)
	}
	if c := changes(9); !c.Full {
		t.Fatalf("a reader ahead of the database was not told to reconcile in full: %+v", c)
	}
}
