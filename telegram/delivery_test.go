package telegram

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"wgbot"
	"wgbot/jobs"
	"wgbot/postgres/pgtest"
	"wgbot/reconcile"
	"wgbot/service"
	"wgbot/service/servicetest"
	"wgbot/telegram/tgtest"
	"wgbot/wireguard/wgconf"
)

// deliveryJobsDone reports whether every device_issued job has finished:
// after it nothing more will be sent.
func deliveryJobsDone(ctx context.Context, pool *pgxpool.Pool) bool {
	var left int
	err := pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE kind = 'device_issued' AND state NOT IN ('completed', 'cancelled', 'discarded')`).Scan(&left)
	return err == nil && left == 0
}

func (h *harness) waitDeliveryJobs() {
	h.t.Helper()
	h.eventually("every device_issued job done", func() bool { return deliveryJobsDone(h.ctx, h.pool) })
}

// TestIssuedDeviceDeliveredOnce: with the issuing request and the
// device_issued job both running, the user gets exactly one config for a
// trial and for an added device; when the request's own send fails, the
// job sends it, once.
func TestIssuedDeviceDeliveredOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{applyWait: 500 * time.Millisecond})
	u := user(2401, "en")
	h.tg.SendText(u, "/start")
	h.waitMessages(u.ID, 1)
	h.press(u, "trial")
	h.wait("trial config", func() bool { return len(byMethod(h.messages(u.ID), "sendDocument")) == 1 })
	h.waitDeliveryJobs()
	time.Sleep(500 * time.Millisecond) // room for a second config, if one were coming
	if docs := byMethod(h.messages(u.ID), "sendDocument"); len(docs) != 1 {
		t.Fatalf("trial: %d configs, want 1:\n%s", len(docs), dump(h.messages(u.ID)))
	}
	trialDoc := byMethod(h.messages(u.ID), "sendDocument")[0]
	checkConfig(t, h, u.ID, trialDoc.Document.Data)

	// A paid user adds a device; every attempt of the request's send fails
	// (Telegram down for a moment), so the job delivers it.
	v := user(2402, "en")
	h.tg.SendText(v, "/start")
	h.waitMessages(v.ID, 1)
	registered, err := h.svc.UserByTelegramID(h.ctx, v.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.svc.Grant(h.ctx, registered, 30, 3); err != nil {
		t.Fatal(err)
	}
	h.wait("granted config", func() bool { return len(byMethod(h.messages(v.ID), "sendDocument")) == 1 })
	h.waitDeliveryJobs()
	h.press(v, "sub")
	for range 4 { // the sender's attempts
		h.tg.FailNext("sendDocument", v.ID, http.StatusInternalServerError, 0)
	}
	h.press(v, "dev:add")
	h.wait("added device's config", func() bool { return len(byMethod(h.messages(v.ID), "sendDocument")) == 2 })
	h.waitDeliveryJobs()
	time.Sleep(500 * time.Millisecond)
	docs := byMethod(h.messages(v.ID), "sendDocument")
	if len(docs) != 2 {
		t.Fatalf("grant and added device: %d configs, want 2:\n%s", len(docs), dump(h.messages(v.ID)))
	}
	for _, d := range docs {
		checkConfig(t, h, v.ID, d.Document.Data)
	}
	if bytes.Equal(docs[0].Document.Data, docs[1].Document.Data) {
		t.Error("the added device came with the first device's config")
	}
	var undelivered int
	h.queryRow(`SELECT count(*) FROM peers WHERE delivered_at IS NULL`, nil, &undelivered)
	if undelivered != 0 {
		t.Errorf("%d devices not recorded as delivered", undelivered)
	}
}

// TestTrialPressWhileLive: pressing Trial while the trial is live sends
// the device's config and QR code again, never "choose a plan"; so does a
// paid subscription. Presses right after a delivery do not flood the chat.
// After the trial ended, the refusal leads to the plans.
func TestTrialPressWhileLive(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	u := user(2501, "en")
	h.tg.SendText(u, "/start")
	h.waitMessages(u.ID, 1)
	h.press(u, "trial")
	h.wait("trial config", func() bool { return len(byMethod(h.messages(u.ID), "sendDocument")) == 1 })
	first := byMethod(h.messages(u.ID), "sendDocument")[0].Document.Data

	// A press at once: the config is right above; one short answer.
	h.idle()
	before := len(h.messages(u.ID))
	h.press(u, "trial")
	h.waitMessages(u.ID, before+1)
	h.idle()
	if docs := byMethod(h.messages(u.ID), "sendDocument"); len(docs) != 1 {
		t.Fatalf("a press right after the delivery sent %d configs:\n%s", len(docs), dump(h.messages(u.ID)))
	}

	// Later (the user lost the message): the config again, with its QR.
	h.backdateDeliveries()
	before = len(h.messages(u.ID))
	h.press(u, "trial")
	msgs := h.waitMessages(u.ID, before+3)[before:]
	if msgs[0].Method != "sendDocument" || !bytes.Equal(msgs[0].Document.Data, first) {
		t.Fatalf("trial pressed while live:\n%s", dump(msgs))
	}
	if msgs[1].Method != "sendPhoto" || decodeQR(t, msgs[1].Photo.Data) != string(first) {
		t.Error("the re-sent config's QR code does not hold the config")
	}
	if want := text(langEN, mTrialIssued, ""); !strings.HasPrefix(msgs[2].Text, strings.TrimSuffix(want, ".")) {
		t.Errorf("re-sent config came with %q", msgs[2].Text)
	}
	// Paid access: the same.
	registered, err := h.svc.UserByTelegramID(h.ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.svc.Grant(h.ctx, registered, 30, 3); err != nil {
		t.Fatal(err)
	}
	h.backdateDeliveries()
	before = len(h.messages(u.ID))
	h.press(u, "trial")
	msgs = h.waitMessages(u.ID, before+3)[before:]
	if msgs[0].Method != "sendDocument" || !bytes.Equal(msgs[0].Document.Data, first) {
		t.Fatalf("trial pressed with a paid subscription:\n%s", dump(msgs))
	}
	for _, m := range byMethod(h.messages(u.ID), "sendMessage") {
		if m.Text == text(langEN, mErrTrialUsed) {
			t.Fatalf("a user with live access was told to choose a plan:\n%s", dump(h.messages(u.ID)))
		}
	}

	// A paid user who never had a trial: the same.
	v := user(2502, "en")
	h.tg.SendText(v, "/start")
	h.waitMessages(v.ID, 1)
	paid, err := h.svc.UserByTelegramID(h.ctx, v.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.svc.Grant(h.ctx, paid, 30, 3); err != nil {
		t.Fatal(err)
	}
	h.waitMessages(v.ID, 4) // the menu, then the job's config, QR code and steps
	granted := byMethod(h.messages(v.ID), "sendDocument")[0].Document.Data
	h.backdateDeliveries()
	before = len(h.messages(v.ID))
	h.press(v, "trial")
	msgs = h.waitMessages(v.ID, before+3)[before:]
	if msgs[0].Method != "sendDocument" || !bytes.Equal(msgs[0].Document.Data, granted) {
		t.Fatalf("trial pressed by a paid user:\n%s", dump(msgs))
	}

	// Access over: the trial is used, and the way on is to buy.
	h.mustExec(`UPDATE subscriptions SET status = 'expired'`)
	before = len(h.messages(u.ID))
	h.press(u, "trial")
	if got := h.waitMessages(u.ID, before+1)[before]; got.Text != text(langEN, mErrTrialUsed) {
		t.Errorf("trial pressed after access ended answered %q", got.Text)
	}
}

func (h *harness) mustExec(sql string, args ...any) {
	h.t.Helper()
	if _, err := h.pool.Exec(h.ctx, sql, args...); err != nil {
		h.t.Fatalf("%s: %v", sql, err)
	}
}

// The crash test's child: one `wgbot serve`-like process (the bot long
// polling the parent's emulator, a file-only reconciler, and the job queue
// unless CHILD_JOBS is empty), until SIGTERM or SIGKILL. CHILD_HANG=apply
// makes every request hang once WireGuard has its change: killed then, the
// process dies between the commit and the send.
const childEnv = "WGBOT_TELEGRAM_CHILD"

func runChild() int {
	if err := child(); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	return 0
}

func child() error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	var rec *reconcile.Reconciler
	stack, err := servicetest.Build(ctx, os.Getenv("CHILD_DB"), servicetest.Options{
		Jobs: true, Key: bytes.Repeat([]byte{5}, 32), Log: log,
		NewApply: func(s *servicetest.Stack) (service.Provisioner, error) {
			var err error
			rec, err = reconcile.New(s.Store, s.Keys, nil, reconcile.Config{ServerID: s.Server.ID, Mode: reconcile.ModeFile,
				File: wgconf.Config{Path: os.Getenv("CHILD_CONF")}, ResyncInterval: time.Second}, nil, log)
			if err != nil || os.Getenv("CHILD_HANG") != "apply" {
				return rec, err
			}
			return hangAfterApply{rec}, nil
		},
		Config: service.Config{Keepalive: 25, ApplyWait: 5 * time.Second, DeliveryLease: 2 * time.Second},
	})
	if err != nil {
		return err
	}
	defer stack.Pool.Close()
	pool, svc := stack.Pool, stack.Service
	bot, err := New(svc, Config{Token: testToken, APIURL: os.Getenv("CHILD_TG"), PollTimeout: time.Second,
		RetryBackoff: 50 * time.Millisecond, GlobalRate: 500, ShutdownTimeout: 5 * time.Second}, nil, log)
	if err != nil {
		return err
	}
	jobClient, err := jobs.New(pool, jobs.Config{ExpireEvery: time.Hour, SweepEvery: time.Hour},
		jobs.Deps{Service: svc, Notifier: bot, Devices: bot, Log: log})
	if err != nil {
		return err
	}
	go rec.Run(ctx)
	if os.Getenv("CHILD_JOBS") != "" {
		if err := jobClient.Start(context.WithoutCancel(ctx)); err != nil {
			return err
		}
		defer func() {
			stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			jobClient.Stop(stopCtx)
		}()
	}
	return bot.Run(ctx)
}

// hangAfterApply is a provisioner that never returns once the change is
// applied: the request is stuck after its commit, before its send.
type hangAfterApply struct{ rec *reconcile.Reconciler }

func (h hangAfterApply) Apply(ctx context.Context, ch wgbot.Change) error {
	if err := h.rec.Apply(ctx, ch); err != nil {
		return err
	}
	select {}
}

// TestDeliveryAfterCrash: 50 users press Trial; the process is killed
// (SIGKILL) after every trial is committed and applied but before any
// config reached Telegram, either before the send or while the sends hang.
// After a restart every user receives exactly one config, whose key is the
// user's peer in wg0.conf, without doing anything.
func TestDeliveryAfterCrash(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		hangApply bool // else the sends hang in Telegram
	}{
		{"killed before the send", true},
		{"killed during the send", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			url := pgtest.URL(t)
			pool, err := pgxpool.New(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			defer pool.Close()
			conf := filepath.Join(t.TempDir(), "wg0.conf")
			priv, _ := wgtypes.GeneratePrivateKey()
			if err := os.WriteFile(conf, []byte("[Interface]\nAddress = 10.66.0.1/22\nListenPort = 51820\nPrivateKey = "+priv.String()+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			tg, err := tgtest.NewHandler(testToken)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(tg.Close)
			// While hold is on, sendDocument never answers: the config does
			// not reach Telegram until the sender gives up or dies.
			var hold atomic.Bool
			var held atomic.Int32
			release := make(chan struct{})
			api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if hold.Load() && strings.HasSuffix(r.URL.Path, "/sendDocument") {
					held.Add(1)
					// Read to the end, so the server notices the client
					// going away and ends the request's context.
					_, _ = io.Copy(io.Discard, r.Body)
					select {
					case <-r.Context().Done():
					case <-release:
					}
					return
				}
				tg.ServeHTTP(w, r)
			}))
			t.Cleanup(api.Close) // after the children are killed: they hold connections
			t.Cleanup(func() { close(release) })
			env := []string{"CHILD_DB=" + url, "CHILD_TG=" + api.URL, "CHILD_CONF=" + conf}
			count := func(sql string) int {
				var n int
				if err := pool.QueryRow(ctx, sql).Scan(&n); err != nil {
					t.Fatalf("%s: %v", sql, err)
				}
				return n
			}
			waitFor := func(what string, cond func() bool) {
				t.Helper()
				for !cond() {
					if ctx.Err() != nil {
						t.Fatalf("waiting for %s: %v", what, ctx.Err())
					}
					time.Sleep(50 * time.Millisecond)
				}
			}

			// The first process: no job worker gets to run before it dies.
			hang := ""
			if tc.hangApply {
				hang = "apply"
			}
			hold.Store(!tc.hangApply)
			first := startChild(t, append(env, "CHILD_HANG="+hang)...)
			const n = 50
			users := make([]tgtest.User, n)
			for i := range users {
				users[i] = user(int64(3000+i), "en")
				tg.SendText(users[i], "/start")
			}
			menus := map[int64]int{}
			for _, u := range users {
				msgs, err := tg.WaitMessages(ctx, u.ID, 1)
				if err != nil {
					t.Fatalf("menu for %d: %v", u.ID, err)
				}
				menus[u.ID] = msgs[0].ID
			}
			var wg sync.WaitGroup
			for _, u := range users {
				wg.Go(func() {
					if _, err := tg.PressButton(u, menus[u.ID], "trial"); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			if tc.hangApply {
				waitFor("50 trials committed and in wg0.conf", func() bool {
					f, err := wgconf.Parse(mustReadFile(t, conf))
					return err == nil && len(f.ManagedPeers()) == n
				})
			} else {
				waitFor("50 trials committed and their sends under way", func() bool {
					return count(`SELECT count(*) FROM peers WHERE delivery_claimed_until IS NOT NULL`) == n && held.Load() > 0
				})
			}
			first.Process.Kill()
			first.Wait()
			for _, u := range users {
				if docs := byMethod(tg.Messages(u.ID), "sendDocument"); len(docs) != 0 {
					t.Fatalf("user %d got a config before the kill", u.ID)
				}
			}
			if c := count(`SELECT count(*) FROM peers WHERE status = 'active' AND delivered_at IS NULL`); c != n {
				t.Fatalf("%d undelivered active peers after the kill, want %d", c, n)
			}

			// The restart: nobody presses anything.
			hold.Store(false)
			second := startChild(t, append(env, "CHILD_JOBS=1")...)
			waitFor("every user's config", func() bool {
				for _, u := range users {
					if len(byMethod(tg.Messages(u.ID), "sendDocument")) == 0 {
						return false
					}
				}
				return true
			})
			waitFor("every delivery job done", func() bool { return deliveryJobsDone(ctx, pool) })
			time.Sleep(time.Second) // room for a second config, if one were coming
			second.Process.Signal(syscall.SIGTERM)
			if err := second.Wait(); err != nil {
				t.Errorf("second process: %v", err)
			}

			f, err := wgconf.Parse(mustReadFile(t, conf))
			if err != nil {
				t.Fatal(err)
			}
			inConf := map[string]bool{}
			for _, p := range f.ManagedPeers() {
				inConf[p.PublicKey] = true
			}
			for _, u := range users {
				docs := byMethod(tg.Messages(u.ID), "sendDocument")
				if len(docs) != 1 {
					t.Errorf("user %d got %d configs after the restart, want 1", u.ID, len(docs))
					continue
				}
				cf, err := wgconf.Parse(docs[0].Document.Data)
				if err != nil {
					t.Fatalf("config of %d: %v", u.ID, err)
				}
				iface, _ := cf.Interface()
				key, err := wgtypes.ParseKey(iface.PrivateKey)
				if err != nil {
					t.Fatalf("config of %d: %v", u.ID, err)
				}
				pub := key.PublicKey().String()
				var owner int64
				if err := pool.QueryRow(ctx, `SELECT u.telegram_id FROM peers p JOIN subscriptions s ON s.id = p.subscription_id
					JOIN users u ON u.id = s.user_id WHERE p.public_key = $1 AND p.status = 'active'`, pub).Scan(&owner); err != nil || owner != u.ID {
					t.Errorf("user %d got the config of peer %s, owned by %d (%v)", u.ID, pub, owner, err)
				}
				if !inConf[pub] {
					t.Errorf("user %d's config key %s is not in wg0.conf", u.ID, pub)
				}
			}
		})
	}
}

// startChild starts a child process of this test binary; it is killed at
// the end of the test if still running, and its output shown on failure.
func startChild(t *testing.T, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), childEnv+"=1"), env...)
	var out logBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		if t.Failed() {
			t.Logf("child %d:\n%s", cmd.Process.Pid, tail(out.String(), 8000))
		}
	})
	return cmd
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

func mustReadFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// backdateDeliveries makes every config look sent a minute ago, past the
// pause in which a press does not send it again. It waits first for each
// sender to record its delivery: the message arrives before the sender
// writes that it was sent, and a late write would undo the backdating.
func (h *harness) backdateDeliveries() {
	h.t.Helper()
	h.eventually("every delivery recorded", func() bool {
		var pending int
		h.queryRow(`SELECT count(*) FROM peers WHERE status = 'active'
			AND (delivered_at IS NULL OR delivery_claimed_until IS NOT NULL)`, nil, &pending)
		return pending == 0
	})
	h.mustExec(`UPDATE peers SET delivered_at = now() - interval '1 minute'`)
}
