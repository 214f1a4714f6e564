package main

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"wgbot/postgres"
)

// `peers list` shows each peer's last handshake and traffic this month:
// "never" for one the collection saw that never connected, "-" for one
// no collection has seen.
func TestPeersListShowsTraffic(t *testing.T) {
	w := newOpWorld(t, "")
	ctx := context.Background()
	for _, id := range []string{"4001", "4002", "4003"} {
		w.ok(t, "issue", "--telegram-id", id, "--days", "30")
	}
	busy, idle, unseen := w.peersOf(t, 4001)[0], w.peersOf(t, 4002)[0], w.peersOf(t, 4003)[0]
	var server int64
	if err := w.pool.QueryRow(ctx, `SELECT server_id FROM peers WHERE id = $1`, busy.ID).Scan(&server); err != nil {
		t.Fatal(err)
	}
	store := postgres.NewStore(w.pool, postgres.Options{}, nil)
	hs := time.Now().Add(-2 * time.Minute).UTC().Truncate(time.Second)
	if err := store.RecordUsage(ctx, server, time.Now(), []postgres.PeerSample{
		{PublicKey: busy.PublicKey, Received: 3 << 20, Transmitted: 1 << 19, LastHandshake: hs},
		{PublicKey: idle.PublicKey},
	}); err != nil {
		t.Fatal(err)
	}

	var list []peerView
	w.okJSON(t, &list, "peers", "list")
	byID := map[int64]peerView{}
	for _, p := range list {
		byID[p.ID] = p
	}
	if u := byID[busy.ID].Usage; u == nil || u.Received != 3<<20 || u.Transmitted != 1<<19 || u.LastHandshake == nil || !u.LastHandshake.Equal(hs) {
		t.Errorf("busy peer's usage %+v", u)
	}
	if u := byID[idle.ID].Usage; u == nil || u.LastHandshake != nil || u.Received != 0 {
		t.Errorf("idle peer's usage %+v, want collected, never connected", u)
	}
	if u := byID[unseen.ID].Usage; u != nil {
		t.Errorf("unseen peer's usage %+v, want none", u)
	}

	text := w.ok(t, "peers", "list").stdout
	for _, want := range []struct {
		key  string
		last []string // the line's last fields
	}{
		{busy.PublicKey, append(strings.Fields(hs.Format("2006-01-02 15:04")), "3.50", "MiB")},
		{idle.PublicKey, []string{"never", "0", "B"}},
		{unseen.PublicKey, []string{"-", "-"}},
	} {
		fields := strings.Fields(lineWith(text, want.key))
		if len(fields) < len(want.last) || !slices.Equal(fields[len(fields)-len(want.last):], want.last) {
			t.Errorf("peers list line for %s does not end in %q:\n%s", want.key, want.last, text)
		}
	}
	if !strings.Contains(text, "LAST HANDSHAKE (UTC)") || !strings.Contains(text, "TRAFFIC THIS MONTH") {
		t.Errorf("peers list header:\n%s", text)
	}
}

func lineWith(text, s string) string {
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}
