package postgres_test

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"wgbot"
	"wgbot/postgres"
	"wgbot/postgres/pgtest"
)

// Servers are added with disjoint subnets only, drained and enabled, and
// removed only while they hold no peers; every refusal says what clashed.
func TestServersLifecycle(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.New(t)
	store := postgres.NewStore(pool, postgres.Options{LockID: 720301}, nil)
	add := func(name, subnet, subnet6 string) error {
		n := postgres.NewServer{Name: name, Location: "Amsterdam", Endpoint: name + ".example.com:51820",
			Subnet: netip.MustParsePrefix(subnet), Capacity: 500}
		if subnet6 != "" {
			n.Subnet6 = netip.MustParsePrefix(subnet6)
		}
		_, err := store.AddServer(ctx, n)
		return err
	}
	if err := add("ams-1", "10.50.0.0/20", "fd50::/64"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, subnet, subnet6, reason string }{
		{"ams-1", "10.51.0.0/24", "", "server_exists"},
		{"ams-2", "10.50.8.0/24", "", "subnet_overlap"}, // inside ams-1's
		{"ams-2", "10.48.0.0/14", "", "subnet_overlap"}, // around it
		{"ams-2", "10.52.0.0/24", "fd50::/48", "subnet_overlap"},
	} {
		err := add(c.name, c.subnet, c.subnet6)
		if wgbot.ErrorReason(err) != c.reason {
			t.Errorf("add %s %s %s: %v, want %s", c.name, c.subnet, c.subnet6, err, c.reason)
		}
	}
	if err := add("fra-1", "10.52.0.0/24", "fd52::/64"); err != nil {
		t.Fatal(err)
	}
	if err := store.SetServerState(ctx, "fra-1", postgres.ServerDraining); err != nil {
		t.Fatal(err)
	}
	if err := store.SetServerState(ctx, "nope", postgres.ServerDraining); wgbot.ErrorCode(err) != wgbot.ENotFound {
		t.Errorf("draining an unknown server: %v", err)
	}
	list, err := store.Servers(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("servers %v, %v", list, err)
	}
	if s := list[1]; s.Name != "fra-1" || s.State != postgres.ServerDraining || s.Location != "Amsterdam" || s.Capacity != 500 ||
		s.Address != netip.MustParseAddr("10.52.0.1") || s.Node != nil {
		t.Errorf("fra-1 listed as %+v", s)
	}

	// A node's reports: the applied revision never moves back.
	srv, err := store.ServerByName(ctx, "ams-1")
	if err != nil {
		t.Fatal(err)
	}
	if err := store.RegisterNodeKey(ctx, srv.ID, "node-key"); err != nil {
		t.Fatal(err)
	}
	if err := store.NodeApplied(ctx, srv.ID, "", 7); err != nil {
		t.Fatal(err)
	}
	if err := store.ReportNode(ctx, srv.ID, postgres.NodeReport{Revision: 5, Version: "v1", Peers: 3, Handshakes: 2, ListenPort: 51820}); err != nil {
		t.Fatal(err)
	}
	nodes, err := store.NodeStatuses(ctx)
	st, ok := nodes[srv.ID]
	if err != nil || !ok || st.Revision != 7 || st.Peers != 3 || st.Handshakes != 2 || st.Version != "v1" {
		t.Errorf("node status %+v %v %v", st, ok, err)
	}

	// A server with a peer cannot be removed, nor its key changed.
	if _, err := pool.Exec(ctx, `WITH u AS (INSERT INTO users (telegram_id) VALUES (77) RETURNING id),
		s AS (INSERT INTO subscriptions (user_id, plan, status, device_limit, starts_at, expires_at)
			SELECT id, 'm', 'active', 1, now(), now() + interval '1 day' FROM u RETURNING id)
		INSERT INTO peers (subscription_id, server_id, name, ip, public_key, private_key_enc, preshared_key_enc, key_id, status)
		SELECT s.id, $1, 'd', '10.50.0.2', 'pk', '\x00', '\x00', 'k', 'active' FROM s`, srv.ID); err != nil {
		t.Fatal(err)
	}
	if err := store.RemoveServer(ctx, "ams-1"); wgbot.ErrorReason(err) != "server_has_peers" {
		t.Errorf("removing a server with a peer: %v", err)
	}
	if err := store.RegisterNodeKey(ctx, srv.ID, "other-key"); wgbot.ErrorReason(err) != "server_key_change" {
		t.Errorf("changing the key of a server with peers: %v", err)
	}
	if err := store.RemoveServer(ctx, "fra-1"); err != nil {
		t.Fatal(err)
	}
	if list, _ := store.Servers(ctx); len(list) != 1 {
		t.Errorf("%d servers after removing one of two", len(list))
	}
}

// The stats list servers whose node went silent first, flagged, and say
// which are draining.
func TestStatsServerHealth(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.New(t)
	store := postgres.NewStore(pool, postgres.Options{LockID: 720301, NodeDownAfter: 10 * time.Second}, nil)
	for _, n := range []postgres.NewServer{
		{Name: "a-live", Location: "A", Endpoint: "a:1", Subnet: netip.MustParsePrefix("10.81.0.0/24")},
		{Name: "b-silent", Location: "B", Endpoint: "b:1", Subnet: netip.MustParsePrefix("10.82.0.0/24")},
		{Name: "c-draining", Location: "C", Endpoint: "c:1", Subnet: netip.MustParsePrefix("10.83.0.0/24")},
	} {
		srv, err := store.AddServer(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		if err := store.ReportNode(ctx, srv.ID, postgres.NodeReport{Revision: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pool.Exec(ctx, `UPDATE node_status SET seen_at = now() - interval '1 minute'
		WHERE server_id = (SELECT id FROM servers WHERE name = 'b-silent')`); err != nil {
		t.Fatal(err)
	}
	if err := store.SetServerState(ctx, "c-draining", postgres.ServerDraining); err != nil {
		t.Fatal(err)
	}
	st, err := store.Stats(ctx, time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []wgbot.ServerLoad{{Name: "b-silent", NodeDown: true}, {Name: "a-live"}, {Name: "c-draining", Draining: true}}
	if !slices.Equal(st.Servers, want) {
		t.Errorf("stats servers %+v, want %+v", st.Servers, want)
	}
}
