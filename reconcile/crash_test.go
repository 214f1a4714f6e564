package reconcile_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"wgbot"
	"wgbot/postgres"
	"wgbot/reconcile"
	"wgbot/secret"
	"wgbot/service"
	"wgbot/wireguard/device"
	"wgbot/wireguard/wgconf"
)

const crashChildEnv = "WGBOT_RECONCILE_CRASH_CHILD"

// A process SIGKILLed after the incremental reconcile updated the device
// and before it wrote wg0.conf leaves the file without the new peer; the
// next start's full reconcile writes it (I4 holds after every reconcile).
func TestKilledBetweenDeviceAndFile(t *testing.T) {
	w := newWorldResync(t, time.Hour)
	url := w.pool.Config().ConnString()
	w.stop() // the child is the only reconciler now
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"=1", "CRASH_URL="+url, "CRASH_IFACE="+w.srvIf,
		"CRASH_CONF="+w.confPath, "CRASH_SERVER="+strconv.FormatInt(w.srv.ID, 10))
	out, err := cmd.CombinedOutput()
	if st, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !st.Signaled() || st.Signal() != syscall.SIGKILL {
		t.Fatalf("the child was not killed at the hook: %v\n%s", err, out)
	}
	var pub string
	if err := w.pool.QueryRow(context.Background(), `SELECT public_key FROM peers WHERE status = 'active'`).Scan(&pub); err != nil {
		t.Fatal(err)
	}
	if _, ok := w.devicePeers(t)[keyOf(t, pub)]; !ok {
		t.Fatal("the device lacks the peer the child applied")
	}
	if n := len(w.fileManaged(t)); n != 0 {
		t.Fatalf("wg0.conf has %d managed peers; the child was killed before writing it", n)
	}
	w.start(t, url)
	eventually(t, 5*time.Second, "the next start writes the peer to wg0.conf", func() bool {
		m := w.fileManaged(t)
		return len(m) == 1 && m[0].PublicKey == pub
	})
}

// crashChild runs a reconciler and a trial, and kills itself once the
// device has the trial's peer.
func crashChild() int {
	ctx := context.Background()
	fail := func(err error) int { fmt.Fprintln(os.Stderr, "crash child:", err); return 1 }
	pool, err := pgxpool.New(ctx, os.Getenv("CRASH_URL"))
	if err != nil {
		return fail(err)
	}
	store := postgres.NewStore(pool, postgres.Options{LockID: 720301}, nil)
	id, _ := strconv.ParseInt(os.Getenv("CRASH_SERVER"), 10, 64)
	srv, err := store.Server(ctx, id)
	if err != nil {
		return fail(err)
	}
	keys, _ := secret.NewKeyring(bytes.Repeat([]byte{3}, 32))
	wg, err := device.Open()
	if err != nil {
		return fail(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	rec, err := reconcile.New(store, keys, wg, reconcile.Config{ServerID: id, Interface: os.Getenv("CRASH_IFACE"), Mode: reconcile.ModeDevice,
		File: wgconf.Config{Path: os.Getenv("CRASH_CONF")}, ResyncInterval: time.Hour},
		func(ctx context.Context) (*pgx.Conn, error) { return pgx.Connect(ctx, os.Getenv("CRASH_URL")) }, log)
	if err != nil {
		return fail(err)
	}
	rec.DeviceAppliedHook = func() { syscall.Kill(os.Getpid(), syscall.SIGKILL) }
	// Run's first, full reconcile must be over before the trial commits,
	// or it could apply the trial itself and the hook would never run.
	go rec.Run(ctx)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if ok, _, err := rec.Status(); !ok.IsZero() {
			break
		} else if time.Now().After(deadline) {
			return fail(fmt.Errorf("the first reconcile did not succeed: %v", err))
		}
	}
	svc := service.New(store, keys, rec, service.Config{Server: srv, Plans: service.DefaultPlans(), TrialDays: 3,
		ClientRoutes: []netip.Prefix{srv.Subnet}, Keepalive: 25, ApplyWait: 5 * time.Second}, nil, log)
	u, err := svc.Register(ctx, wgbot.User{TelegramID: 42}, "")
	if err != nil {
		return fail(err)
	}
	_, err = svc.IssueTrial(ctx, u)
	return fail(fmt.Errorf("the trial returned (%v) without the hook killing the process", err))
}
