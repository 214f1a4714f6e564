// Package servicetest builds wgbot's stack for tests in one call: a pool on
// a fresh database from pgtest, the store, the keyring and the service, as
// serve wires them. Tests that need no database use a fake of the interface
// their package declares instead.
package servicetest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"wgbot"
	"wgbot/jobs"
	"wgbot/postgres"
	"wgbot/postgres/pgtest"
	"wgbot/secret"
	"wgbot/service"
)

// LockID is DB_IP_ALLOC_LOCK_ID's default, the allocator's advisory lock
// key every test store takes unless its Options say otherwise.
const LockID = 720301

// Options say how the stack differs from the defaults.
type Options struct {
	// Server is what EnsureServer records; zero: DefaultServer.
	Server wgbot.Server
	// Store is the store's options; a zero LockID is LockID.
	Store postgres.Options
	// Jobs makes the store insert follow-up jobs through an insert-only
	// outbox, as in serve; otherwise it inserts none.
	Jobs bool
	// Key is the keyring's 32-byte key; nil: 32 bytes of 7.
	Key []byte
	// Apply makes changes real; nil: none is waited for.
	Apply service.Provisioner
	// NewApply, when set, builds Apply from the stack so far (the store,
	// keys and server): a reconciler over the same store.
	NewApply func(*Stack) (service.Provisioner, error)
	// Config is the service's settings. Server is set from EnsureServer;
	// nil Plans are service.DefaultPlans, zero TrialDays is 3, no
	// ClientRoutes is 0.0.0.0/0 and zero ApplyWait is 5s.
	Config service.Config
	// Now is the service's clock; nil: time.Now.
	Now func() time.Time
	// Log receives the stack's logs; nil: discarded.
	Log *slog.Logger
}

// Stack is the built stack.
type Stack struct {
	URL     string
	Pool    *pgxpool.Pool
	Outbox  *river.Client[pgx.Tx] // nil unless Options.Jobs
	Store   *postgres.Store
	Keys    *secret.Keyring
	Server  wgbot.Server
	Service *service.Service
}

// DefaultServer is the server row tests record unless they need another.
func DefaultServer() wgbot.Server {
	return wgbot.Server{
		Name: "main", Interface: "wg0", Endpoint: "vpn.example.com:51820", Subnet: netip.MustParsePrefix("10.66.0.0/22"),
		Address: netip.MustParseAddr("10.66.0.1"), PublicKey: "c2VydmVyc2VydmVyc2VydmVyc2VydmVyc2VydmVyMDA=", DNS: []string{"1.1.1.1"}, MTU: 1420,
	}
}

// New builds the stack on a fresh database for t; the pool closes when t
// ends. The package's TestMain must call pgtest.Main.
func New(t testing.TB, o Options) *Stack {
	t.Helper()
	s, err := Build(context.Background(), pgtest.URL(t), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Pool.Close)
	return s
}

// Build builds the stack on the database at url, for callers without a
// testing.TB (a child process a test started). The caller closes Pool.
func Build(ctx context.Context, url string, o Options) (*Stack, error) {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return nil, err
	}
	s, err := build(ctx, pool, o)
	if err != nil {
		pool.Close()
		return nil, err
	}
	s.URL = url
	return s, nil
}

// build wires the stack on pool; Build closes the pool if it fails.
func build(ctx context.Context, pool *pgxpool.Pool, o Options) (*Stack, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Server.Name == "" {
		o.Server = DefaultServer()
	}
	if o.Store.LockID == 0 {
		o.Store.LockID = LockID
	}
	if o.Key == nil {
		o.Key = bytes.Repeat([]byte{7}, 32)
	}
	s := &Stack{Pool: pool}
	if o.Jobs {
		outbox, err := jobs.NewOutbox(pool, o.Log)
		if err != nil {
			return nil, err
		}
		s.Outbox = outbox
	}
	s.Store = postgres.NewStore(pool, o.Store, s.Outbox)
	srv, err := s.Store.EnsureServer(ctx, o.Server)
	if err != nil {
		return nil, fmt.Errorf("servicetest: ensure server: %w", err)
	}
	s.Server = srv
	if s.Keys, err = secret.NewKeyring(o.Key); err != nil {
		return nil, fmt.Errorf("servicetest: keyring: %w", err)
	}
	if o.NewApply != nil {
		if o.Apply, err = o.NewApply(s); err != nil {
			return nil, fmt.Errorf("servicetest: apply: %w", err)
		}
	}
	cfg := o.Config
	cfg.Server = srv
	if cfg.Plans == nil {
		cfg.Plans = service.DefaultPlans()
	}
	if cfg.TrialDays == 0 {
		cfg.TrialDays = 3
	}
	if cfg.ClientRoutes == nil {
		cfg.ClientRoutes = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}
	}
	if cfg.ApplyWait == 0 {
		cfg.ApplyWait = 5 * time.Second
	}
	s.Service = service.New(s.Store, s.Keys, o.Apply, cfg, o.Now, o.Log)
	return s, nil
}
