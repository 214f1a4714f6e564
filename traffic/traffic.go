// Package traffic collects what each peer of a WireGuard device sent and
// received into the database's month totals. It runs wherever the device
// is owned: in `wgbot node`, and in `wgbot serve` on a single host in
// device mode.
package traffic

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"log/slog"
	"maps"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"wgbot/gctight"
	"wgbot/postgres"
	"wgbot/wireguard/device"
)

// DefaultInterval is USAGE_INTERVAL's default.
const DefaultInterval = time.Minute

// Device reads a WireGuard device; *device.Control is one, which reads
// it as a stream.
type Device = device.Reader

// Store records a collection; *postgres.Store is one. It must not keep
// samples after the call: the collector fills the slice again.
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
// them to the month totals: one device read, and one write per
// writeBatch peers that moved, per collection.
type Collector struct {
	dev   Device
	store Store
	cfg   Config
	log   *slog.Logger
	// last is what the recorded collections wrote for each peer on the
	// device: a peer whose counters and handshake did not move is not
	// written again, so idle peers cost the database nothing. Empty after
	// a start.
	last map[peerID]seen
	pass uint64 // the collection under way, counted from 1
	seed maphash.Seed
}

// peerID is the first 8 bytes of a peer's public key, which are random,
// and seen keeps a hash of its counters: at 50,000 peers the whole key and
// counters made a 7 MB map, this is 2 MB. Two peers that share an id
// (chances of one in 2^64 for a pair) are written on every collection,
// and a move whose hash equals the last one's is written one collection
// later: the counters written are the device's own totals, and the
// database adds only what grew, so neither loses or counts a byte twice.
type peerID uint64

func idOf(k *wgtypes.Key) peerID { return peerID(binary.LittleEndian.Uint64(k[:8])) }

type seen struct {
	counters uint64 // the hash of the counters last written
	pass     uint64 // the last collection that found the peer on the device
}

type counters struct{ rx, tx, handshake int64 }

func countersOf(p *wgtypes.Peer) counters {
	c := counters{rx: p.ReceiveBytes, tx: p.TransmitBytes}
	if !p.LastHandshakeTime.IsZero() {
		c.handshake = p.LastHandshakeTime.UnixNano()
	}
	return c
}

// moved is a peer whose counters are to be written, with their hash.
type moved struct {
	key wgtypes.Key
	counters
	sum uint64
}

// writeBatch is how many peers one RecordUsage call writes: the first
// collection after a start writes every peer, and 50,000 at once made a
// 10 MB statement.
const writeBatch = 4096

// New returns a Collector; Run starts it.
func New(dev Device, store Store, cfg Config, log *slog.Logger) *Collector {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	return &Collector{dev: dev, store: store, cfg: cfg, log: log, last: map[peerID]seen{},
		seed: maphash.MakeSeed()}
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

// Collect reads the device once, peer by peer, and records the peers that
// changed since the last recorded collection. It returns how many peers it
// wrote, or an error: then the batches before the failed one are
// recorded, and the peers of the others are written again by the next
// collection, with every peer that moved meanwhile.
func (c *Collector) Collect(ctx context.Context) (int, error) {
	defer gctight.Begin()()
	c.pass++
	// The peers that moved, in batches of writeBatch, each made whole: the
	// first collection after a start holds every peer, and one slice
	// grown by appending churned five times its size.
	var batches [][]moved
	changed := 0
	_, err := device.Peers(c.dev, c.cfg.Interface, func(p *wgtypes.Peer) {
		now, id := countersOf(p), idOf(&p.PublicKey)
		sum := maphash.Comparable(c.seed, now)
		prev, ok := c.last[id]
		if ok {
			prev.pass = c.pass
			c.last[id] = prev
		}
		if !ok || prev.counters != sum {
			if changed%writeBatch == 0 {
				batches = append(batches, make([]moved, 0, writeBatch))
			}
			last := &batches[len(batches)-1]
			*last = append(*last, moved{p.PublicKey, now, sum})
			changed++
		}
	})
	if err != nil {
		return 0, fmt.Errorf("read wireguard interface %s for traffic: %w", c.cfg.Interface, err)
	}
	at := time.Now()
	if changed == 0 {
		batches = [][]moved{nil} // an empty write still records that the device was read
	}
	samples := make([]postgres.PeerSample, 0, min(changed, writeBatch))
	for _, batch := range batches {
		samples = samples[:0]
		for _, m := range batch {
			s := postgres.PeerSample{PublicKey: m.key.String(), Received: m.rx, Transmitted: m.tx}
			if m.handshake != 0 {
				s.LastHandshake = time.Unix(0, m.handshake)
			}
			samples = append(samples, s)
		}
		if err := c.store.RecordUsage(ctx, c.cfg.ServerID, at, samples); err != nil {
			return 0, err
		}
		for _, m := range batch {
			c.last[idOf(&m.key)] = seen{m.sum, c.pass}
		}
	}
	// Peers gone from the device drop out; one that comes back is written
	// again, and its counters, lower than before, count as a reset.
	maps.DeleteFunc(c.last, func(_ peerID, s seen) bool { return s.pass != c.pass })
	return changed, nil
}
