package jobs_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"wgbot"
	"wgbot/postgres"
)

// OutageCredited records an outage message as "outage", with its minutes
// in days.
func (r recorder) OutageCredited(ctx context.Context, u wgbot.User, s wgbot.Subscription, location string, minutes int) error {
	return r.record(ctx, "outage", u, s, minutes)
}

// A server's node is back after two hours away, with two serve-like
// processes working the job queue: every user with a device there is told
// once, with the credit, and the credit is given once.
func TestOutageMessagesOnceAcrossTwoProcesses(t *testing.T) {
	ctx := context.Background()
	url, pool := setupDB(t)
	conf := filepath.Join(t.TempDir(), "wg0.conf")
	priv, _ := wgtypes.GeneratePrivateKey()
	os.WriteFile(conf, []byte("[Interface]\nAddress = 10.40.0.1/20\nListenPort = 51820\nPrivateKey = "+priv.String()+"\n"), 0o600)
	setup, err := newNode(ctx, url, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer setup.pool.Close()
	const users = 40
	for i := range users {
		u, err := setup.svc.Register(ctx, wgbot.User{TelegramID: int64(20_000 + i)}, "")
		if err == nil {
			_, _, err = setup.svc.Grant(ctx, u, 30, 1)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pool.Exec(ctx, `UPDATE peers SET created_at = now() - interval '3 hours'`); err != nil {
		t.Fatal(err)
	}
	srv, err := setup.store.ServerByName(ctx, "main")
	if err != nil {
		t.Fatal(err)
	}
	for _, boot := range []string{"before", "after"} {
		if err := setup.store.ReportNode(ctx, srv.ID, postgres.NodeReport{Boot: boot}); err != nil {
			t.Fatal(err)
		}
		if boot == "before" {
			if _, err := pool.Exec(ctx, `UPDATE node_status SET seen_at = now() - interval '2 hours'`); err != nil {
				t.Fatal(err)
			}
		}
	}
	children := startChildren(t, 2, "CHILD_DB="+url, "CHILD_CONF="+conf, "CHILD_CLOCK_OFFSET=0s")
	waitFor(t, 60*time.Second, "the outage messages", func() bool {
		return count(t, pool, `SELECT count(*) FROM test_notices WHERE kind = 'outage'`) >= users
	})
	time.Sleep(3 * time.Second) // room for a duplicate to show up, if there were one
	stopChildren(t, children)
	if n := count(t, pool, `SELECT count(*) FROM test_notices WHERE kind = 'outage'`); n != users {
		t.Errorf("%d outage messages, want %d", n, users)
	}
	// Two hours and the moments between the two reports, rounded up.
	var credit time.Duration
	if err := pool.QueryRow(ctx, `SELECT credit FROM server_outages`).Scan(&credit); err != nil || credit != 121*time.Minute {
		t.Fatalf("the outage's credit: %v %v, want 2h1m0s", credit, err)
	}
	if n := count(t, pool, `SELECT count(DISTINCT telegram_id) FROM test_notices WHERE kind = 'outage' AND days = 121`); n != users {
		t.Errorf("outage messages of 121 minutes reached %d users, want %d", n, users)
	}
	if n := count(t, pool, `SELECT count(*) FROM payments WHERE kind = 'outage'`); n != users {
		t.Errorf("%d outage ledger rows, want %d", n, users)
	}
	if n := count(t, pool, `SELECT count(*) FROM test_notices n JOIN subscriptions s ON s.id = n.subscription_id
		WHERE n.kind = 'outage' AND n.expires_at = s.expires_at AND s.expires_at - s.starts_at = interval '30 days 2 hours 1 minute'`); n != users {
		t.Errorf("%d messages name a subscription 30 days, 2 hours and a minute long, want %d", n, users)
	}
}
