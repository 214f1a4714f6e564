package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5"

	"wgbot/postgres/pgtest"
	sbx "wgbot/sandbox"
	"wgbot/wireguard/wgconf"
)

// enterableTempDir is a fresh directory that other users may pass through:
// as root the sandbox's PostgreSQL runs as an unprivileged user, and the
// test's temporary directories are created 0700.
func enterableTempDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for p := dir; p != filepath.Dir(os.TempDir()) && p != "/"; p = filepath.Dir(p) {
		if st, err := os.Stat(p); err == nil && st.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(p, st.Mode().Perm()|0o011); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

// clusterPIDs lists the processes of the private cluster in pgDir, found
// by the cluster name in their titles.
func clusterPIDs(t *testing.T, pgDir string) []string {
	t.Helper()
	out, err := exec.Command("pgrep", "-f", sbx.ClusterName(pgDir)).Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 1 {
		return nil
	}
	if err != nil {
		t.Fatalf("pgrep: %v", err)
	}
	return strings.Fields(string(out))
}

// Sandbox mode must never start where it could be production's: next to a
// real bot token, on a public address, or on another machine's database.
func TestSandboxRefusesProductionSettings(t *testing.T) {
	const token = "123456789:AAHk1c2D3e4F5g6H7i8J9k0LmNoPqRsTuVw"
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want []string
	}{
		{"real bot token", map[string]string{"BOT_TOKEN": token}, nil, []string{"BOT_TOKEN", "real token", "wgbot serve"}},
		{"public HTTP_ADDR", map[string]string{"HTTP_ADDR": "0.0.0.0:8080"}, nil, []string{"HTTP_ADDR", "loopback"}},
		{"public --listen", nil, []string{"--listen", "192.0.2.10:8088"}, []string{"--listen", "not a loopback address"}},
		{"every interface", nil, []string{"--listen", ":8088"}, []string{"--listen", "every interface"}},
		{"host name", nil, []string{"--listen", "sandbox.example.com:8088"}, []string{"--listen", "not a loopback address"}},
		{"remote database", map[string]string{"DATABASE_URL": "postgres://wgbot:pw@db.example.com:5432/wgbot"}, nil,
			[]string{"DATABASE_URL", "another machine"}},
		{"all at once", map[string]string{"BOT_TOKEN": token, "HTTP_ADDR": "[2001:db8::1]:443"}, []string{"--listen", "0.0.0.0:1"},
			[]string{"BOT_TOKEN", "HTTP_ADDR", "--listen"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			varDir := filepath.Join(dir, "var")
			var out bytes.Buffer
			cmd := runWgbot(tt.env, append([]string{"sandbox", "--var", varDir}, tt.args...)...)
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != exitConfig {
				t.Fatalf("want exit code %d (invalid settings), got %v\n%s", exitConfig, err, out.String())
			}
			for _, want := range tt.want {
				if !strings.Contains(out.String(), want) {
					t.Errorf("the refusal does not say %q:\n%s", want, out.String())
				}
			}
			if strings.Contains(out.String(), "AAHk1c2D3e4F5g6H7i8J9k0LmNoPqRsTuVw") {
				t.Errorf("the refusal printed the token:\n%s", out.String())
			}
			if _, err := os.Stat(varDir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a refused sandbox created %s: it must refuse before doing anything", varDir)
			}
		})
	}
}

// `make run` with no settings at all: the sandbox reaches its URL, serves
// the page, and a Ctrl-C leaves no process behind.
func TestSandboxFromNothingAndCtrlC(t *testing.T) {
	t.Parallel()
	work := enterableTempDir(t)
	// Nothing but PATH: no DATABASE_URL, no token, no .env (the working
	// directory is empty), the default listen address and var directory.
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = []string{childEnv + "=1", "WGBOT_TEST_ARGS=sandbox", "PATH=" + os.Getenv("PATH")}
	cmd.Dir = work
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	var printed lockedBuffer
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			printed.Write([]byte(sc.Text() + "\n"))
			if u := urlPattern.FindString(sc.Text()); u != "" {
				select {
				case urls <- u:
				default:
				}
			}
		}
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() { cmd.Process.Kill() })
	var url string
	select {
	case url = <-urls:
	case err := <-exited:
		t.Fatalf("sandbox exited before printing its URL: %v\n%s", err, stderr.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("no URL within 60 s\n%s", stderr.String())
	}
	t.Logf("URL %s after %v", url, time.Since(start).Round(time.Millisecond))

	page := httpGet(t, url)
	if !strings.Contains(page, "wgbot sandbox") {
		t.Errorf("the URL does not serve the sandbox page:\n%.300s", page)
	}
	if got := httpGet(t, url+"healthz"); strings.TrimSpace(got) != "ok" {
		t.Errorf("/healthz: %q", got)
	}
	varDir := filepath.Join(work, "var")
	for _, f := range []string{"wg0.conf", "master.key"} {
		if st, err := os.Stat(filepath.Join(varDir, f)); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: want a 0600 file, got %v, %v", f, st, err)
		}
	}
	pgDir := filepath.Join(varDir, "pg")
	if pids := clusterPIDs(t, pgDir); len(pids) == 0 {
		t.Fatal("no process of the private cluster found by its name; the check below would prove nothing")
	}
	postmaster := readPID(t, filepath.Join(pgDir, "data", "postmaster.pid"))

	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("after Ctrl-C the sandbox exited with %v\n%s", err, stderr.String())
		}
	case <-time.After(45 * time.Second):
		t.Fatalf("the sandbox did not stop within 45 s of Ctrl-C\n%s", stderr.String())
	}
	if pids := clusterPIDs(t, pgDir); len(pids) > 0 {
		t.Errorf("processes of the private cluster outlived the sandbox: %v", pids)
	}
	if err := syscall.Kill(postmaster, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("the postmaster (pid %d) outlived the sandbox", postmaster)
	}
	if !strings.Contains(stderr.String(), "creating its PostgreSQL cluster in "+pgDir+" (first run only)") {
		t.Errorf("the first run does not say it is creating the database cluster:\n%s", stderr.String())
	}
	if n := len(urlPattern.FindAllString(printed.String(), -1)); n != 1 {
		t.Errorf("want exactly one URL printed, got %d:\n%s", n, printed.String())
	}
}

var urlPattern = regexp.MustCompile(`http://127\.0\.0\.1:\d+/`)

// lockedBuffer is a bytes.Buffer a child's output can be written to while
// the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s\n%s", url, resp.Status, body)
	}
	return string(body)
}

func readPID(t *testing.T, path string) int {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	if _, err := fmt.Sscan(string(raw), &pid); err != nil || pid <= 0 {
		t.Fatalf("%s: no pid: %q", path, raw)
	}
	return pid
}

// startSandbox runs `wgbot sandbox` in this process with no settings and
// returns its URL and var directory; it is stopped, and must stop cleanly,
// when the test ends.
func startSandbox(t *testing.T) (url, varDir string) {
	t.Helper()
	varDir = filepath.Join(enterableTempDir(t), "var")
	url, stop := launchSandbox(t, varDir, nil)
	t.Cleanup(stop)
	return url, varDir
}

// launchSandbox runs `wgbot sandbox --var varDir` in this process with the
// settings env and returns its URL and a stop function, which must be
// called (more than once is fine) and fails the test unless the sandbox
// stops cleanly.
func launchSandbox(t *testing.T, varDir string, env map[string]string) (url string, stop func()) {
	t.Helper()
	url, stop, _ = launchSandboxOutput(t, varDir, env)
	return url, stop
}

// launchSandboxOutput is launchSandbox that also returns what the sandbox
// wrote on stderr.
func launchSandboxOutput(t *testing.T, varDir string, env map[string]string) (url string, stop func(), stderr *lockedBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	stderr = &lockedBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"wgbot", "--env-file", os.DevNull, "sandbox", "--var", varDir, "--listen", "127.0.0.1:0"},
			func(k string) string { return env[k] }, pw, stderr)
		pw.Close()
	}()
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if u := urlPattern.FindString(sc.Text()); u != "" {
				urls <- u
			}
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("sandbox: %v\n%s", err, stderr.String())
				}
			case <-time.After(45 * time.Second):
				t.Errorf("the sandbox did not stop within 45 s\n%s", stderr.String())
			}
		})
	}
	select {
	case url = <-urls:
		return url, stop, stderr
	case err := <-done:
		cancel()
		t.Fatalf("sandbox exited: %v\n%s", err, stderr.String())
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatalf("no URL within 60 s\n%s", stderr.String())
	}
	return "", nil, nil
}

// datePattern is how the bot writes dates.
var datePattern = regexp.MustCompile(`\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC`)

// The acceptance walk-through, in a real browser: /start, the free trial,
// the QR code and the .conf (which must be a peer of the server's
// wg0.conf), then a checkout cancelled on the provider's page, buying the
// plan with the sandbox card after all and seeing the expiry move; a word
// too long for a line; a new user who speaks Russian, her trial and a
// payment in Telegram Stars. Screenshots of each step go to
// $WGBOT_ARTIFACTS (else a temporary directory); with
// WGBOT_UPDATE_SCREENSHOT=1 the trial's also replaces docs/sandbox.png and
// the Russian user's Stars receipt docs/sandbox-ru-stars.png.
func TestSandboxInBrowser(t *testing.T) {
	t.Parallel()
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("Debian's chromium is needed for the browser test: run scripts/install-deps.sh (make deps)")
	}
	url, varDir := startSandbox(t)
	artifacts := os.Getenv("WGBOT_ARTIFACTS")
	if artifacts == "" {
		artifacts = t.TempDir()
	} else if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	downloads := t.TempDir()

	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true), // containers have a small /dev/shm
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1200, 1000),
	)
	defer cancelAlloc()
	browserCtx, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	if err := chromedp.Do(browserCtx); err != nil { // starts the browser with no deadline
		t.Fatalf("start chromium: %v", err)
	}
	ctx, cancel := context.WithTimeout(browserCtx, 150*time.Second)
	defer cancel()

	step := 0
	shot := func(name string) []byte {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		step++
		path := filepath.Join(artifacts, fmt.Sprintf("sandbox-%d-%s.png", step, name))
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot %s", path)
		return png
	}
	// toDocs replaces docs/name with png when asked to.
	toDocs := func(png []byte, name string) {
		t.Helper()
		if os.Getenv("WGBOT_UPDATE_SCREENSHOT") != "1" {
			return
		}
		if err := os.WriteFile(filepath.Join("..", "..", "docs", name), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			shot("failed")
			t.Fatalf("%s: %v", what, err)
		}
	}
	// botText waits for a bot message containing substr and returns its text.
	botText := func(substr string) string {
		t.Helper()
		js := fmt.Sprintf(`[...document.querySelectorAll('.msg.bot')].map(m => m.textContent).find(t => t.includes(%q)) || null`, substr)
		text, err := chromedp.Run(ctx, chromedp.Poll[string](js, chromedp.WithPollingInterval(100*time.Millisecond)))
		if err != nil {
			shot("failed")
			t.Fatalf("no bot message with %q: %v", substr, err)
		}
		return text
	}

	// lastBotText is the text of the open chat's newest bot message.
	lastBotText := func() string {
		t.Helper()
		text, err := chromedp.Run(ctx, chromedp.Poll[string](`[...document.querySelectorAll('.msg.bot')].map(m => m.textContent).pop() || null`,
			chromedp.WithPollingInterval(100*time.Millisecond)))
		if err != nil {
			shot("failed")
			t.Fatalf("no bot message: %v", err)
		}
		return text
	}
	// textOf is the text of the first element matching css.
	textOf := func(css string) string {
		t.Helper()
		text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(css)))
		if err != nil {
			shot("failed")
			t.Fatalf("read %s: %v", css, err)
		}
		return text
	}
	// press clicks the newest button matching css in the open chat, once
	// it is there.
	press := func(css string) {
		t.Helper()
		js := fmt.Sprintf(`(() => { const b = [...document.querySelectorAll(%q)].pop(); if (!b || b.disabled) return false; b.click(); return true; })()`, css)
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingInterval(100*time.Millisecond))); err != nil {
			shot("failed")
			t.Fatalf("no button %s to press: %v", css, err)
		}
	}
	// lastLink waits for the newest link button of the chat, other than
	// old, and returns where it leads.
	lastLink := func(old string) string {
		t.Helper()
		js := fmt.Sprintf(`(() => { const a = [...document.querySelectorAll('a.kb-link')].pop(); return a && a.href !== %q ? a.href : ""; })()`, old)
		href, err := chromedp.Run(ctx, chromedp.Poll[string](js, chromedp.WithPollingInterval(100*time.Millisecond)))
		if err != nil {
			shot("failed")
			t.Fatalf("no new payment link: %v", err)
		}
		return href
	}
	// pressText clicks the newest button of the open chat whose label has
	// label, once it is there.
	pressText := func(label string) {
		t.Helper()
		js := fmt.Sprintf(`(() => { const b = [...document.querySelectorAll('.kb button')].filter(b => b.textContent.includes(%q)).pop();
			if (!b || b.disabled) return false; b.click(); return true; })()`, label)
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingInterval(100*time.Millisecond))); err != nil {
			shot("failed")
			t.Fatalf("no button %q to press: %v", label, err)
		}
	}
	// cancelledNotice waits for the bot's word that the checkout was
	// cancelled, with its Try again button.
	cancelledNotice := func() {
		t.Helper()
		if got := botText("Payment cancelled"); !strings.Contains(got, "nothing was charged") {
			t.Errorf("the cancelled checkout's notice: %q", got)
		}
		do("see Try again", chromedp.WaitVisible(button("Try again")))
	}
	// retry starts a new checkout after the cancelled one, from its notice.
	retry := func() {
		t.Helper()
		pressText("Try again")
		press(`button[data-cb="buy:plan:month"]`)
		pressText("Sandbox card")
	}

	do("open the page and send /start",
		chromedp.Navigate(url),
		chromedp.WaitVisible(chromedp.CSS(`.user.active[data-id="1001"]`)),
		chromedp.SendKeys(chromedp.CSS("#text"), "/start"),
		chromedp.Click(chromedp.CSS("#send")),
		chromedp.WaitVisible(button("Free trial")),
	)
	shot("start")

	do("take the trial",
		chromedp.Click(button("Free trial")),
		chromedp.WaitVisible(chromedp.CSS("a.doc")),
		chromedp.WaitVisible(chromedp.CSS("img.photo")),
	)
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelector('img.photo').naturalWidth > 0`)); err != nil {
		t.Fatalf("the QR code image did not load: %v", err)
	}
	trialUntil := datePattern.FindString(botText("active until"))
	toDocs(shot("trial"), "sandbox.png")

	// Download the .conf the way a person would: a click, through the
	// browser's own download.
	if _, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: downloads, EventsEnabled: ptrTo(true)}); err != nil {
		t.Fatal(err)
	}
	begins := chromedp.BrowserEvents(ctx, browser.DownloadWillBegin)
	progress := chromedp.BrowserEvents(ctx, browser.DownloadProgress)
	do("download the config", chromedp.Click(chromedp.CSS("a.doc")))
	var suggested string
	for ev, err := range begins {
		if err != nil {
			t.Fatal(err)
		}
		suggested = ev.SuggestedFilename
		break
	}
	var guid string
	for ev, err := range progress {
		if err != nil {
			t.Fatal(err)
		}
		if ev.State == browser.DownloadProgressStateCompleted {
			guid = ev.GUID
			break
		}
		if ev.State == browser.DownloadProgressStateCanceled {
			t.Fatal("the browser cancelled the download")
		}
	}
	if !strings.HasSuffix(suggested, ".conf") {
		t.Errorf("the download is named %q, want a .conf file", suggested)
	}
	conf, err := os.ReadFile(filepath.Join(downloads, guid))
	if err != nil {
		t.Fatal(err)
	}
	client, err := wgconf.Parse(conf)
	if err != nil {
		t.Fatalf("the downloaded config does not parse: %v\n%s", err, conf)
	}
	ifc, ok := client.Interface()
	if !ok || len(ifc.Addresses) == 0 || ifc.PrivateKey == "" {
		t.Fatalf("the downloaded config has no [Interface] address and key:\n%s", conf)
	}
	if !managedPeerHas(t, filepath.Join(varDir, "wg0.conf"), ifc.Addresses[0].Addr()) {
		t.Errorf("no managed peer of the server's wg0.conf has the config's address %s", ifc.Addresses[0])
	}

	// A live user extends from the menu: the month plan, the sandbox card.
	do("open the menu", chromedp.SendKeys(chromedp.CSS("#text"), "/start"), chromedp.Click(chromedp.CSS("#send")))
	pressText("Extend")
	press(`button[data-cb="buy:plan:month"]`)
	pressText("Sandbox card")
	do("see the payment link", chromedp.WaitVisible(chromedp.CSS("a.kb-link")))
	shot("pay-link")
	link := lastLink("")

	// A person who changes their mind cancels on the checkout page and is
	// returned to the chat, where the bot says so.
	do("cancel on the checkout page",
		chromedp.Navigate(link),
		chromedp.WaitVisible(chromedp.CSS("#cancel")),
	)
	shot("checkout")
	do("return to the chat after cancelling", chromedp.Click(chromedp.CSS("#cancel")),
		chromedp.WaitVisible(chromedp.CSS(`.user.active[data-id="1001"]`)))
	cancelledNotice()
	shot("cancelled")

	// Then pays for the plan after all: a new checkout, a new link.
	retry()
	link = lastLink(link)
	// The link opens a new tab in a person's browser; the test follows it
	// in the same one. Paying returns to the chat, as YooKassa's page does.
	do("pay on the checkout page",
		chromedp.Navigate(link),
		chromedp.WaitVisible(chromedp.CSS("#pay")),
	)
	do("return to the chat", chromedp.Click(chromedp.CSS("#pay")), chromedp.WaitVisible(chromedp.CSS(`.user.active[data-id="1001"]`)))
	paidUntil := datePattern.FindString(botText("Payment received"))
	shot("paid")
	trial, err1 := time.Parse("2006-01-02 15:04 MST", trialUntil)
	paid, err2 := time.Parse("2006-01-02 15:04 MST", paidUntil)
	if err1 != nil || err2 != nil || !paid.After(trial) {
		t.Errorf("the expiry did not move: trial until %q, paid until %q", trialUntil, paidUntil)
	}

	// A line with no place to break wraps inside its bubble: nothing
	// sticks out of the chat.
	do("send a very long word",
		chromedp.SendKeys(chromedp.CSS("#text"), strings.Repeat("x", 600)),
		chromedp.Click(chromedp.CSS("#send")),
	)
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`(() => { const box = document.querySelector('#messages');
		const long = [...document.querySelectorAll('.msg.user')].find(m => m.textContent.includes('xxxxxxxxxx'));
		return !!long && long.scrollWidth <= long.clientWidth + 1 && box.scrollWidth <= box.clientWidth + 1; })()`)); err != nil {
		shot("failed")
		t.Errorf("a long word does not wrap inside its bubble: %v", err)
	}

	// A new user who speaks Russian: the dialog's language becomes the
	// language_code of their updates, and the bot answers in Russian.
	do("create a Russian-speaking user",
		chromedp.Click(chromedp.CSS("#new-user")),
		chromedp.WaitVisible(chromedp.CSS("#new-name")),
		chromedp.SendKeys(chromedp.CSS("#new-name"), "Дарья"),
		chromedp.SetValue(chromedp.CSS("#new-lang"), "ru"),
	)
	shot("new-user")
	do("open her chat",
		chromedp.Click(chromedp.CSS("#new-create")),
		chromedp.WaitVisible(chromedp.CSS(`.user.active[data-id="1003"]`)),
		chromedp.WaitVisible(chromedp.CSS(".empty")),
		chromedp.SendKeys(chromedp.CSS("#text"), "/start"),
		chromedp.Click(chromedp.CSS("#send")),
		chromedp.WaitVisible(button("Пробный период")),
	)
	if welcome := lastBotText(); !cyrillic.MatchString(welcome) || strings.Contains(welcome, "free trial") {
		t.Errorf("the Russian user's welcome is not in Russian: %q", welcome)
	}
	shot("ru-start")
	do("take the trial in Russian",
		chromedp.Click(button("Пробный период")),
		chromedp.WaitVisible(chromedp.CSS("a.doc")),
		chromedp.WaitVisible(chromedp.CSS("img.photo")),
	)
	if got := lastBotText(); !cyrillic.MatchString(got) {
		t.Errorf("the Russian trial's last message is not in Russian: %q", got)
	}
	shot("ru-trial")

	// She pays in Telegram Stars: the invoice and its Pay button show the
	// amount with a star, as Telegram does, and the receipt follows.
	do("open her menu", chromedp.SendKeys(chromedp.CSS("#text"), "/start"), chromedp.Click(chromedp.CSS("#send")))
	pressText("Продлить")
	press(`button[data-cb="buy:plan:month"]`)
	press(`button[data-cb^="buy:pay:stars:"]`)
	do("see the Stars invoice", chromedp.WaitVisible(chromedp.CSS(".invoice")))
	invoice, payLabel := textOf(".invoice .total"), textOf("button.kb-pay")
	if !strings.Contains(invoice, "⭐") || strings.Contains(invoice+payLabel, "XTR") || !strings.Contains(payLabel, "⭐") {
		t.Errorf("the Stars invoice shows %q with the button %q; want the amount with ⭐ and no XTR", invoice, payLabel)
	}
	shot("stars-invoice")
	do("pay in Stars",
		chromedp.Click(chromedp.CSS("button.kb-pay")),
		chromedp.WaitVisible(chromedp.CSS(".service")),
	)
	if receipt := textOf(".service"); !strings.Contains(receipt, "⭐") {
		t.Errorf("the payment's service message is %q, want the amount in ⭐", receipt)
	}
	botText("⭐") // the bot's confirmation follows the receipt
	toDocs(shot("stars-paid"), "sandbox-ru-stars.png")
}

var cyrillic = regexp.MustCompile(`[А-Яа-яЁё]`)

// button selects an inline button of the chat by its label, as a person
// finds it.
func button(label string) string {
	return fmt.Sprintf(`//div[contains(@class, "kb")]//button[contains(., %q)]`, label)
}

// managedPeerHas reports whether a peer wgbot manages in the wg0.conf at
// path routes addr.
func managedPeerHas(t *testing.T, path string, addr netip.Addr) bool {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := wgconf.Parse(raw)
	if err != nil {
		t.Fatalf("%s does not parse: %v", path, err)
	}
	for _, p := range f.ManagedPeers() {
		for _, allowed := range p.AllowedIPs {
			if allowed.Contains(addr) {
				return true
			}
		}
	}
	return false
}

func ptrTo[T any](v T) *T { return &v }

// productionDatabase is a migrated database that looks like production's:
// the wg0 server row, a user, an order, a credited payment and a queued
// job.
func productionDatabase(t *testing.T) string {
	t.Helper()
	url := pgtest.URL(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, stmt := range []string{
		`INSERT INTO servers (name, interface, endpoint, subnet, address, public_key, next_ip)
			VALUES ('wg0', 'wg0', 'vpn.example.com:51820', '10.8.0.0/24', '10.8.0.1', 'cHJvZHVjdGlvbi1rZXktLS0tLS0tLS0tLS0tLS0tLS0=', '10.8.0.2')`,
		`INSERT INTO users (telegram_id, username) VALUES (424242, 'real_customer')`,
		`INSERT INTO orders (user_id, plan, days, devices, provider, amount, currency, status, expires_at)
			SELECT id, 'month', 30, 1, 'stars', 100, 'XTR', 'paid', now() + interval '1 day' FROM users`,
		`INSERT INTO payments (provider, provider_payment_id, order_id, user_id, amount, currency, status, days)
			SELECT 'stars', 'charge-1', o.id, o.user_id, 100, 'XTR', 'credited', 30 FROM orders o`,
		`INSERT INTO river_job (kind, args, max_attempts, queue, scheduled_at) VALUES ('payment_notice', '{}', 25, 'default', now() + interval '1 hour')`,
	} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	return url
}

// databaseState is everything a sandbox could change in a database: the
// rows of wgbot's tables and River's jobs, and the database's comment.
func databaseState(t *testing.T, url string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var state string
	err = conn.QueryRow(ctx, `SELECT concat_ws(' ',
		(SELECT count(*) FROM servers), (SELECT count(*) FROM users), (SELECT count(*) FROM subscriptions),
		(SELECT count(*) FROM peers), (SELECT count(*) FROM orders), (SELECT count(*) FROM payments),
		(SELECT count(*) FROM telegram_updates),
		(SELECT string_agg(concat_ws(':', id, kind, state, attempt), ',' ORDER BY id) FROM river_job),
		(SELECT string_agg(name, ',' ORDER BY name) FROM servers),
		coalesce(shobj_description((SELECT oid FROM pg_database WHERE datname = current_database()), 'pg_database'), 'no comment'))`).Scan(&state)
	if err != nil {
		t.Fatal(err)
	}
	return state
}

// withDatabaseName is url pointing at database name on the same server.
func withDatabaseName(t *testing.T, raw, name string) string {
	t.Helper()
	u, err := neturl.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

func databaseName(t *testing.T, raw string) string {
	t.Helper()
	u, err := neturl.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(u.Path, "/")
}

// adminExec runs a statement as the test server's superuser.
func adminExec(t *testing.T, stmt string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgtest.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, stmt); err != nil {
		t.Fatalf("%s: %v", stmt, err)
	}
}

// sendAs types text into user's chat on the sandbox's page.
func sendAs(t *testing.T, url string, user int64, text string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"text": text})
	resp, err := http.Post(fmt.Sprintf("%ssandbox/api/chats/%d/text", url, user), "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("send %q as %d: %s", text, user, resp.Status)
	}
}

// waitBotReplies waits until the bot has sent user n messages, counting
// those of earlier runs on the same var directory, and returns their
// texts.
func waitBotReplies(t *testing.T, url string, user int64, n int) []string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var texts []string
	for {
		var chat struct {
			Messages []struct{ From, Text string } `json:"messages"`
		}
		if err := json.Unmarshal([]byte(httpGet(t, fmt.Sprintf("%ssandbox/api/chats/%d", url, user))), &chat); err != nil {
			t.Fatal(err)
		}
		texts = texts[:0]
		for _, m := range chat.Messages {
			if m.From == "bot" {
				texts = append(texts, m.Text)
			}
		}
		if len(texts) >= n {
			return texts
		}
		if time.Now().After(deadline) {
			t.Fatalf("the bot sent user %d %d messages within 20 s, want %d: %q", user, len(texts), n, texts)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Given production's database (PostgreSQL on the same host is the
// documented deployment), the sandbox works in a database of its own on
// that server, made and marked by it, and leaves production's untouched:
// no rows, no jobs, no server row; its jobs run in its own queue.
func TestSandboxNextToProductionDatabase(t *testing.T) {
	t.Parallel()
	prod := productionDatabase(t)
	own := databaseName(t, prod) + "_sandbox"
	t.Cleanup(func() { adminExec(t, "DROP DATABASE IF EXISTS "+own+" WITH (FORCE)") })
	before := databaseState(t, prod)

	varDir := filepath.Join(enterableTempDir(t), "var")
	for run := range 2 { // the second run finds its own database and uses it again
		url, stop, stderr := launchSandboxOutput(t, varDir, map[string]string{"DATABASE_URL": prod})
		sendAs(t, url, 1001, "/start")
		waitBotReplies(t, url, 1001, run+1) // the chat keeps the first run's reply
		stop()
		// The command it printed for the operator's tools names its own
		// database, never production's.
		if want := "DATABASE_URL=" + sbx.ShellQuote(withDatabaseName(t, prod, own)) + " "; !strings.Contains(stderr.String(), want) {
			t.Errorf("run %d does not print %s:\n%s", run, want, stderr.String())
		}
		if after := databaseState(t, prod); after != before {
			t.Fatalf("run %d changed production's database:\nbefore %s\nafter  %s", run, before, after)
		}
	}
	if _, err := os.Stat(filepath.Join(varDir, "pg")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("with a DATABASE_URL that answers the sandbox started a private cluster too (%v)", err)
	}
	state := databaseState(t, withDatabaseName(t, prod, own))
	for _, want := range []string{"wgbot sandbox", " sandbox "} {
		if !strings.Contains(state, want) {
			t.Errorf("the sandbox's own database %s is not marked as its own or lacks its server row (%q): %s", own, want, state)
		}
	}
	if strings.Contains(state, "wg0") {
		t.Errorf("production's server row is in the sandbox's database: %s", state)
	}
}

// A database at the sandbox's name that the sandbox did not make and that
// holds production's data (a copy, a restore) is refused, saying why, and
// nothing in it or in production's changes.
func TestSandboxRefusesForeignDatabase(t *testing.T) {
	t.Parallel()
	prod := productionDatabase(t)
	own := databaseName(t, prod) + "_sandbox"
	t.Cleanup(func() { adminExec(t, "DROP DATABASE IF EXISTS "+own+" WITH (FORCE)") })
	adminExec(t, "CREATE DATABASE "+own+" TEMPLATE "+databaseName(t, prod))
	copyURL := withDatabaseName(t, prod, own)
	before, beforeCopy := databaseState(t, prod), databaseState(t, copyURL)

	varDir := filepath.Join(enterableTempDir(t), "var")
	var stdout, stderr lockedBuffer
	// A sandbox that does not refuse runs until stopped.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := run(ctx, []string{"wgbot", "--env-file", os.DevNull, "sandbox", "--var", varDir, "--listen", "127.0.0.1:0"},
		func(k string) string { return map[string]string{"DATABASE_URL": prod}[k] }, &stdout, &stderr)
	if err == nil || ctx.Err() != nil {
		t.Fatalf("the sandbox ran on a copy of production's database (%v)\n%s", err, stderr.String())
	}
	for _, want := range []string{own, "not made by the sandbox", "server rows wg0", "1 users", "1 payments", "unset DATABASE_URL"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal does not say %q: %v", want, err)
		}
	}
	if urlPattern.MatchString(stdout.String()) {
		t.Errorf("a refused sandbox printed its URL: %s", stdout.String())
	}
	if after := databaseState(t, prod); after != before {
		t.Errorf("production's database changed:\nbefore %s\nafter  %s", before, after)
	}
	if after := databaseState(t, copyURL); after != beforeCopy {
		t.Errorf("the refused database changed:\nbefore %s\nafter  %s", beforeCopy, after)
	}
}

// A second `make run` on the same var directory answers from the first
// action: the emulator continues its update ids, so the bot does not take
// the new run's updates for redeliveries of the last run's. The third run
// has lost the emulator's state file and continues after the ids the
// database remembers. The chat keeps every run's messages, in order.
func TestSandboxRestartAnswersFromTheFirstAction(t *testing.T) {
	t.Parallel()
	varDir := filepath.Join(enterableTempDir(t), "var")
	for run := range 3 {
		if run == 2 {
			if err := os.Remove(filepath.Join(varDir, "telegram-update-id")); err != nil {
				t.Fatal(err)
			}
		}
		url, stop := launchSandbox(t, varDir, nil)
		for i, text := range []string{"/start", "/help", "/start"} {
			sendAs(t, url, 1001, text)
			want := 3*run + i + 1
			if got := waitBotReplies(t, url, 1001, want); len(got) != want {
				t.Fatalf("run %d: after %d messages the bot sent %d in all, want %d: %q", run, i+1, len(got), want, got)
			}
		}
		stop()
	}
}

// chatLines is a user's chat as the page shows it: who said what, in order.
func chatLines(t *testing.T, url string, user int64) []string {
	t.Helper()
	var chat struct {
		Messages []struct{ From, Text string } `json:"messages"`
	}
	if err := json.Unmarshal([]byte(httpGet(t, fmt.Sprintf("%ssandbox/api/chats/%d", url, user))), &chat); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range chat.Messages {
		first, _, _ := strings.Cut(m.Text, "\n")
		out = append(out, m.From+": "+first)
	}
	return out
}

// After a restart of the sandbox (Ctrl-C, make run) the page shows the
// users it added, with their language, and every chat as it was, in order;
// the next message goes on from there.
func TestSandboxKeepsChatsAndUsersAcrossRestart(t *testing.T) {
	t.Parallel()
	varDir := filepath.Join(enterableTempDir(t), "var")
	url, stop := launchSandbox(t, varDir, nil)
	body, _ := json.Marshal(map[string]string{"name": "Дарья", "lang": "ru"})
	resp, err := http.Post(url+"sandbox/api/users", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var darya struct {
		ID   int64  `json:"id"`
		Lang string `json:"lang"`
	}
	json.NewDecoder(resp.Body).Decode(&darya)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || darya.Lang != "ru" {
		t.Fatalf("create a Russian user: %s %+v", resp.Status, darya)
	}
	for i, text := range []string{"/start", "/help"} {
		sendAs(t, url, darya.ID, text)
		waitBotReplies(t, url, darya.ID, i+1)
		sendAs(t, url, 1001, text)
		waitBotReplies(t, url, 1001, i+1)
	}
	before := map[int64][]string{darya.ID: chatLines(t, url, darya.ID), 1001: chatLines(t, url, 1001)}
	stop()

	url, stop = launchSandbox(t, varDir, nil)
	defer stop()
	var users []struct {
		ID   int64  `json:"id"`
		Name string `json:"name"`
		Lang string `json:"lang"`
	}
	if err := json.Unmarshal([]byte(httpGet(t, url+"sandbox/api/users")), &users); err != nil {
		t.Fatal(err)
	}
	if len(users) != 3 || users[2].ID != darya.ID || users[2].Name != "Дарья" || users[2].Lang != "ru" {
		t.Fatalf("after the restart the users are %+v", users)
	}
	for user, lines := range before {
		if len(lines) != 4 || !strings.HasPrefix(lines[0], "user: /start") || !strings.HasPrefix(lines[2], "user: /help") {
			t.Fatalf("user %d's chat before the restart: %q", user, lines)
		}
		if after := chatLines(t, url, user); strings.Join(after, "|") != strings.Join(lines, "|") {
			t.Errorf("user %d's chat changed across the restart:\nbefore %q\nafter  %q", user, lines, after)
		}
	}
	if !strings.ContainsAny(strings.ToLower(before[darya.ID][1]), "абвгдеёжзийклмнопрстуфхцчшщыэюя") {
		t.Errorf("the Russian user's /start was not answered in Russian: %q", before[darya.ID])
	}
	sendAs(t, url, darya.ID, "/start")
	waitBotReplies(t, url, darya.ID, 3)
	if after := chatLines(t, url, darya.ID); len(after) != 6 || after[4] != "user: /start" {
		t.Errorf("the first message after the restart does not follow the history: %q", after)
	}
}

// pressAs presses the newest button of user's chat whose callback data is
// data, as the page does, waiting up to 20 s for it to appear.
func pressAs(t *testing.T, url string, user int64, data string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var chat struct {
			Messages []struct {
				ID       int                       `json:"id"`
				From     string                    `json:"from"`
				Keyboard [][]struct{ Data string } `json:"keyboard"`
			} `json:"messages"`
		}
		if err := json.Unmarshal([]byte(httpGet(t, fmt.Sprintf("%ssandbox/api/chats/%d", url, user))), &chat); err != nil {
			t.Fatal(err)
		}
		for i := len(chat.Messages) - 1; i >= 0; i-- {
			m := chat.Messages[i]
			for _, row := range m.Keyboard {
				for _, b := range row {
					if b.Data != data {
						continue
					}
					body, _ := json.Marshal(map[string]any{"message_id": m.ID, "data": data})
					resp, err := http.Post(fmt.Sprintf("%ssandbox/api/chats/%d/press", url, user), "application/json", bytes.NewReader(body))
					if err != nil {
						t.Fatal(err)
					}
					resp.Body.Close()
					if resp.StatusCode != http.StatusAccepted {
						t.Fatalf("press %q as %d: %s", data, user, resp.Status)
					}
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no button %q in user %d's chat within 20 s", data, user)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The sandbox's admin (Alice) can /broadcast, as in serve: the bot has the
// broadcast store, the preview offers the audience and Send, and the job
// queue sends it, to Bob and to her, and the report comes back.
func TestSandboxBroadcast(t *testing.T) {
	t.Parallel()
	url, _ := startSandbox(t)
	const alice, bob = 1001, 1002
	for _, u := range []int64{alice, bob} {
		sendAs(t, url, u, "/start")
		waitBotReplies(t, url, u, 1)
	}
	sendAs(t, url, alice, "/broadcast Maintenance tonight at 22:00")
	pressAs(t, url, alice, "bc:aud:all")
	pressAs(t, url, alice, "bc:send:all")
	has := func(texts []string, part string) bool {
		for _, s := range texts {
			if strings.Contains(s, part) {
				return true
			}
		}
		return false
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		a, b := waitBotReplies(t, url, alice, 1), waitBotReplies(t, url, bob, 1)
		if has(a, "not set up") {
			t.Fatalf("the sandbox refused /broadcast: %q", a)
		}
		if has(b, "Maintenance tonight") && has(a, "Broadcast finished") && has(a, "Delivered: 2") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no broadcast within 30 s: Alice got %q, Bob %q", a, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// fakeGo writes a go command that plays a slow first build: a download,
// packages named as go build -v names them, a pause, then a wgbot that
// prints the subcommand it was started with. With fail set it ends with a
// compile error instead.
func fakeGo(t *testing.T, dir string, fail bool) string {
	t.Helper()
	script := `#!/bin/sh
echo "go: downloading example.com/dep v1.2.3" >&2
for p in example.com/dep wgbot/postgres wgbot/telegram; do echo "$p" >&2; sleep 0.5; done
sleep 1.5
`
	if fail {
		script += "echo '# wgbot/telegram' >&2\necho 'telegram/bot.go:1:1: undefined: x' >&2\nexit 1\n"
	} else {
		script += `while [ "$1" != "-o" ]; do shift; done
mkdir -p "$(dirname "$2")"
printf '#!/bin/sh\necho "wgbot started: $*"\n' > "$2"
chmod +x "$2"
echo wgbot/cmd/wgbot >&2
`
	}
	path := filepath.Join(dir, "go")
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// `make run` says it is building before the build has printed anything,
// shows the build's progress and passes its downloads and errors through,
// then starts the sandbox (no BOT_TOKEN) or serve (with one).
func TestSandboxMakeRunShowsBuildProgress(t *testing.T) {
	t.Parallel()
	script, err := filepath.Abs(filepath.Join("..", "..", "scripts", "run.sh"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		fail  bool
		env   []string
		want  []string
		never []string
	}{
		{"first build, sandbox", false, nil, []string{"make run: building bin/wgbot (the first build", "go: downloading example.com/dep v1.2.3",
			"packages compiled (", "make run: built bin/wgbot in", "(4 packages compiled)", "wgbot started: sandbox"}, []string{"wgbot/postgres"}},
		{"with a token, serve", false, []string{"BOT_TOKEN=123:abc"}, []string{"make run: building", "wgbot started: serve"}, nil},
		{"failed build", true, nil, []string{"make run: building", "telegram/bot.go:1:1: undefined: x", "# wgbot/telegram", "the build failed"},
			[]string{"wgbot started", "wgbot/postgres", "built bin/wgbot"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			cmd := exec.Command("bash", script)
			cmd.Dir = dir
			cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "GO=" + fakeGo(t, dir, tt.fail), "WGBOT_PROGRESS_EVERY=1"}, tt.env...)
			out, err := cmd.CombinedOutput()
			if tt.fail != (err != nil) {
				t.Fatalf("run.sh: %v\n%s", err, out)
			}
			text := string(out)
			for _, w := range tt.want {
				if !strings.Contains(text, w) {
					t.Errorf("the output does not say %q:\n%s", w, text)
				}
			}
			for _, w := range tt.never {
				if strings.Contains(text, w) {
					t.Errorf("the output says %q:\n%s", w, text)
				}
			}
			if first, _, _ := strings.Cut(text, "\n"); !strings.HasPrefix(first, "make run: building") {
				t.Errorf("the first line is %q, want the building notice before anything the build prints", first)
			}
		})
	}
}

// When the sandbox's usual port is taken it says so, and which address it
// took instead; the URL it prints later is that one.
func TestSandboxPortTakenSaysWhichInstead(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	var stderr bytes.Buffer
	ln, err := sandboxListener("", taken.Addr().String(), &stderr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if ln.Addr().String() == taken.Addr().String() {
		t.Fatal("listening on a taken port succeeded; the test proves nothing")
	}
	for _, want := range []string{taken.Addr().String() + " is taken", "using " + ln.Addr().String() + " instead"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("the notice does not say %q: %q", want, stderr.String())
		}
	}

	free := ln.Addr().String()
	ln.Close()
	stderr.Reset()
	again, err := sandboxListener("", free, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if again.Addr().String() != free || stderr.Len() != 0 {
		t.Errorf("a free preferred port: listening on %s (want %s), notice %q", again.Addr(), free, stderr.String())
	}
}

// The sandbox prints a command that runs `wgbot users list` on its private
// cluster; pasted into a shell while the sandbox runs, it lists the users
// who talked to the bot. The cluster's password is read by the shell from
// its file, never printed.
func TestSandboxPrintsItsDatabaseURL(t *testing.T) {
	t.Parallel()
	varDir := filepath.Join(enterableTempDir(t), "var")
	url, stop, stderr := launchSandboxOutput(t, varDir, nil)
	t.Cleanup(stop)
	sendAs(t, url, 1001, "/start")
	waitBotReplies(t, url, 1001, 1)

	var command string
	for deadline := time.Now().Add(10 * time.Second); command == "" && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		for _, line := range strings.Split(stderr.String(), "\n") {
			if strings.Contains(line, "DATABASE_URL=") && strings.HasSuffix(line, " users list") {
				command = strings.TrimSpace(line)
			}
		}
	}
	if command == "" {
		t.Fatalf("no DATABASE_URL=... wgbot users list command printed:\n%s", stderr.String())
	}
	password, err := os.ReadFile(filepath.Join(varDir, "pg", "password"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stderr.String(), strings.TrimSpace(string(password))) {
		t.Errorf("the cluster's password was printed:\n%s", stderr.String())
	}
	// The printed command names this test binary, which becomes wgbot
	// with childEnv; WGBOT_TEST_ARGS repeats the arguments it names.
	sh := exec.Command("sh", "-c", command)
	sh.Dir = t.TempDir() // no .env
	sh.Env = []string{childEnv + "=1", "WGBOT_TEST_ARGS=users list", "PATH=" + os.Getenv("PATH")}
	out, err := sh.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", command, err, out)
	}
	for _, want := range []string{"TELEGRAM ID", "1001", "@alice", "1 user(s)"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("users list does not show %q:\n%s", want, out)
		}
	}
}

// The page polls the open chat several times a second; those reads are
// not in the sandbox's log at info level, what people did on the page is.
func TestSandboxPollingIsQuiet(t *testing.T) {
	t.Parallel()
	url, varDir := startSandbox(t)
	sendAs(t, url, 1001, "/start")
	waitBotReplies(t, url, 1001, 1)
	for range 5 {
		httpGet(t, url+"sandbox/api/chats/1001")
	}
	raw, err := os.ReadFile(filepath.Join(varDir, "wgbot.log"))
	if err != nil {
		t.Fatal(err)
	}
	var posted bool
	for _, line := range strings.Split(string(raw), "\n") {
		if !strings.Contains(line, "http request") {
			continue
		}
		if strings.Contains(line, "method=GET") && strings.Contains(line, "path=/sandbox/api/") {
			t.Errorf("a read of the page's API is logged at info: %s", line)
		}
		posted = posted || strings.Contains(line, "method=POST path=/sandbox/api/chats/1001/text")
	}
	if !posted {
		t.Errorf("the message typed on the page is not logged:\n%s", raw)
	}
}
