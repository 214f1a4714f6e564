// Package reconcile keeps one WireGuard server equal to the database: it
// renders the managed peers of wg0.conf from PostgreSQL and applies only the
// difference to the live device. Changes arriving together are coalesced
// into one write, and callers can wait for the reconcile covering theirs.
package reconcile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"wgbot"
	"wgbot/config"
	"wgbot/metrics"
	"wgbot/postgres"
	"wgbot/secret"
	"wgbot/service"
	"wgbot/wireguard/device"
	"wgbot/wireguard/wgconf"
)

// Config says which server this reconciler owns and how it applies.
type Config struct {
	ServerID       int64
	Interface      string
	Mode           string // config.ApplyDevice, ApplyFile or ApplyNone
	File           wgconf.Config
	ResyncInterval time.Duration // also repairs hand-made drift
	Keepalive      int           // seconds, on the server side of each peer (0: off)
	Metrics        *metrics.Metrics
}

// Result is what one reconcile did.
type Result struct {
	Revision    int64
	Peers       int
	FileChanged bool
	Device      device.Result
	Duration    time.Duration
}

// Reconciler converges one server. Run it with Run; call Apply to wait.
type Reconciler struct {
	store  *postgres.Store
	keys   *secret.Keyring
	wg     device.Client // nil unless Mode is device
	file   *wgconf.Writer
	cfg    Config
	log    *slog.Logger
	listen func(ctx context.Context) (*pgx.Conn, error)

	// FailHook, when set, runs before each apply; an error from it fails the
	// reconcile as a broken device would. Tests use it to inject faults.
	FailHook func() error

	kick chan struct{}

	reconciles, fileWrites atomic.Int64
	// runMu serializes reconciles: Run's loop, the operator's `wgbot
	// reconcile` and tests may call Reconcile at once, and device syncs
	// must not overlap. reservedKey is the hand-made address set last
	// reserved.
	runMu       sync.Mutex
	reservedKey string

	mu       sync.Mutex
	applied  int64         // last revision fully applied
	tried    int64         // revision of the last attempt
	lastErr  error         // error of the last attempt
	lastOK   time.Time     // when a reconcile last succeeded
	attempts chan struct{} // closed and replaced after every attempt
}

// New returns a Reconciler. listen opens a dedicated connection for
// LISTEN (outside the pool, which it would otherwise pin); nil disables it.
func New(store *postgres.Store, keys *secret.Keyring, wg device.Client, cfg Config,
	listen func(context.Context) (*pgx.Conn, error), log *slog.Logger) (*Reconciler, error) {
	var file *wgconf.Writer
	if cfg.Mode != config.ApplyNone {
		var err error
		if file, err = wgconf.NewWriter(cfg.File); err != nil {
			return nil, err
		}
	}
	if cfg.Mode == config.ApplyDevice && wg == nil {
		return nil, errors.New("reconcile: device mode needs a wgctrl client")
	}
	if cfg.ResyncInterval <= 0 {
		cfg.ResyncInterval = 30 * time.Second
	}
	return &Reconciler{store: store, keys: keys, wg: wg, file: file, cfg: cfg, log: log, listen: listen,
		kick: make(chan struct{}, 1), attempts: make(chan struct{})}, nil
}

// Kick asks for a reconcile soon; kicks that arrive during one coalesce
// into a single next reconcile.
func (r *Reconciler) Kick() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Apply implements service.Provisioner: it kicks the reconciler and waits
// until a reconcile that includes ch has been applied, or one that
// included it failed, or ctx ends.
func (r *Reconciler) Apply(ctx context.Context, ch wgbot.Change) error {
	if ch.ServerID != r.cfg.ServerID {
		return nil // another host's server: its own reconciler applies it
	}
	r.Kick()
	for {
		r.mu.Lock()
		applied, tried, lastErr, attempts := r.applied, r.tried, r.lastErr, r.attempts
		r.mu.Unlock()
		if applied >= ch.Revision {
			return nil
		}
		if tried >= ch.Revision && lastErr != nil {
			return lastErr
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for WireGuard to apply revision %d: %w", ch.Revision, ctx.Err())
		case <-attempts:
		}
	}
}

var _ service.Provisioner = (*Reconciler)(nil)

// Status reports the last success and the last error, for /readyz.
func (r *Reconciler) Status() (lastOK time.Time, applied int64, lastErr error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastOK, r.applied, r.lastErr
}

// Counts reports how many reconciles ran and how many of them rewrote
// wg0.conf, to show that bursts coalesce.
func (r *Reconciler) Counts() (reconciles, fileWrites int64) {
	return r.reconciles.Load(), r.fileWrites.Load()
}

// Run reconciles at start, on every kick or notification, and on the
// resync interval, until ctx ends. A failed reconcile is retried with
// backoff; it never stops the loop.
func (r *Reconciler) Run(ctx context.Context) error {
	if r.listen != nil {
		go r.listenLoop(ctx)
	}
	resync := time.NewTicker(r.cfg.ResyncInterval)
	defer resync.Stop()
	retry := time.Duration(0)
	for {
		_, err := r.Reconcile(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var wait <-chan time.Time
		if err != nil {
			retry = min(max(retry*2, 200*time.Millisecond), 10*time.Second)
			r.log.Error("reconcile failed; retrying", "server", r.cfg.ServerID, "retry_in", retry.String(), "err", err)
			wait = time.After(retry)
		} else {
			retry = 0
		}
		select {
		case <-ctx.Done():
			return nil
		case <-r.kick:
		case <-resync.C:
		case <-wait:
		}
	}
}

// listenLoop turns NOTIFYs from any wgbot process into kicks. After a lost
// connection it kicks once, since notifications may have been missed.
func (r *Reconciler) listenLoop(ctx context.Context) {
	backoff := time.Second
	for ctx.Err() == nil {
		conn, err := r.listen(ctx)
		if err == nil {
			_, err = conn.Exec(ctx, "LISTEN "+postgres.NotifyChannel)
		}
		if err == nil {
			backoff = time.Second
			r.Kick()
			err = r.waitNotifications(ctx, conn)
		}
		if conn != nil {
			conn.Close(context.WithoutCancel(ctx))
		}
		if ctx.Err() != nil {
			return
		}
		r.log.Warn("LISTEN connection lost; reconnecting", "err", err, "retry_in", backoff.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

func (r *Reconciler) waitNotifications(ctx context.Context, conn *pgx.Conn) error {
	prefix := strconv.FormatInt(r.cfg.ServerID, 10) + ":"
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if strings.HasPrefix(n.Payload, prefix) {
			r.Kick()
		}
	}
}

// Reconcile makes wg0.conf and the device equal to the database once.
func (r *Reconciler) Reconcile(ctx context.Context) (Result, error) {
	r.runMu.Lock()
	start := time.Now()
	res, err := r.reconcile(ctx)
	r.runMu.Unlock()
	res.Duration = time.Since(start)
	r.cfg.Metrics.ObserveReconcile(res.Duration, res.FileChanged, res.Device.Added, res.Device.Updated, res.Device.Removed, err != nil)
	r.reconciles.Add(1)
	if res.FileChanged {
		r.fileWrites.Add(1)
	}
	r.mu.Lock()
	if res.Revision > r.tried {
		r.tried = res.Revision
	}
	r.lastErr = err
	if err == nil {
		r.applied = max(r.applied, res.Revision)
		r.lastOK = time.Now()
	}
	close(r.attempts)
	r.attempts = make(chan struct{})
	r.mu.Unlock()
	if err == nil && (res.FileChanged || res.Device.Added+res.Device.Updated+res.Device.Removed > 0) {
		r.log.Info("reconciled", "server", r.cfg.ServerID, "revision", res.Revision, "peers", res.Peers,
			"file_changed", res.FileChanged, "device", res.Device.String(), "took", res.Duration.String())
	}
	return res, err
}

func (r *Reconciler) reconcile(ctx context.Context) (Result, error) {
	var res Result
	if r.FailHook != nil {
		if err := r.FailHook(); err != nil {
			return res, err
		}
	}
	if r.cfg.Mode == config.ApplyNone {
		d, err := r.desired(ctx, &wgconf.File{})
		res.Revision, res.Peers = d.Revision, len(d.Managed)
		return res, err
	}
	// The database is read under wg0.conf's lock and the device synced
	// before it is released: reconcilers of several processes on one host
	// take turns, each applying a snapshot at least as new as the last.
	var d Desired
	var err error
	res.FileChanged, err = r.file.UpdateThen(ctx, func(f *wgconf.File) error {
		if d, err = r.desired(ctx, f); err != nil {
			return err
		}
		res.Revision, res.Peers = d.Revision, len(d.Managed)
		if err := r.reserve(ctx, d.HandMade); err != nil {
			return err
		}
		return f.SetManagedPeers(d.Managed)
	}, func(bool) error {
		if r.cfg.Mode != config.ApplyDevice {
			return nil
		}
		for _, w := range d.Warnings {
			r.log.Error(w)
		}
		res.Device, err = device.Sync(r.wg, r.cfg.Interface, d.Device)
		return err
	})
	return res, err
}

// Desired is what the server should hold according to the database and
// the hand-made part of wg0.conf.
type Desired struct {
	Revision int64
	Managed  []wgconf.Peer          // wg0.conf's managed peers: the database's active peers
	HandMade []wgconf.UnmanagedPeer // the operator's own peers in wg0.conf
	// Device is the device's whole peer set: the managed peers and the
	// hand-made ones. Anything else on the device is drift.
	Device   []device.Peer
	Warnings []string // problems an operator should fix, already handled
}

// desired reads the database's active peers and combines them with f's
// hand-made peers. A wgbot peer whose address a hand-made peer also
// claims stays off the device (the operator's line wins, loudly): the
// device cannot route one address to two peers.
func (r *Reconciler) desired(ctx context.Context, f *wgconf.File) (Desired, error) {
	peers, revision, err := r.store.DesiredPeers(ctx, r.cfg.ServerID)
	d := Desired{Revision: revision, HandMade: f.UnmanagedPeers()}
	if err != nil {
		return d, err
	}
	taken := map[netip.Prefix]bool{}
	var hand []device.Peer
	for _, h := range d.HandMade {
		p, err := handMadePeer(h)
		if err != nil {
			d.Warnings = append(d.Warnings, fmt.Sprintf("hand-made peer of wg0.conf at line %d skipped: %v", h.Line, err))
			continue
		}
		for _, a := range p.AllowedIPs {
			taken[a.Masked()] = true
		}
		hand = append(hand, p)
	}
	d.Managed = make([]wgconf.Peer, 0, len(peers))
	d.Device = make([]device.Peer, 0, len(peers)+len(hand))
	for _, p := range peers {
		psk, err := service.OpenPresharedKey(r.keys, p.Secrets)
		if err != nil {
			return d, fmt.Errorf("peer %d: %w", p.ID, err)
		}
		allowed := []netip.Prefix{netip.PrefixFrom(p.IP, 32)}
		if p.IP6.IsValid() {
			allowed = append(allowed, netip.PrefixFrom(p.IP6, 128))
		}
		d.Managed = append(d.Managed, wgconf.Peer{ID: strconv.FormatInt(p.ID, 10), PublicKey: p.PublicKey,
			PresharedKey: psk.String(), AllowedIPs: allowed})
		pub, err := wgtypes.ParseKey(p.PublicKey)
		if err != nil {
			return d, fmt.Errorf("peer %d: public key: %w", p.ID, err)
		}
		if taken[allowed[0]] {
			d.Warnings = append(d.Warnings, fmt.Sprintf("wgbot peer %d has %s, which a hand-made peer of wg0.conf also uses: "+
				"it stays off the device until one of them moves", p.ID, allowed[0]))
			continue
		}
		d.Device = append(d.Device, device.Peer{PublicKey: pub, PresharedKey: psk, AllowedIPs: allowed,
			PersistentKeepalive: time.Duration(r.cfg.Keepalive) * time.Second})
	}
	d.Device = append(d.Device, hand...)
	return d, nil
}

// Plan is what a reconcile would change, computed without changing
// anything (`wgbot reconcile --dry-run`).
type Plan struct {
	Desired
	File        *wgconf.File // wg0.conf as it is now
	FileRewrite bool         // wg0.conf's bytes would change
	// Device: the device's peers now and the changes a sync would make;
	// nil unless the apply mode is device.
	DevicePeers []wgtypes.Peer
	DeviceDiff  *device.Changes
}

// Plan reads the database, wg0.conf (without its lock: writes are atomic
// renames) and the device, and says what Reconcile would change.
func (r *Reconciler) Plan(ctx context.Context) (Plan, error) {
	var p Plan
	var err error
	if r.cfg.Mode == config.ApplyNone {
		p.File = &wgconf.File{}
	} else if p.File, err = r.file.Read(); err != nil {
		return p, err
	}
	if p.Desired, err = r.desired(ctx, p.File); err != nil {
		return p, err
	}
	after, err := wgconf.Parse(p.File.Render())
	if err != nil {
		return p, err
	}
	if err := after.SetManagedPeers(p.Managed); err != nil {
		return p, err
	}
	p.FileRewrite = r.cfg.Mode != config.ApplyNone && !bytes.Equal(p.File.Render(), after.Render())
	if r.cfg.Mode != config.ApplyDevice {
		return p, nil
	}
	dev, err := r.wg.Device(r.cfg.Interface)
	if err != nil {
		return p, fmt.Errorf("read WireGuard interface %s: %w", r.cfg.Interface, err)
	}
	p.DevicePeers = dev.Peers
	diff := device.Diff(dev.Peers, p.Device)
	p.DeviceDiff = &diff
	return p, nil
}

// reserve tells the allocator which addresses the hand-made peers use, when
// that set changed since the last reconcile.
func (r *Reconciler) reserve(ctx context.Context, handMade []wgconf.UnmanagedPeer) error {
	var addrs []netip.Addr
	for _, h := range handMade {
		for _, a := range h.AllowedIPs {
			if a.IsSingleIP() {
				addrs = append(addrs, a.Addr())
			}
		}
	}
	key := fmt.Sprint(addrs)
	if key == r.reservedKey {
		return nil
	}
	clashes, err := r.store.ReserveAddresses(ctx, r.cfg.ServerID, addrs)
	if err != nil {
		return err
	}
	for _, a := range clashes {
		r.log.Error("a wgbot peer holds an address a hand-made peer of wg0.conf also uses; revoke one of them", "address", a.String())
	}
	r.reservedKey = key
	return nil
}

func handMadePeer(h wgconf.UnmanagedPeer) (device.Peer, error) {
	pub, err := wgtypes.ParseKey(h.PublicKey)
	if err != nil {
		return device.Peer{}, fmt.Errorf("public key: %w", err)
	}
	p := device.Peer{PublicKey: pub, AllowedIPs: h.AllowedIPs, PersistentKeepalive: time.Duration(h.PersistentKeepalive) * time.Second}
	if ap, err := netip.ParseAddrPort(h.Endpoint); err == nil {
		p.Endpoint = net.UDPAddrFromAddrPort(ap)
	}
	if h.PresharedKey != "" {
		if p.PresharedKey, err = wgtypes.ParseKey(h.PresharedKey); err != nil {
			return p, fmt.Errorf("preshared key: %w", err)
		}
	}
	return p, nil
}
