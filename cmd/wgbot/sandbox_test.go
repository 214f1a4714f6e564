package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
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
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	var stderr lockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"wgbot", "--env-file", os.DevNull, "sandbox", "--var", varDir, "--listen", "127.0.0.1:0"},
			func(string) string { return "" }, pw, &stderr)
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
	t.Cleanup(func() {
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
	select {
	case url = <-urls:
		return url, varDir
	case err := <-done:
		t.Fatalf("sandbox exited: %v\n%s", err, stderr.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("no URL within 60 s\n%s", stderr.String())
	}
	return "", ""
}

// datePattern is how the bot writes dates.
var datePattern = regexp.MustCompile(`\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC`)

// The acceptance walk-through, in a real browser: /start, the free trial,
// the QR code and the .conf (which must be a peer of the server's
// wg0.conf), then buying a plan with the sandbox card and seeing the expiry
// move. Screenshots of each step go to $WGBOT_ARTIFACTS (else a temporary
// directory); with WGBOT_UPDATE_SCREENSHOT=1 the trial's also replaces
// docs/sandbox.png.
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
	ctx, cancel := context.WithTimeout(browserCtx, 75*time.Second)
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
	trialPNG := shot("trial")
	if os.Getenv("WGBOT_UPDATE_SCREENSHOT") == "1" {
		if err := os.WriteFile(filepath.Join("..", "..", "docs", "sandbox.png"), trialPNG, 0o644); err != nil {
			t.Fatal(err)
		}
	}

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

	do("choose a plan and the sandbox card",
		chromedp.Click(button("Buy")),
		chromedp.WaitVisible(button("30 days")),
		chromedp.Click(button("30 days")),
		chromedp.WaitVisible(button("Sandbox card")),
	)
	do("open the payment link",
		chromedp.Click(button("Sandbox card")),
		chromedp.WaitVisible(chromedp.CSS("a.kb-link")),
	)
	shot("pay-link")
	link, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS("a.kb-link"), "href"))
	if err != nil || !link.Exists {
		t.Fatalf("no payment link: %v", err)
	}
	// The link opens a new tab in a person's browser; the test follows it
	// in the same one. Paying returns to the chat, as YooKassa's page does.
	do("pay on the checkout page",
		chromedp.Navigate(link.Value),
		chromedp.WaitVisible(chromedp.CSS("#pay")),
	)
	shot("checkout")
	do("return to the chat", chromedp.Click(chromedp.CSS("#pay")), chromedp.WaitVisible(chromedp.CSS(`.user.active[data-id="1001"]`)))
	paidUntil := datePattern.FindString(botText("Payment received"))
	shot("paid")
	trial, err1 := time.Parse("2006-01-02 15:04 MST", trialUntil)
	paid, err2 := time.Parse("2006-01-02 15:04 MST", paidUntil)
	if err1 != nil || err2 != nil || !paid.After(trial) {
		t.Errorf("the expiry did not move: trial until %q, paid until %q", trialUntil, paidUntil)
	}
}

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
