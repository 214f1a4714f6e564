package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"wgbot/postgres/pgtest"
)

// childEnv makes the test binary behave as the wgbot binary, so tests run
// real OS processes without a separate build step.
const childEnv = "WGBOT_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(issuerEnv) == "1" { // BenchmarkScale's issuing process
		if err := benchIssuer(); err != nil {
			fmt.Fprintln(os.Stderr, "issuer:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if os.Getenv(childEnv) == "1" {
		os.Args = append([]string{"wgbot"}, strings.Fields(os.Getenv("WGBOT_TEST_ARGS"))...)
		main()
		os.Exit(0)
	}
	pgtest.Main(m)
}

// wgbot starts the binary as a child process with only the given settings.
func runWgbot(env map[string]string, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = []string{childEnv + "=1", "WGBOT_TEST_ARGS=" + strings.Join(args, " "), "PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Dir = os.TempDir() // no stray .env from the work tree
	return cmd
}

// buildWgbot builds the binary an operator runs, for measurements of the
// process itself: the test binary, which runWgbot starts, also carries
// every test's code and dependencies, and that showed in its memory.
func buildWgbot(tb testing.TB) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "wgbot")
	if out, err := exec.Command("go", "build", "-o", path, ".").CombinedOutput(); err != nil {
		tb.Fatalf("go build: %v\n%s", err, out)
	}
	return path
}

// runBinary is runWgbot for the binary at path.
func runBinary(path string, env map[string]string, args ...string) *exec.Cmd {
	cmd := runWgbot(env, args...)
	cmd.Path, cmd.Args = path, append([]string{"wgbot"}, args...)
	return cmd
}

// fakeAuthServer speaks the PostgreSQL protocol just far enough to reject
// the password, as a server with md5/scram auth does; the local test server
// trusts every connection, so a wrong password cannot be shown with it.
func fakeAuthServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				be := pgproto3.NewBackend(conn, conn)
				for {
					msg, err := be.ReceiveStartupMessage()
					if err != nil {
						return
					}
					if _, ok := msg.(*pgproto3.SSLRequest); ok {
						conn.Write([]byte("N"))
						continue
					}
					break
				}
				be.Send(&pgproto3.AuthenticationCleartextPassword{})
				be.Flush()
				be.SetAuthType(pgproto3.AuthTypeCleartextPassword)
				be.Receive()
				be.Send(&pgproto3.ErrorResponse{Severity: "FATAL", Code: "28P01", Message: `password authentication failed for user "wgbot"`})
				be.Flush()
			}()
		}
	}()
	return ln.Addr().String()
}

// silentServer accepts connections and never answers.
func silentServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	return ln.Addr().String()
}

func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// Seed edge case: start while the database is unreachable → a clear error.
func TestUnreachableDatabase(t *testing.T) {
	const password = "s3cret-Pa55"
	tests := []struct {
		name, user, addr, db, cause string
	}{
		{"closed port", "wgbot", closedPort(t), "wgbot", "connection refused"},
		{"wrong password", "wgbot", fakeAuthServer(t), "wgbot", "authentication failed"},
		{"missing database", "postgres", "127.0.0.1:5432", "wgbot_no_such_db", "database does not exist"},
		{"no answer", "wgbot", silentServer(t), "wgbot", "timed out"},
	}
	for _, tt := range tests {
		for _, command := range []string{"serve", "check"} {
			t.Run(tt.name+"/"+command, func(t *testing.T) {
				t.Parallel()
				host, port, _ := net.SplitHostPort(tt.addr)
				env := map[string]string{
					"DATABASE_URL":       fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", tt.user, password, tt.addr, tt.db),
					"DB_CONNECT_TIMEOUT": "2s",
					"WG_ENDPOINT":        "vpn.example.com:51820",
					"BOT_TOKEN":          "123:abc",
				}
				var out bytes.Buffer
				cmd := runWgbot(env, command)
				cmd.Stdout, cmd.Stderr = &out, &out
				start := time.Now()
				err := cmd.Run()
				elapsed := time.Since(start)
				exitErr, ok := err.(*exec.ExitError)
				if !ok || exitErr.ExitCode() != exitUnavailable {
					t.Fatalf("want exit code %d, got %v\n%s", exitUnavailable, err, out.String())
				}
				if elapsed > 6*time.Second {
					t.Errorf("took %v, connect timeout is 2s", elapsed)
				}
				text := out.String()
				lastLine := strings.TrimSpace(text[strings.LastIndex(strings.TrimSpace(text), "\n")+1:])
				for _, want := range []string{host, port, tt.db, tt.cause, "check"} {
					if !strings.Contains(lastLine, want) {
						t.Errorf("error line lacks %q: %s", want, lastLine)
					}
				}
				for _, never := range []string{password, "panic", "goroutine "} {
					if strings.Contains(text, never) {
						t.Errorf("output contains %q:\n%s", never, text)
					}
				}
			})
		}
	}
}

// Two processes starting at once must not both migrate.
func TestConcurrentMigrate(t *testing.T) {
	url := pgtest.EmptyURL(t)
	var wg sync.WaitGroup
	outputs := make([]bytes.Buffer, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := runWgbot(map[string]string{"DATABASE_URL": url}, "migrate")
			cmd.Stdout, cmd.Stderr = &outputs[i], &outputs[i]
			errs[i] = cmd.Run()
		}()
	}
	wg.Wait()
	for i := range 2 {
		if errs[i] != nil {
			t.Fatalf("migrate %d: %v\n%s", i, errs[i], outputs[i].String())
		}
	}
	applied := 0
	for i := range 2 {
		if strings.Contains(outputs[i].String(), "applied") {
			applied++
		}
	}
	if applied != 1 {
		t.Errorf("want exactly one process to apply the schema, got %d:\n%s\n%s", applied, outputs[0].String(), outputs[1].String())
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var dup int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM (SELECT version_id FROM goose_db_version
		GROUP BY version_id HAVING count(*) > 1) d`).Scan(&dup); err != nil {
		t.Fatal(err)
	}
	if dup != 0 {
		t.Errorf("%d migrations were recorded twice", dup)
	}
	var tables int
	conn.QueryRow(ctx, `SELECT count(*) FROM information_schema.tables WHERE table_name IN ('users','servers','subscriptions','peers','orders','payments')`).Scan(&tables)
	if tables != 6 {
		t.Errorf("want 6 tables, found %d", tables)
	}
}

func TestSettingsErrorsListedTogether(t *testing.T) {
	var stdout, stderr bytes.Buffer
	getenv := func(name string) string {
		return map[string]string{"DB_POOL_MIN": "x", "DB_POOL_MAX": "0", "DB_IP_ALLOC_LOCK_ID": "lock", "WG_SUBNET": "10.8.0.1/24"}[name]
	}
	err := run(context.Background(), []string{"wgbot", "--env-file", os.DevNull, "check"}, getenv, &stdout, &stderr)
	if exitCode(err) != exitConfig {
		t.Fatalf("want a settings error, got %v", err)
	}
	for _, want := range []string{"DB_POOL_MIN", "DB_POOL_MAX", "DB_IP_ALLOC_LOCK_ID", "WG_SUBNET"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s: %v", want, err)
		}
	}
}

func TestCheckHidesSecrets(t *testing.T) {
	url := pgtest.URL(t)
	env := map[string]string{
		"DATABASE_URL": strings.Replace(url, "postgres@", "postgres:db-Pa55word@", 1),
		"BOT_TOKEN":    "123456:SECRET-bot-token",
		"MASTER_KEY":   "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
		"WG_ENDPOINT":  "vpn.example.com:51820",
	}
	var out bytes.Buffer
	cmd := runWgbot(env, "check")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("check: %v\n%s", err, out.String())
	}
	for _, secret := range []string{"db-Pa55word", "SECRET-bot-token", env["MASTER_KEY"]} {
		if strings.Contains(out.String(), secret) {
			t.Errorf("check printed a secret:\n%s", out.String())
		}
	}
	if !strings.Contains(out.String(), "ready to serve") {
		t.Errorf("check did not report readiness:\n%s", out.String())
	}
	// Stars are always on: without SUPPORT_CONTACT, check warns (issue 17).
	if !strings.Contains(out.String(), "WARNING: SUPPORT_CONTACT is empty") {
		t.Errorf("check did not warn about the missing support contact:\n%s", out.String())
	}
}

// Device mode with no interface: a clear start-up error naming it and how
// to create it, before anything is issued.
func TestServeMissingInterface(t *testing.T) {
	env := map[string]string{
		"DATABASE_URL": pgtest.URL(t), "BOT_TOKEN": "123:abc", "WG_ENDPOINT": "vpn.example.com:51820",
		"WG_APPLY_MODE": "device", "WG_INTERFACE": "wgnotthere0", "WG_SERVER_PUBLIC_KEY": "c2VydmVyc2VydmVyc2VydmVyc2VydmVyc2VydmVyMDA=",
		"MASTER_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", "HTTP_ADDR": "127.0.0.1:0",
	}
	var out bytes.Buffer
	cmd := runWgbot(env, "serve")
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); !ok {
		t.Fatalf("serve without its interface: %v\n%s", err, out.String())
	}
	for _, want := range []string{"wgnotthere0 not found", "ip link add wgnotthere0 type wireguard", "WG_APPLY_MODE=file"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("error lacks %q:\n%s", want, out.String())
		}
	}
}

// The operator's rotation: issue under one master key, rekey under a new
// one, and the old key is no longer needed.
func TestRekeyCommand(t *testing.T) {
	dir := t.TempDir()
	priv, _ := wgtypes.GeneratePrivateKey()
	conf := filepath.Join(dir, "wg0.conf")
	os.WriteFile(conf, []byte("[Interface]\nPrivateKey = "+priv.String()+"\n"), 0o600)
	const oldKey, newKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA="
	env := map[string]string{"DATABASE_URL": pgtest.URL(t), "WG_APPLY_MODE": "file", "WG_CONFIG_PATH": conf,
		"WG_ENDPOINT": "vpn.example.com:51820", "MASTER_KEY": oldKey}
	run := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		cmd := runWgbot(env, args...)
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Fatalf("wgbot %v: %v\n%s", args, err, out.String())
		}
		return out.String()
	}
	run("issue", "--telegram-id", "42", "--days", "30", "--out", filepath.Join(dir, "a.conf"))
	env["MASTER_KEY"], env["MASTER_KEY_OLD"] = newKey, oldKey
	if out := run("rekey"); !strings.Contains(out, "re-sealed 1 peers") || !strings.Contains(out, "MASTER_KEY_OLD can be removed") {
		t.Fatalf("rekey said:\n%s", out)
	}
	delete(env, "MASTER_KEY_OLD")
	if out := run("reconcile", "--dry-run"); !strings.Contains(out, "dry run") {
		t.Fatalf("reconcile with only the new key:\n%s", out)
	}
}
