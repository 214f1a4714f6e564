package service_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"wgbot"
	"wgbot/postgres"
	"wgbot/service"
	"wgbot/service/servicetest"
)

// locationsEnv is a stack in node mode with two locations: Amsterdam on
// two servers, Frankfurt on one, every node just heard from.
func locationsEnv(t *testing.T) (*servicetest.Stack, map[string]int64) {
	t.Helper()
	ctx := context.Background()
	s := servicetest.New(t, servicetest.Options{Config: service.Config{PickServers: true, NodeDownAfter: 30 * time.Second, ApplyWait: time.Second}})
	ids := map[string]int64{}
	for i, n := range []postgres.NewServer{
		{Name: "ams1", Location: "Amsterdam", Subnet: netip.MustParsePrefix("10.101.0.0/24")},
		{Name: "ams2", Location: "Amsterdam", Subnet: netip.MustParsePrefix("10.102.0.0/24")},
		{Name: "fra1", Location: "Frankfurt", Subnet: netip.MustParsePrefix("10.103.0.0/24")},
	} {
		n.Endpoint, n.MTU = n.Name+".example.com:51820", 1420
		srv, err := s.Store.AddServer(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Store.RegisterNodeKey(ctx, srv.ID, strings.Repeat(string(rune('a'+i)), 43)+"="); err != nil {
			t.Fatal(err)
		}
		if err := s.Store.ReportNode(ctx, srv.ID, postgres.NodeReport{Revision: 1}); err != nil {
			t.Fatal(err)
		}
		ids[n.Name] = srv.ID
	}
	return s, ids
}

func registerUser(t *testing.T, s *servicetest.Stack, telegramID int64) wgbot.User {
	t.Helper()
	u, err := s.Service.Register(context.Background(), wgbot.User{TelegramID: telegramID, Language: "en"}, "")
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestLocationChoice: devices go to the location the user chose, spread
// over its servers; a down location refuses new devices (no peer, no
// burned trial) while a payment still gets its device elsewhere; ids that
// name no active location are refused.
func TestLocationChoice(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, ids := locationsEnv(t)
	locs, err := s.Service.Locations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(locs) != 2 || locs[0].Name != "Amsterdam" || len(locs[0].ServerIDs) != 2 || !locs[0].Up || locs[1].Name != "Frankfurt" || !locs[1].Up {
		t.Fatalf("locations %+v, want Amsterdam (2 servers) and Frankfurt, both up", locs)
	}
	// 30 users choose Amsterdam and take trials at once.
	var wg sync.WaitGroup
	errs := make(chan error, 30)
	for i := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u := registerUser(t, s, int64(7000+i))
			if _, err := s.Service.SetLocation(ctx, u, ids["ams2"]); err != nil {
				errs <- err
				return
			}
			_, err := s.Service.IssueTrial(ctx, u)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	perServer := map[string]int{}
	rows, err := s.Pool.Query(ctx, `SELECT sv.name, count(*) FROM peers p JOIN servers sv ON sv.id = p.server_id GROUP BY sv.name`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name string
		var n int
		if err := rows.Scan(&name, &n); err != nil {
			t.Fatal(err)
		}
		perServer[name] = n
	}
	if perServer["ams1"]+perServer["ams2"] != 30 || perServer["ams1"] == 0 || perServer["ams2"] == 0 || len(perServer) != 2 {
		t.Errorf("peers per server %v: want all 30 in Amsterdam, on both of its servers", perServer)
	}

	// Frankfurt's node goes silent.
	if _, err := s.Pool.Exec(ctx, `UPDATE node_status SET seen_at = now() - interval '5 minutes' WHERE server_id = $1`, ids["fra1"]); err != nil {
		t.Fatal(err)
	}
	if locs, _ := s.Service.Locations(ctx); locs[1].Up {
		t.Error("Frankfurt still up with its node silent")
	}
	u := registerUser(t, s, 7100)
	if _, err := s.Service.SetLocation(ctx, u, ids["fra1"]); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Service.IssueTrial(ctx, u); !errors.Is(err, wgbot.ErrLocationDown) {
		t.Fatalf("trial in a down location: %v, want ErrLocationDown", err)
	}
	if _, err := s.Service.SetLocation(ctx, u, 0); err != nil {
		t.Fatal(err)
	}
	if d, err := s.Service.IssueTrial(ctx, u); err != nil || d.Peer.ServerID == ids["fra1"] {
		t.Fatalf("trial after choosing any: %v on server %d", err, d.Peer.ServerID)
	}

	// A payment is never refused for the location: it goes elsewhere.
	payer := registerUser(t, s, 7101)
	if _, err := s.Service.SetLocation(ctx, payer, ids["fra1"]); err != nil {
		t.Fatal(err)
	}
	plan, _ := s.Service.Plan("month")
	res, err := s.Service.Credit(ctx, wgbot.Credit{Provider: "stars", ProviderPaymentID: "loc-1", UserID: payer.ID, Amount: plan.Prices["XTR"], Currency: "XTR", Plan: plan})
	if err != nil || res.Delivery == nil || res.Delivery.Peer.ServerID == ids["fra1"] {
		t.Fatalf("credit with the chosen location down: %v, %+v", err, res.Delivery)
	}

	// Forged or stale location ids change nothing.
	if _, err := s.Service.SetLocation(ctx, payer, s.Server.ID); !errors.Is(err, wgbot.ErrUnknownLocation) {
		t.Errorf("the default server, which has no location: %v, want ErrUnknownLocation", err)
	}
	if _, err := s.Service.SetLocation(ctx, payer, 999999); !errors.Is(err, wgbot.ErrUnknownLocation) {
		t.Errorf("no such server: %v, want ErrUnknownLocation", err)
	}
	var kept string
	if err := s.Pool.QueryRow(ctx, `SELECT location FROM user_locations WHERE user_id = $1`, payer.ID).Scan(&kept); err != nil || kept != "Frankfurt" {
		t.Errorf("the user's location %q, %v after forged ids; want Frankfurt kept", kept, err)
	}
}

// TestMoveDevice: ten presses of Move at once make one new peer; the old
// peer works until the user removes it or its grace ends; a second move
// waits for the first; and a move to the device's own location is refused.
func TestMoveDevice(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, ids := locationsEnv(t)
	u := registerUser(t, s, 7200)
	if _, err := s.Service.SetLocation(ctx, u, ids["fra1"]); err != nil {
		t.Fatal(err)
	}
	d, err := s.Service.IssueTrial(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	old := d.Peer
	if _, err := s.Service.MoveDevice(ctx, u, old.ID, ids["fra1"]); !errors.Is(err, wgbot.ErrSameLocation) {
		t.Errorf("move to its own location: %v, want ErrSameLocation", err)
	}
	var wg sync.WaitGroup
	results := make(chan error, 10)
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Service.MoveDevice(ctx, u, old.ID, ids["ams1"])
			results <- err
		}()
	}
	wg.Wait()
	close(results)
	moved := 0
	for err := range results {
		switch {
		case err == nil:
			moved++
		case !errors.Is(err, wgbot.ErrMoveInProgress):
			t.Errorf("concurrent move: %v", err)
		}
	}
	if moved != 1 {
		t.Fatalf("%d of 10 concurrent moves succeeded, want 1", moved)
	}
	peers, err := s.Service.Devices(ctx, u)
	if err != nil || len(peers) != 2 {
		t.Fatalf("devices after a move: %v, %+v; want the old and the new", err, peers)
	}
	newer := peers[1]
	if newer.Name != old.Name || newer.IP.IsValid() && !netip.MustParsePrefix("10.101.0.0/24").Contains(newer.IP) && !netip.MustParsePrefix("10.102.0.0/24").Contains(newer.IP) {
		t.Errorf("moved device %+v: want the same name with an Amsterdam address", newer)
	}
	if peers[0].RetireAt.IsZero() || peers[0].Status != wgbot.PeerActive {
		t.Errorf("old peer %+v: want active and retiring", peers[0])
	}
	if _, err := s.Service.MoveDevice(ctx, u, newer.ID, ids["fra1"]); !errors.Is(err, wgbot.ErrMoveInProgress) {
		t.Errorf("second move while the first's old peer lives: %v, want ErrMoveInProgress", err)
	}
	if _, err := s.Service.AddDevice(ctx, u, ""); !errors.Is(err, wgbot.ErrDeviceLimit) {
		t.Errorf("add a device while over the limit by a move: %v, want ErrDeviceLimit", err)
	}
	// Another user's device cannot be moved.
	other := registerUser(t, s, 7201)
	if _, err := s.Service.IssueTrial(ctx, other); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Service.MoveDevice(ctx, other, newer.ID, ids["fra1"]); !errors.Is(err, wgbot.ErrPeerNotFound) {
		t.Errorf("move of another user's device: %v, want ErrPeerNotFound", err)
	}

	// The grace ends: the sweep revokes the old peer and frees its address.
	if n, err := s.Service.RetireMoved(ctx); err != nil || n != 0 {
		t.Fatalf("retire before the grace ends: %d, %v", n, err)
	}
	if _, err := s.Pool.Exec(ctx, `UPDATE peers SET retire_at = now() - interval '1 second' WHERE id = $1`, old.ID); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Service.RetireMoved(ctx); err != nil || n != 1 {
		t.Fatalf("retire after the grace: %d, %v; want one server changed", n, err)
	}
	var status string
	var freed bool
	if err := s.Pool.QueryRow(ctx, `SELECT status, EXISTS (SELECT 1 FROM free_addresses f WHERE f.server_id = p.server_id AND f.ip = p.ip)
		FROM peers p WHERE id = $1`, old.ID).Scan(&status, &freed); err != nil {
		t.Fatal(err)
	}
	if status != wgbot.PeerRevoked || !freed {
		t.Errorf("old peer %s, address freed %v; want revoked and freed", status, freed)
	}
	if _, err := s.Service.MoveDevice(ctx, u, newer.ID, ids["fra1"]); err != nil {
		t.Errorf("move once the old peer is gone: %v", err)
	}
}

// TestCapacityHardLimit: 20 users take trials at once on a location whose
// one server has room for 5: exactly 5 get a device, the others are told
// it is full; a payment still gets its device. The held-address counts
// the picks read stay equal to the peers through revokes and moves.
func TestCapacityHardLimit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, ids := locationsEnv(t)
	srv, err := s.Store.AddServer(ctx, postgres.NewServer{Name: "small", Location: "Vilnius", Endpoint: "small.example.com:51820",
		Subnet: netip.MustParsePrefix("10.104.0.0/24"), MTU: 1420, Capacity: 5})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Store.RegisterNodeKey(ctx, srv.ID, strings.Repeat("s", 43)+"="); err != nil {
		t.Fatal(err)
	}
	if err := s.Store.ReportNode(ctx, srv.ID, postgres.NodeReport{Revision: 1}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 20)
	users := make([]wgbot.User, 20)
	for i := range users {
		users[i] = registerUser(t, s, int64(7300+i))
		if _, err := s.Service.SetLocation(ctx, users[i], srv.ID); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.Service.IssueTrial(ctx, users[i])
		}()
	}
	wg.Wait()
	issued := 0
	var holder wgbot.User // one of the users who got a trial
	for i, err := range errs {
		switch {
		case err == nil:
			issued++
			holder = users[i]
		case !errors.Is(err, wgbot.ErrServerFull) && !errors.Is(err, wgbot.ErrLocationDown):
			t.Errorf("trial on a full server: %v", err)
		}
	}
	var onServer int
	if err := s.Pool.QueryRow(ctx, `SELECT count(*) FROM peers WHERE server_id = $1`, srv.ID).Scan(&onServer); err != nil {
		t.Fatal(err)
	}
	if issued != 5 || onServer != 5 {
		t.Fatalf("%d trials issued, %d peers on a server of capacity 5; want 5 and 5", issued, onServer)
	}
	if locs, _ := s.Service.Locations(ctx); locs[len(locs)-1].Name != "Vilnius" || locs[len(locs)-1].Up {
		t.Errorf("a full location shown as up: %+v", locs)
	}
	// Churn, then the counts must equal the peers.
	u := registerUser(t, s, 7400)
	if _, err := s.Service.SetLocation(ctx, u, ids["fra1"]); err != nil {
		t.Fatal(err)
	}
	d, err := s.Service.IssueTrial(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Service.MoveDevice(ctx, u, d.Peer.ID, ids["ams1"]); err != nil {
		t.Fatal(err)
	}
	if err := s.Service.RemoveDevice(ctx, u, d.Peer.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Service.Revoke(ctx, holder); err != nil {
		t.Fatal(err)
	}
	var wrong int
	if err := s.Pool.QueryRow(ctx, `SELECT count(*) FROM servers sv LEFT JOIN server_load l ON l.server_id = sv.id
		WHERE coalesce(l.peers_held, 0) <> (SELECT count(*) FROM peers p WHERE p.server_id = sv.id AND p.status <> 'revoked')`).Scan(&wrong); err != nil {
		t.Fatal(err)
	}
	if wrong != 0 {
		t.Errorf("%d servers whose held count differs from their peers", wrong)
	}
}
