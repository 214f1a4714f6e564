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
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"wgbot"
	"wgbot/gctight"
	"wgbot/metrics"
	"wgbot/postgres"
	"wgbot/wireguard/device"
	"wgbot/wireguard/wgconf"
)

// The ways a reconciler applies the database (WG_APPLY_MODE).
const (
	ModeDevice = "device" // wg0.conf and the live interface
	ModeFile   = "file"   // wg0.conf only; the operator's tooling loads it
	ModeNone   = "none"   // dry run: compute, change nothing
	// ModeNode: the server's own `wgbot node` applies it; this process
	// only waits for the node to report a change applied.
	ModeNode = "node"
)

// Config says which server this reconciler owns and how it applies.
type Config struct {
	ServerID       int64
	Interface      string
	Mode           string // ModeDevice, ModeFile or ModeNone
	File           wgconf.Config
	ResyncInterval time.Duration // also repairs hand-made drift
	Keepalive      int           // seconds, on the server side of each peer (0: off)
	Metrics        *metrics.Metrics
	// OnApplied, when set, is told each newly applied revision; a node
	// publishes it for the serve processes waiting. It must not block.
	OnApplied func(revision int64)
}

// Result is what one reconcile did.
type Result struct {
	Revision    int64
	Peers       int
	FileChanged bool
	Device      device.Result
	Duration    time.Duration
}

// Store is what the reconciler reads from the database (*postgres.Store).
type Store interface {
	// DesiredPeers is every active peer and the revision, for a full reconcile.
	// each gets the rows one by one.
	// expect gets the number of rows before the first.
	DesiredPeers(ctx context.Context, serverID int64, expect func(n int), each func(postgres.SealedPeer) error) (revision int64, err error)
	// ChangesSince is the peers changed after a revision, for the hot path.
	ChangesSince(ctx context.Context, serverID, since int64) (postgres.PeerChanges, error)
	PruneChanges(ctx context.Context, serverID, below int64) error
	ReserveAddresses(ctx context.Context, serverID int64, addrs []netip.Addr) ([]netip.Addr, error)
	// NodeStatuses is the last report of every server's node (ModeNode).
	NodeStatuses(ctx context.Context) (map[int64]postgres.NodeStatus, error)
	// KnownKeys is which of keys are peers of the server (not revoked):
	// hand-made wg0.conf peers that `wgbot import` brought in.
	KnownKeys(ctx context.Context, serverID int64, keys []string) (map[string]bool, error)
}

// PresharedKeys opens the peers' preshared keys: the master keyring
// inside serve, a node's own keys (*secret.NodeKeys) in `wgbot node`,
// which has no master key.
type PresharedKeys interface {
	OpenPresharedKey(sec wgbot.PeerSecrets) (wgtypes.Key, error)
}

// keepChanges is how many revisions of the change log a full reconcile
// leaves behind it for reconcilers (other processes, other hosts) that
// lag; one further behind reconciles in full.
const keepChanges = 10000

// Reconciler converges one server. Run it with Run; call Apply to wait.
//
// After a full reconcile (at start, on the resync interval, after any
// error, and on Reconcile) it keeps the managed peers and the parsed
// wg0.conf in memory; a change is then applied incrementally: only the
// peers the change log names since the applied revision are read, their
// preshared keys opened, sent to the device in one call, and the file
// rendered from memory while it is still the one this reconciler wrote.
type Reconciler struct {
	store  Store
	keys   PresharedKeys
	wg     device.Client // nil unless Mode is device
	file   *wgconf.Writer
	cfg    Config
	log    *slog.Logger
	listen func(ctx context.Context) (*pgx.Conn, error)

	// FailHook, when set, runs before each apply; an error from it fails the
	// reconcile as a broken device would. Tests use it to inject faults.
	FailHook func() error
	// DeviceAppliedHook, when set, runs after an incremental reconcile
	// updated the device and before wg0.conf is written; a crash test
	// kills the process there.
	DeviceAppliedHook func()

	kick chan struct{}

	reconciles, fileWrites atomic.Int64
	// runMu serializes reconciles: Run's loop, the operator's `wgbot
	// reconcile` and tests may call Reconcile at once, and device syncs
	// must not overlap. reservedKey is the hand-made address set last
	// reserved.
	runMu       sync.Mutex
	reservedKey string
	// The model of the last successful reconcile, valid while synced:
	// base is the revision it holds, managed the file's managed peers
	// sorted by id, onDevice the public key of each managed peer put on
	// the device, taken the addresses hand-made peers hold.
	synced   bool
	dirty    bool // device mode: the model holds changes wg0.conf does not yet
	dirtyAt  time.Time
	base     int64
	cache    wgconf.Cache
	onDevice map[int64]wgtypes.Key
	taken    map[netip.Prefix]bool
	// rowsRead counts change-log rows and peer rows read (tests).
	rowsRead atomic.Int64

	mu       sync.Mutex
	nodes    map[int64]int64 // ModeNode: the revision each server's node applied
	applied  int64           // last revision fully applied
	tried    int64           // revision of the last attempt
	lastErr  error           // error of the last attempt
	lastOK   time.Time       // when a reconcile last succeeded
	attempts chan struct{}   // closed and replaced after every attempt
}

// New returns a Reconciler. listen opens a dedicated connection for
// LISTEN (outside the pool, which it would otherwise pin); nil disables it.
func New(store Store, keys PresharedKeys, wg device.Client, cfg Config,
	listen func(context.Context) (*pgx.Conn, error), log *slog.Logger) (*Reconciler, error) {
	switch cfg.Mode {
	case ModeDevice, ModeFile, ModeNone, ModeNode:
	default:
		return nil, fmt.Errorf("reconcile: apply mode %q is not %s, %s, %s or %s", cfg.Mode, ModeDevice, ModeFile, ModeNone, ModeNode)
	}
	var file *wgconf.Writer
	if cfg.Mode == ModeDevice || cfg.Mode == ModeFile {
		var err error
		if file, err = wgconf.NewWriter(cfg.File); err != nil {
			return nil, err
		}
	}
	if cfg.Mode == ModeDevice && wg == nil {
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

// Apply is how the service waits for WireGuard: it kicks the reconciler and waits
// until a reconcile that includes ch has been applied, or one that
// included it failed, or ctx ends.
func (r *Reconciler) Apply(ctx context.Context, ch wgbot.Change) error {
	if ch.ServerID != r.cfg.ServerID && r.cfg.Mode != ModeNode {
		return nil // another host's server: its own reconciler applies it
	}
	r.Kick()
	for {
		r.mu.Lock()
		applied, tried, lastErr, attempts := r.applied, r.tried, r.lastErr, r.attempts
		if r.cfg.Mode == ModeNode {
			applied, tried = r.nodes[ch.ServerID], 0 // a late node is waited for, not an error
		}
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
	if r.cfg.Mode == ModeNode {
		return r.followNode(ctx)
	}
	if r.listen != nil {
		go r.listenLoop(ctx, postgres.NotifyChannel, r.kickOnChange)
	}
	resync := time.NewTicker(r.cfg.ResyncInterval)
	defer resync.Stop()
	retry := time.Duration(0)
	// The first pass catches up from the last one: in full unless a
	// reconcile already ran (serve's start-up one), since run falls back to
	// a full reconcile until one succeeded. A second full pass at start
	// held two copies of 50,000 peers at once.
	full := false
	for {
		var err error
		if full {
			_, err = r.Reconcile(ctx)
		} else {
			_, err = r.Update(ctx)
		}
		full = false
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
		var flush <-chan time.Time
		if due, ok := r.flushDue(); ok {
			flush = time.After(time.Until(due))
		}
		select {
		case <-ctx.Done():
			r.flush(context.WithoutCancel(ctx))
			return nil
		case <-r.kick:
		case <-resync.C:
			full = true
		case <-wait:
		case <-flush:
			if err := r.flush(ctx); err != nil {
				r.log.Error("write wg0.conf failed; reconciling in full", "server", r.cfg.ServerID, "err", err)
				full = true
			}
		}
	}
}

// flushDelay is how long, in device mode, wg0.conf may lag the device
// after the last change: changes arriving within it share one write, and
// no issuance waits for the file.
const flushDelay = 100 * time.Millisecond

// flushDue says when wg0.conf must be written: flushDelay after the first
// change it lacks, however many follow (a steady stream cannot starve it).
func (r *Reconciler) flushDue() (time.Time, bool) {
	r.runMu.Lock()
	defer r.runMu.Unlock()
	return r.dirtyAt.Add(flushDelay), r.dirty
}

// flush writes the changes the device already has to wg0.conf. A file
// that changed meanwhile (a hand edit, another process) makes it a full
// reconcile, which writes the file from the database.
func (r *Reconciler) flush(ctx context.Context) error {
	r.runMu.Lock()
	if !r.dirty {
		r.runMu.Unlock()
		return nil
	}
	changed, err := r.file.UpdateCached(ctx, &r.cache, func(_ *wgconf.File, fresh bool) error {
		if fresh {
			return errNeedFull
		}
		return nil
	}, nil)
	if err == nil {
		r.dirty = false
		if changed {
			r.fileWrites.Add(1)
		}
	}
	r.runMu.Unlock()
	if errors.Is(err, errNeedFull) {
		_, err = r.Reconcile(ctx)
	}
	return err
}

// listenLoop turns NOTIFYs on channel into calls of notified. After a lost
// connection it kicks once, since notifications may have been missed.
func (r *Reconciler) listenLoop(ctx context.Context, channel string, notified func(payload string)) {
	backoff := time.Second
	for ctx.Err() == nil {
		conn, err := r.listen(ctx)
		if err == nil {
			_, err = conn.Exec(ctx, "LISTEN "+channel)
		}
		if err == nil {
			backoff = time.Second
			r.Kick()
			err = waitNotifications(ctx, conn, notified)
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

func waitNotifications(ctx context.Context, conn *pgx.Conn, notified func(payload string)) error {
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		notified(n.Payload)
	}
}

// kickOnChange is listenLoop's reaction to NotifyChannel: a change of this
// reconciler's server, from any wgbot process, kicks it.
func (r *Reconciler) kickOnChange(payload string) {
	if strings.HasPrefix(payload, strconv.FormatInt(r.cfg.ServerID, 10)+":") {
		r.Kick()
	}
}

// Reconcile makes wg0.conf and the device equal to the database once,
// comparing all of them in full: it repairs any drift.
func (r *Reconciler) Reconcile(ctx context.Context) (Result, error) {
	return r.run(ctx, true)
}

// Update applies what changed since the last reconcile, reading only the
// changed peers; it falls back to a full reconcile when it has no model
// (first run, after an error), when wg0.conf is not the file it last wrote
// (a hand edit, another process's write), or when the change log no longer
// reaches back to its revision.
func (r *Reconciler) Update(ctx context.Context) (Result, error) {
	return r.run(ctx, false)
}

// RowsRead counts the database rows reconciles read (peers and change-log
// rows), to show that the hot path reads only what changed.
func (r *Reconciler) RowsRead() int64 { return r.rowsRead.Load() }

var errNeedFull = errors.New("incremental reconcile not possible")

func (r *Reconciler) run(ctx context.Context, full bool) (Result, error) {
	if r.cfg.Mode == ModeNode {
		return Result{}, errNodeApplies(r.cfg.ServerID)
	}
	r.runMu.Lock()
	start := time.Now()
	var res Result
	var err error
	if !full && r.synced && r.cfg.Mode != ModeNone && r.FailHook == nil {
		res, err = r.incremental(ctx)
	}
	if full || !r.synced || r.cfg.Mode == ModeNone || r.FailHook != nil || errors.Is(err, errNeedFull) {
		restore := gctight.Begin()
		res, err = r.reconcile(ctx)
		restore()
	}
	r.synced = r.synced && err == nil
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
	advanced := err == nil && res.Revision > r.applied
	if err == nil {
		r.applied = max(r.applied, res.Revision)
		r.lastOK = time.Now()
	}
	close(r.attempts)
	r.attempts = make(chan struct{})
	r.mu.Unlock()
	if advanced && r.cfg.OnApplied != nil {
		r.cfg.OnApplied(res.Revision)
	}
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
	if r.cfg.Mode == ModeNone {
		d, err := r.desired(ctx, &wgconf.File{})
		res.Revision, res.Peers = d.Revision, len(d.Managed)
		return res, err
	}
	// The database is read under wg0.conf's lock and the device synced
	// before it is released: reconcilers of several processes on one host
	// take turns, each applying a snapshot at least as new as the last.
	var d Desired
	var err error
	// The model is rebuilt from the database: the old one is dropped
	// first, not held next to the new one.
	r.synced, r.onDevice, r.taken = false, nil, nil
	res.FileChanged, err = r.file.UpdateCached(ctx, &r.cache, func(f *wgconf.File, _ bool) error {
		if d, err = r.desired(ctx, f); err != nil {
			return err
		}
		res.Revision, res.Peers = d.Revision, len(d.Managed)
		f.AdoptUnmanaged(d.adopt)
		if err := r.reserve(ctx, d.HandMade); err != nil {
			return err
		}
		return f.SetManagedPeers(d.Managed)
	}, func(bool) error {
		if r.cfg.Mode != ModeDevice {
			return nil
		}
		for _, w := range d.Warnings {
			r.log.Error(w)
		}
		res.Device, err = device.Sync(r.wg, r.cfg.Interface, d.Device)
		return err
	})
	if err != nil {
		return res, err
	}
	r.onDevice, r.taken = d.onDevice, d.taken
	r.base, r.synced, r.dirty = res.Revision, true, false
	if err := r.store.PruneChanges(ctx, r.cfg.ServerID, res.Revision-keepChanges); err != nil {
		r.log.Warn("prune the peer change log", "server", r.cfg.ServerID, "err", err)
	}
	return res, nil
}

// incremental applies the change log since r.base to the model, the file
// (rendered from memory) and the device (only the changed peers). The log
// is read under wg0.conf's lock, like the full snapshot, so reconcilers of
// several processes on one host still take turns in revision order; and a
// file another process wrote fails the cache check and makes this a full
// reconcile, so an older model is never written over a newer file.
func (r *Reconciler) incremental(ctx context.Context) (Result, error) {
	var res Result
	var set []device.Peer
	var remove []wgtypes.Key
	var err error
	r.synced = false // until this succeeds: a half-applied model is rebuilt in full
	res.FileChanged, err = r.file.UpdateCached(ctx, &r.cache, func(f *wgconf.File, fresh bool) error {
		if fresh {
			return errNeedFull
		}
		c, err := r.store.ChangesSince(ctx, r.cfg.ServerID, r.base)
		if err != nil {
			return err
		}
		r.rowsRead.Add(int64(c.Rows + len(c.Active)))
		if c.Full {
			return errNeedFull
		}
		res.Revision = c.Revision
		if len(c.Active)+len(c.Gone) == 0 {
			return wgconf.ErrUnchanged
		}
		for _, id := range c.Gone {
			if k, ok := r.onDevice[id]; ok {
				remove = append(remove, k)
				delete(r.onDevice, id)
			}
			f.RemoveManagedPeer(strconv.FormatInt(id, 10))
		}
		for _, p := range c.Active {
			if f.HasUnmanaged(p.PublicKey) {
				// An imported peer still written by hand in wg0.conf:
				// the full reconcile adopts it.
				return errNeedFull
			}
			fp, dp, err := r.peer(p)
			if err != nil {
				return err
			}
			if k, ok := r.onDevice[p.ID]; ok && k != dp.PublicKey {
				remove = append(remove, k)
			}
			delete(r.onDevice, p.ID)
			if err := f.PutManagedPeer(fp); err != nil {
				return err
			}
			if r.taken[fp.AllowedIPs[0]] {
				r.log.Error(fmt.Sprintf("wgbot peer %d has %s, which a hand-made peer of wg0.conf also uses: "+
					"it stays off the device until one of them moves", p.ID, fp.AllowedIPs[0]))
				continue
			}
			if r.cfg.Mode == ModeDevice {
				set = append(set, dp)
				r.onDevice[p.ID] = dp.PublicKey
			}
		}
		res.Peers = f.NumManaged()
		if r.cfg.Mode != ModeDevice {
			return nil
		}
		// The device first, and the waiters told, before wg0.conf is
		// rendered and written: the file's cost grows with the peers, the
		// device's does not. Killed between the two, the file lacks the
		// change until the next start's full reconcile writes it (I4 holds
		// after every reconcile); the device already has it.
		if res.Device, err = device.Apply(r.wg, r.cfg.Interface, set, remove); err != nil {
			return err
		}
		r.markApplied(res.Revision)
		if r.DeviceAppliedHook != nil {
			r.DeviceAppliedHook()
		}
		// The file follows within flushDelay, one write for a burst.
		if !r.dirty {
			r.dirty, r.dirtyAt = true, time.Now()
		}
		return wgconf.ErrUnchanged
	}, nil)
	if err != nil {
		return res, err
	}
	r.base, r.synced = res.Revision, true
	return res, nil
}

// markApplied tells the waiters for revisions up to rev that it is applied.
func (r *Reconciler) markApplied(rev int64) {
	r.mu.Lock()
	advanced := rev > r.applied
	if advanced {
		r.applied = rev
		close(r.attempts)
		r.attempts = make(chan struct{})
	}
	r.mu.Unlock()
	if advanced && r.cfg.OnApplied != nil {
		r.cfg.OnApplied(rev)
	}
}

// peer is a database peer as wg0.conf and the device hold it; only its
// preshared key is opened.
func (r *Reconciler) peer(p postgres.SealedPeer) (wgconf.Peer, device.Peer, error) {
	psk, err := r.keys.OpenPresharedKey(p.Secrets)
	if err != nil {
		return wgconf.Peer{}, device.Peer{}, fmt.Errorf("peer %d: %w", p.ID, err)
	}
	allowed := []netip.Prefix{netip.PrefixFrom(p.IP, 32)}
	if p.IP6.IsValid() {
		allowed = append(allowed, netip.PrefixFrom(p.IP6, 128))
	}
	pub, err := wgtypes.ParseKey(p.PublicKey)
	if err != nil {
		return wgconf.Peer{}, device.Peer{}, fmt.Errorf("peer %d: public key: %w", p.ID, err)
	}
	fp := wgconf.Peer{ID: strconv.FormatInt(p.ID, 10), PublicKey: p.PublicKey, AllowedIPs: allowed}
	if psk != (wgtypes.Key{}) {
		fp.PresharedKey = psk.String() // an imported peer may have none
	}
	keepalive := r.cfg.Keepalive
	if p.Keepalive != nil {
		// An imported peer keeps the keepalive the old server gave it, so
		// the takeover changes nothing on the device.
		keepalive, fp.PersistentKeepalive = *p.Keepalive, *p.Keepalive
	}
	return fp, device.Peer{PublicKey: pub, PresharedKey: psk, AllowedIPs: allowed, PersistentKeepalive: time.Duration(keepalive) * time.Second}, nil
}

// Desired is what the server should hold according to the database and
// the hand-made part of wg0.conf.
type Desired struct {
	Revision int64
	Managed  []wgconf.Peer          // wg0.conf's managed peers: the database's active peers
	HandMade []wgconf.UnmanagedPeer // the operator's own peers in wg0.conf
	// Device is the device's whole peer set: the managed peers and the
	// hand-made ones. Anything else on the device is drift. In file mode
	// it holds only the hand-made ones: nothing reads it there.
	Device   []device.Peer
	Warnings []string // problems an operator should fix, already handled

	onDevice map[int64]wgtypes.Key // managed peers in Device, by id
	taken    map[netip.Prefix]bool // addresses of the hand-made peers
	// adopt: public keys of hand-made peers that are database peers now
	// (imported): wg0.conf drops their hand-made sections and writes them
	// as managed peers; they are in Managed and Device once, not twice.
	adopt map[string]bool
}

// desired reads the database's active peers and combines them with f's
// hand-made peers. A wgbot peer whose address a hand-made peer also
// claims stays off the device (the operator's line wins, loudly): the
// device cannot route one address to two peers.
func (r *Reconciler) desired(ctx context.Context, f *wgconf.File) (Desired, error) {
	d := Desired{HandMade: f.UnmanagedPeers()}
	taken := map[netip.Prefix]bool{}
	d.taken, d.onDevice = taken, map[int64]wgtypes.Key{}
	if len(d.HandMade) > 0 {
		hand := make([]string, len(d.HandMade))
		for i, h := range d.HandMade {
			hand[i] = h.PublicKey
		}
		keys, err := r.store.KnownKeys(ctx, r.cfg.ServerID, hand)
		if err != nil {
			return d, err
		}
		d.HandMade = slices.DeleteFunc(d.HandMade, func(h wgconf.UnmanagedPeer) bool {
			if keys[h.PublicKey] {
				if d.adopt == nil {
					d.adopt = map[string]bool{}
				}
				d.adopt[h.PublicKey] = true
				return true
			}
			return false
		})
	}
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
	// The rows are turned into peers as they arrive, into slices sized
	// for them (grown by appending, 50,000 peers held a third more, and
	// twice as much while growing); only device mode needs the device's
	// peer set.
	onDevice := r.cfg.Mode == ModeDevice
	expect := func(n int) {
		d.Managed = make([]wgconf.Peer, 0, n)
		if onDevice {
			d.Device = make([]device.Peer, 0, n+len(hand))
			d.onDevice = make(map[int64]wgtypes.Key, n)
		}
	}
	var err error
	d.Revision, err = r.store.DesiredPeers(ctx, r.cfg.ServerID, expect, func(p postgres.SealedPeer) error {
		r.rowsRead.Add(1)
		fp, dp, err := r.peer(p)
		if err != nil {
			return err
		}
		allowed := fp.AllowedIPs
		d.Managed = append(d.Managed, fp)
		if taken[allowed[0]] {
			d.Warnings = append(d.Warnings, fmt.Sprintf("wgbot peer %d has %s, which a hand-made peer of wg0.conf also uses: "+
				"it stays off the device until one of them moves", p.ID, allowed[0]))
			return nil
		}
		if onDevice {
			d.Device = append(d.Device, dp)
			d.onDevice[p.ID] = dp.PublicKey
		}
		return nil
	})
	if err != nil {
		return d, err
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
	if r.cfg.Mode == ModeNode {
		return p, errNodeApplies(r.cfg.ServerID)
	}
	if r.cfg.Mode == ModeNone {
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
	after.AdoptUnmanaged(p.adopt)
	if err := after.SetManagedPeers(p.Managed); err != nil {
		return p, err
	}
	p.FileRewrite = r.cfg.Mode != ModeNone && !bytes.Equal(p.File.Render(), after.Render())
	if r.cfg.Mode != ModeDevice {
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
