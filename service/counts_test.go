package service_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"wgbot"
	"wgbot/metrics"
)

// TestServerCountsAfterChurn: after trials, moves, removals, revokes,
// expiry (disabled peers that still hold their addresses), a renewal, a
// purge and raw writes the triggers alone see, every place that shows a
// server's active peers — `servers list`, the panel, the admin stats and
// /metrics — shows what a direct count of the peers gives. They read
// server_load instead of counting the peers; and the held addresses the
// capacity limits stay equal to the peers not revoked.
func TestServerCountsAfterChurn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, ids := locationsEnv(t)
	users := make([]wgbot.User, 16)
	devices := make([]int64, len(users))
	on := make([]int64, len(users)) // each device's server
	for i := range users {
		users[i] = registerUser(t, s, int64(8100+i))
		d, err := s.Service.IssueTrial(ctx, users[i])
		if err != nil {
			t.Fatal(err)
		}
		devices[i], on[i] = d.Peer.ID, d.Peer.ServerID
	}
	for i := range 3 { // moved to the other location, then the old peer is taken away
		to := ids["fra1"]
		if on[i] == to {
			to = ids["ams1"]
		}
		d, err := s.Service.MoveDevice(ctx, users[i], devices[i], to)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Service.RemoveDevice(ctx, users[i], devices[i]); err != nil {
			t.Fatal(err)
		}
		devices[i] = d.Peer.ID
	}
	if err := s.Service.RemoveDevice(ctx, users[3], devices[3]); err != nil {
		t.Fatal(err)
	}
	if err := s.Service.Revoke(ctx, users[4]); err != nil {
		t.Fatal(err)
	}
	// Five expire: their peers are disabled and keep their addresses.
	var expiring []int64
	for _, u := range users[5:10] {
		expiring = append(expiring, u.ID)
	}
	if _, err := s.Pool.Exec(ctx, `UPDATE subscriptions SET expires_at = now() - interval '1 minute' WHERE user_id = ANY($1)`, expiring); err != nil {
		t.Fatal(err)
	}
	if expired, err := s.Service.ExpireDue(ctx); err != nil || len(expired) != 5 {
		t.Fatalf("expired %d, %v; want 5", len(expired), err)
	}
	if _, _, err := s.Service.Grant(ctx, users[5], 30, 1); err != nil { // a renewal
		t.Fatal(err)
	}
	if _, err := s.Pool.Exec(ctx, `UPDATE peers SET disabled_at = now() - interval '1 year' WHERE id = $1`, devices[6]); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Store.PurgeDisabled(ctx, time.Now().Add(-24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	// Writes no service path makes, which the triggers count all the same.
	to, ip := ids["fra1"], "10.103.0.200"
	if on[10] == to {
		to, ip = ids["ams1"], "10.101.0.200"
	}
	if _, err := s.Pool.Exec(ctx, `UPDATE peers SET server_id = $2, ip = $3 WHERE id = $1`, devices[10], to, ip); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool.Exec(ctx, `DELETE FROM peers WHERE id = $1`, devices[11]); err != nil {
		t.Fatal(err)
	}

	want := map[string]int64{}
	var disabled int
	rows, err := s.Pool.Query(ctx, `SELECT sv.name, count(p.id) FILTER (WHERE p.status = 'active'), count(p.id) FILTER (WHERE p.status = 'disabled'),
			count(p.id) FILTER (WHERE p.status <> 'revoked'), coalesce(l.peers_held, 0)
		FROM servers sv LEFT JOIN peers p ON p.server_id = sv.id LEFT JOIN server_load l ON l.server_id = sv.id GROUP BY sv.name, l.peers_held`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name string
		var active, off, notRevoked, held int64
		if err := rows.Scan(&name, &active, &off, &notRevoked, &held); err != nil {
			t.Fatal(err)
		}
		want[name] = active
		disabled += int(off)
		if held != notRevoked {
			t.Errorf("%s holds %d addresses in server_load, %d peers are not revoked", name, held, notRevoked)
		}
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	if disabled == 0 {
		t.Fatal("no disabled peer left: the churn does not tell held addresses from active peers")
	}

	listed, err := s.Store.Servers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, sv := range listed {
		if int64(sv.Peers) != want[sv.Name] {
			t.Errorf("servers list: %s has %d peers, the peers table %d active", sv.Name, sv.Peers, want[sv.Name])
		}
	}
	panel, err := s.Store.PanelServers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, sv := range panel {
		if sv.ActivePeers != want[sv.Name] {
			t.Errorf("panel: %s has %d active peers, the peers table %d", sv.Name, sv.ActivePeers, want[sv.Name])
		}
	}
	stats, err := s.Store.Stats(ctx, time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, sv := range stats.Servers {
		if sv.ActivePeers != want[sv.Name] {
			t.Errorf("admin stats: %s has %d active peers, the peers table %d", sv.Name, sv.ActivePeers, want[sv.Name])
		}
	}
	if len(listed) != len(want) || len(panel) != len(want) || len(stats.Servers) != len(want) {
		t.Errorf("%d servers listed, %d in the panel, %d in the stats; want %d", len(listed), len(panel), len(stats.Servers), len(want))
	}
	rec := httptest.NewRecorder()
	metrics.New(s.Pool).Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for name, n := range want {
		if line := fmt.Sprintf("wgbot_server_peers{server=%q} %d\n", name, n); !strings.Contains(rec.Body.String(), line) {
			t.Errorf("/metrics lacks %q", line)
		}
	}
}
