package telegram

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"wgbot/postgres/pgtest"
	"wgbot/telegram/tgtest"
)

// TestGiftLinkAfterCrash: a gift's payment is credited and the process is
// killed (SIGKILL) before the buyer got the link, its send hanging in
// Telegram. The link was queued with the credit (gift_ready), so after a
// restart the buyer gets it exactly once, without doing anything.
func TestGiftLinkAfterCrash(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	url := pgtest.URL(t)
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	conf := filepath.Join(t.TempDir(), "wg0.conf")
	priv, _ := wgtypes.GeneratePrivateKey()
	if err := os.WriteFile(conf, []byte("[Interface]\nAddress = 10.67.0.1/22\nListenPort = 51820\nPrivateKey = "+priv.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tg, err := tgtest.NewHandler(testToken)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tg.Close)
	// While hold is on, a message carrying a gift link never gets its
	// answer: the send is under way when the process dies.
	var hold atomic.Bool
	release := make(chan struct{})
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hold.Load() && strings.HasSuffix(r.URL.Path, "/sendMessage") {
			body, _ := io.ReadAll(r.Body)
			if strings.Contains(string(body), "start=gift_") {
				select {
				case <-r.Context().Done():
				case <-release:
				}
				return
			}
			r.Body = io.NopCloser(strings.NewReader(string(body)))
		}
		tg.ServeHTTP(w, r)
	}))
	t.Cleanup(api.Close)
	t.Cleanup(func() { close(release) })
	env := []string{"CHILD_DB=" + url, "CHILD_TG=" + api.URL, "CHILD_CONF=" + conf}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for !cond() {
			if ctx.Err() != nil {
				t.Fatalf("waiting for %s: %v", what, ctx.Err())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	count := func(sql string) int {
		var n int
		if err := pool.QueryRow(ctx, sql).Scan(&n); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return n
	}
	links := func(u tgtest.User) int {
		n := 0
		for _, m := range tg.Messages(u.ID) {
			if strings.Contains(m.Text, "?start=gift_") {
				n++
			}
		}
		return n
	}

	// The first process credits the gift and dies before the link is out.
	hold.Store(true)
	first := startChild(t, env...)
	buyer := user(3901, "en")
	tg.SendText(buyer, "/start")
	press := func(data string) {
		t.Helper()
		var id int
		waitFor("button "+data, func() bool {
			msgs := tg.Messages(buyer.ID)
			for i := len(msgs) - 1; i >= 0; i-- {
				for _, row := range msgs[i].Keyboard {
					for _, b := range row {
						if b.CallbackData == data {
							id = msgs[i].ID
							return true
						}
					}
				}
			}
			return false
		})
		if _, err := tg.PressButton(buyer, id, data); err != nil {
			t.Fatal(err)
		}
	}
	press("buy")
	press("buy:plan:month")
	press("buy:gift:month")
	var payload string
	waitFor("the gift's invoice", func() bool {
		for _, m := range tg.Messages(buyer.ID) {
			if m.Invoice != nil {
				payload = m.Invoice.Payload
				return true
			}
		}
		return false
	})
	pc := tg.PreCheckout(buyer, "XTR", 150, payload)
	waitFor("pre-checkout answer", func() bool { _, done := tg.PreCheckoutAnswer(pc); return done })
	tg.SuccessfulPayment(buyer, "XTR", 150, payload, "stxGIFT-CRASH")
	waitFor("the gift credited", func() bool { return count(`SELECT count(*) FROM gifts`) == 1 })
	// Long enough for a send straight after the credit to be under way.
	time.Sleep(time.Second)
	first.Process.Kill()
	first.Wait()
	if n := links(buyer); n != 0 {
		t.Fatalf("the buyer got %d links before the kill", n)
	}

	// The restart: the buyer does nothing.
	hold.Store(false)
	second := startChild(t, append(env, "CHILD_JOBS=1")...)
	waitFor("the gift's link", func() bool { return links(buyer) > 0 })
	waitFor("the gift_ready job done", func() bool {
		return count(`SELECT count(*) FROM river_job WHERE kind = 'gift_ready' AND state = 'completed'`) == 1
	})
	time.Sleep(time.Second) // room for a second link, if one were coming
	second.Process.Signal(syscall.SIGTERM)
	if err := second.Wait(); err != nil {
		t.Errorf("second process: %v", err)
	}
	if n := links(buyer); n != 1 {
		t.Fatalf("the buyer got %d links after the restart, want 1:\n%s", n, dump(tg.Messages(buyer.ID)))
	}
	if n := count(`SELECT count(*) FROM river_job WHERE kind = 'gift_ready'`); n != 1 {
		t.Fatalf("%d gift_ready jobs for one gift", n)
	}
}
