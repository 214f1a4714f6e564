package telegram

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"

	"wgbot"
	"wgbot/jobs"
	"wgbot/postgres"
	"wgbot/postgres/pgtest"
	"wgbot/service"
	"wgbot/service/servicetest"
	"wgbot/telegram/tgtest"
)

// noDatabase runs the package without PostgreSQL: the tests on fakeService
// and the pure ones pass, and any test that asks pgtest for a database
// fails (it never skips). go test ./telegram -args -nodb
var noDatabase = flag.Bool("nodb", false, "run without PostgreSQL; tests that need it fail")

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	flag.Parse()
	if *noDatabase {
		os.Exit(m.Run())
	}
	pgtest.Main(m)
}

const (
	testToken = "4242:wgbot-test-token"
	adminID   = int64(9000)
)

// harness is one bot on a fresh database (or, with fake, on fakeService
// and no database), talking to its own emulator, long-polling or
// (webhook) behind a loopback HTTP server.
type harness struct {
	t     *testing.T
	ctx   context.Context
	tg    *tgtest.Server
	bot   *Bot
	svc   *service.Service // nil with fake
	store *postgres.Store  // nil with fake
	pool  *pgxpool.Pool    // nil with fake
	fake  *fakeService     // set with fake
	logs  *logBuffer
	hook  *httptest.Server // webhook mode only
	// rewrite, when set, edits each webhook body before the bot sees it:
	// a man in the middle forging what a client sent.
	rewrite atomic.Pointer[func([]byte) []byte]

	stop    context.CancelFunc
	stopped chan error
}

type harnessOptions struct {
	// fake runs the bot on fakeService, without PostgreSQL or the job
	// queue: for menus, texts and callbacks that touch no money or peers.
	fake      bool
	webhook   bool
	apply     service.Provisioner
	applyWait time.Duration // default 5s
	checkouts []Checkout
	config    func(*Config)
	gateClock func() time.Time // the user gate's clock; default time.Now
	// renewalGrace is the store's RenewalGrace; 0: renewals always restore.
	renewalGrace time.Duration
	clock        func() time.Time // the service's clock; default time.Now
	referral     wgbot.ReferralBonus
	// locations spreads devices over servers with nodes, as serve does in
	// node mode; the test adds the servers.
	locations bool
	plans     []wgbot.Plan // nil: service.DefaultPlans
}

func newHarness(t *testing.T, o harnessOptions) *harness {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	h := &harness{t: t, ctx: ctx, logs: &logBuffer{}, stopped: make(chan error, 1)}
	h.tg = tgtest.New(testToken)
	t.Cleanup(h.tg.Close)

	log := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if o.applyWait == 0 {
		o.applyWait = 5 * time.Second
	}
	cfg := Config{
		Token: testToken, APIURL: h.tg.URL(), AdminIDs: []int64{adminID}, SupportContact: "@wgbot_support",
		PollTimeout: 5 * time.Second, RetryBackoff: 50 * time.Millisecond, ShutdownTimeout: 10 * time.Second,
		// Tests press faster than people; the limit's own tests set it.
		UserBurst: 1000,
	}
	var svc Service
	if o.fake {
		h.fake = newFakeService()
		svc = h.fake
	} else {
		stack := servicetest.New(t, servicetest.Options{
			Jobs: true, Key: bytes.Repeat([]byte{5}, 32), Apply: o.apply, Log: log,
			Store: postgres.Options{RenewalGrace: o.renewalGrace, Referral: o.referral}, Now: o.clock,
			Config: service.Config{Keepalive: 25, ApplyWait: o.applyWait, PickServers: o.locations, NodeDownAfter: 30 * time.Second,
				Plans: o.plans},
		})
		h.pool, h.store, h.svc = stack.Pool, stack.Store, stack.Service
		svc, cfg.Broadcasts = stack.Service, stack.Store
	}
	if o.webhook {
		h.hook = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if f := h.rewrite.Load(); f != nil && r.Body != nil {
				body, _ := io.ReadAll(r.Body)
				r.Body = io.NopCloser(bytes.NewReader((*f)(body)))
			}
			h.bot.WebhookHandler().ServeHTTP(w, r)
		}))
		t.Cleanup(h.hook.Close)
		cfg.WebhookURL = h.hook.URL + "/telegram/webhook"
	}
	if o.config != nil {
		o.config(&cfg)
	}
	var err error
	h.bot, err = New(svc, cfg, o.checkouts, log)
	if err != nil {
		t.Fatal(err)
	}
	if o.gateClock != nil {
		h.bot.now = o.gateClock // before Run: nothing reads it yet
	}
	if !o.fake {
		h.startJobs(log)
	}
	h.start()
	if o.webhook {
		h.wait("setWebhook", func() bool { url, _ := h.tg.Webhook(); return url != "" })
	}
	t.Cleanup(func() {
		h.shutdown()
		if t.Failed() {
			t.Logf("bot log:\n%s", h.logs.String())
		}
	})
	return h
}

// startJobs works the job queue as in serve: payment notices and pending
// configs come from it, through the bot.
func (h *harness) startJobs(log *slog.Logger) {
	h.t.Helper()
	jobClient, err := jobs.New(h.pool, jobs.Config{ExpireEvery: time.Hour, SweepEvery: time.Hour},
		jobs.Deps{Service: h.svc, Notifier: h.bot, Devices: h.bot, Log: log, Broadcasts: h.store, Broadcaster: h.bot})
	if err != nil {
		h.t.Fatal(err)
	}
	if err := jobClient.Start(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() {
		stop, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		jobClient.Stop(stop)
	})
}

// start runs the bot until shutdown.
func (h *harness) start() {
	runCtx, stop := context.WithCancel(context.Background())
	h.stop = stop
	go func() { h.stopped <- h.bot.Run(runCtx) }()
}

// shutdown stops Run and checks it returns cleanly.
func (h *harness) shutdown() {
	if h.stop == nil {
		return
	}
	h.stop()
	h.stop = nil
	select {
	case err := <-h.stopped:
		if err != nil {
			h.t.Errorf("Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		h.t.Error("Run did not return after its context ended")
	}
}

func user(id int64, lang string) tgtest.User {
	return tgtest.User{ID: id, FirstName: fmt.Sprintf("User%d", id), Username: fmt.Sprintf("user%d", id), LanguageCode: lang}
}

// wait waits until cond, which must depend only on the emulator's state,
// holds.
func (h *harness) wait(what string, cond func() bool) {
	h.t.Helper()
	if err := h.tg.Wait(h.ctx, cond); err != nil {
		h.t.Fatalf("waiting for %s: %v", what, err)
	}
}

// eventually polls cond, for state outside the emulator (the database).
func (h *harness) eventually(what string, cond func() bool) {
	h.t.Helper()
	for !cond() {
		if h.ctx.Err() != nil {
			h.t.Fatalf("waiting for %s: %v", what, h.ctx.Err())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// idle waits until the emulator has no pending update and no handler is
// running, stable over a few checks.
func (h *harness) idle() {
	h.t.Helper()
	stable := 0
	deadline := time.Now().Add(30 * time.Second)
	for stable < 10 {
		if time.Now().After(deadline) {
			h.t.Fatal("the bot did not become idle")
		}
		if h.tg.PendingUpdates() == 0 && h.bot.gate.idle() {
			stable++
		} else {
			stable = 0
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// messages returns the bot's messages to a chat.
func (h *harness) messages(chatID int64) []tgtest.Message { return h.tg.Messages(chatID) }

// message returns the bot's message id in a chat as it looks now.
func (h *harness) message(chatID int64, id int) tgtest.Message {
	h.t.Helper()
	for _, m := range h.messages(chatID) {
		if m.ID == id {
			return m
		}
	}
	h.t.Fatalf("chat %d has no message %d", chatID, id)
	return tgtest.Message{}
}

// waitMessages waits until the chat has at least n messages and returns them.
func (h *harness) waitMessages(chatID int64, n int) []tgtest.Message {
	h.t.Helper()
	msgs, err := h.tg.WaitMessages(h.ctx, chatID, n)
	if err != nil {
		h.t.Fatalf("waiting for %d messages to %d (have %d): %v\n%s", n, chatID, len(h.tg.Messages(chatID)), err, dump(h.tg.Messages(chatID)))
	}
	return msgs
}

// withButton finds the newest message in the chat with a button carrying
// callback data.
func (h *harness) withButton(chatID int64, data string) (tgtest.Message, bool) {
	msgs := h.messages(chatID)
	for i := len(msgs) - 1; i >= 0; i-- {
		for _, row := range msgs[i].Keyboard {
			for _, b := range row {
				if b.CallbackData == data && !msgs[i].Deleted {
					return msgs[i], true
				}
			}
		}
	}
	return tgtest.Message{}, false
}

// press presses the newest button with data and waits for the bot's
// answer to the press.
func (h *harness) press(u tgtest.User, data string) tgtest.CallbackAnswer {
	h.t.Helper()
	id := h.pressNoWait(u, data)
	var ans tgtest.CallbackAnswer
	h.wait("answer to "+data, func() bool {
		var ok bool
		ans, ok = h.tg.CallbackAnswer(id)
		return ok
	})
	return ans
}

func (h *harness) pressNoWait(u tgtest.User, data string) int64 {
	h.t.Helper()
	m, ok := h.withButton(u.ID, data)
	if !ok {
		h.t.Fatalf("no button %q in chat %d:\n%s", data, u.ID, dump(h.messages(u.ID)))
	}
	id, err := h.tg.PressButton(u, m.ID, data)
	if err != nil {
		h.t.Fatal(err)
	}
	return id
}

func dump(msgs []tgtest.Message) string {
	var b strings.Builder
	for _, m := range msgs {
		fmt.Fprintf(&b, "  #%d %s text=%q caption=%q", m.ID, m.Method, m.Text, m.Caption)
		if m.Document != nil {
			fmt.Fprintf(&b, " document=%s", m.Document.Name)
		}
		for _, row := range m.Keyboard {
			for _, btn := range row {
				fmt.Fprintf(&b, " [%s|%s%s]", btn.Text, btn.CallbackData, btn.URL)
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// byMethod keeps the messages sent with method.
func byMethod(msgs []tgtest.Message, method string) []tgtest.Message {
	return slices.DeleteFunc(slices.Clone(msgs), func(m tgtest.Message) bool { return m.Method != method })
}

// text is a catalogue text as users see it.
func text(lang string, key msg, args ...any) string {
	return texts(catalogue()).get(lang, key, args...)
}

// decodeQR reads the text a QR code PNG holds. gozxing's finder-pattern
// detector mislocates a few percent of these symbols (version 13, drawn
// at 512 pixels with modules 6 or 7 pixels wide) and then reads the
// version block from the wrong place. When it fails, the symbol is
// sampled from the PNG's pixels module by module and decoded as a pure
// barcode, which skips detection.
func decodeQR(t *testing.T, data []byte) string {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("QR photo is not a PNG: %v", err)
	}
	if text, err := decodeImage(img); err == nil {
		return text
	}
	b := img.Bounds()
	dark := func(x, y int) bool {
		r, g, bl, _ := img.At(x, y).RGBA()
		return r+g+bl < 3*0x8000
	}
	// The symbol's first dark pixel starts its top-left finder pattern,
	// behind a quiet zone of 4 modules: that tells the module count.
	first := -1
	for x := b.Min.X; x < b.Max.X && first < 0; x++ {
		for y := b.Min.Y; y < b.Max.Y; y++ {
			if dark(x, y) {
				first = x - b.Min.X
				break
			}
		}
	}
	if first <= 0 {
		t.Fatal("QR photo has no dark pixels")
	}
	size := b.Dx()
	estimate := 4 * size / first
	for version := 1; version <= 40; version++ {
		modules := 4*version + 17 + 8 // with the quiet zone
		if modules < estimate-4 || modules > estimate+4 {
			continue
		}
		grid := image.NewGray(image.Rect(0, 0, modules*4, modules*4))
		for my := range modules {
			for mx := range modules {
				c := color.Gray{Y: 255}
				if dark(b.Min.X+(2*mx+1)*size/(2*modules), b.Min.Y+(2*my+1)*size/(2*modules)) {
					c = color.Gray{}
				}
				for d := range 16 {
					grid.SetGray(mx*4+d%4, my*4+d/4, c)
				}
			}
		}
		if text, err := decodeImage(grid, gozxing.DecodeHintType_PURE_BARCODE); err == nil {
			return text
		}
	}
	t.Fatal("the QR code does not decode")
	return ""
}

func decodeImage(img image.Image, hints ...gozxing.DecodeHintType) (string, error) {
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		return "", err
	}
	opts := map[gozxing.DecodeHintType]any{}
	for _, h := range hints {
		opts[h] = true
	}
	res, err := qrcode.NewQRCodeReader().Decode(bmp, opts)
	if err != nil {
		return "", err
	}
	return res.GetText(), nil
}

// logBuffer collects the bot's log for assertions and failure output.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// provisionFunc adapts a function to service.Provisioner.
type provisionFunc func(context.Context, wgbot.Change) error

func (f provisionFunc) Apply(ctx context.Context, ch wgbot.Change) error { return f(ctx, ch) }

var errBoom = errors.New("wireguard device exploded: secret detail 0xdeadbeef")

// query runs one SQL query returning one row.
func (h *harness) queryRow(sql string, args []any, dest ...any) {
	h.t.Helper()
	if err := h.pool.QueryRow(h.ctx, sql, args...).Scan(dest...); err != nil {
		h.t.Fatalf("%s: %v", sql, err)
	}
}
