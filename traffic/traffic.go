// Package traffic collects what each peer of a WireGuard device sent and
// received into the database's month totals. It runs wherever the device
// is owned: in `wgbot node`, and in `wgbot serve` on a single host in
// device mode.
package traffic

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"wgbot/gctight"
	"wgbot/postgres"
)

// DefaultInterval is USAGE_INTERVAL's default.
const DefaultInterval = time.Minute

// Device reads a WireGuard device; *wgctrl.Client is one.
type Device interface {
	Device(name string) (*wgtypes.Device, error)
}

// Store records a collection; *postgres.Store is one.
type Store interface {
	RecordUsage(ctx context.Context, serverID int64, at time.Time, samples []postgres.PeerSample) error
}

// Config says which device to collect, for which server row, how often.
type Config struct {
	ServerID  int64
	Interface string
	Interval  time.Duration // zero: DefaultInterval
}

// Collector reads the device's per-peer counters on an interval and adds
// them to the month totals: one device read and one write per collection.
type Collector struct {
	dev   Device
	store Store
	cfg   Config
	log   *slog.Logger
	// last is what the last recorded collection wrote for each peer: a
	// peer whose counters and handshake did not move is not written again,
	// so idle peers cost the database nothing. Empty after a start.
	last map[wgtypes.Key]counters
}

// counters is what last keeps of a peer: at 50,000 peers a whole
// PeerSample with its key in base64 was 9 MB, this is a third of it.
type counters struct{ rx, tx, handshake int64 }

func countersOf(p *wgtypes.Peer) counters {
	c := counters{rx: p.ReceiveBytes, tx: p.TransmitBytes}
	if !p.LastHandshakeTime.IsZero() {
		c.handshake = p.LastHandshakeTime.UnixNano()
	}
	return c
}

// New returns a Collector; Run starts it.
func New(dev Device, store Store, cfg Config, log *slog.Logger) *Collector {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	return &Collector{dev: dev, store: store, cfg: cfg, log: log, last: map[wgtypes.Key]counters{}}
}

// Run collects at once and then every interval until ctx ends. A failed
// collection is logged and the next one catches up: the device's counters
// keep counting meanwhile, so nothing is lost.
func (c *Collector) Run(ctx context.Context) error {
	tick := time.NewTicker(c.cfg.Interval)
	defer tick.Stop()
	for {
		if _, err := c.Collect(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("traffic collection failed; the next one catches up", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// Collect reads the device once and records the peers that changed since
// the last recorded collection. It returns how many peers it wrote.
func (c *Collector) Collect(ctx context.Context) (int, error) {
	defer gctight.Begin()()
	d, err := c.dev.Device(c.cfg.Interface)
	if err != nil {
		return 0, fmt.Errorf("read wireguard interface %s for traffic: %w", c.cfg.Interface, err)
	}
	at := time.Now()
	changed := make([]postgres.PeerSample, 0, len(d.Peers)/4)
	seen := make(map[wgtypes.Key]counters, len(d.Peers))
	for i := range d.Peers {
		p := &d.Peers[i]
		now := countersOf(p)
		seen[p.PublicKey] = now
		if prev, ok := c.last[p.PublicKey]; !ok || prev != now {
			changed = append(changed, postgres.PeerSample{PublicKey: p.PublicKey.String(), Received: p.ReceiveBytes,
				Transmitted: p.TransmitBytes, LastHandshake: p.LastHandshakeTime})
		}
	}
	if err := c.store.RecordUsage(ctx, c.cfg.ServerID, at, changed); err != nil {
		return 0, err
	}
	// Peers gone from the device drop out; one that comes back is written
	// again, and its counters, lower than before, count as a reset.
	c.last = seen
	return len(changed), nil
}
