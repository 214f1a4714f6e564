package device

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// Client is the part of *wgctrl.Client that Sync needs; *Control is one,
// which Sync reads as a stream (see Peers).
type Client interface {
	Reader
	ConfigureDevice(name string, cfg wgtypes.Config) error
}

// Result counts what Sync did. It holds no keys, so it is safe to log.
type Result struct {
	Added, Updated, Removed, Unchanged int
}

func (r Result) String() string {
	return fmt.Sprintf("added %d, updated %d, removed %d, unchanged %d",
		r.Added, r.Updated, r.Removed, r.Unchanged)
}

// Result returns the counts of c.
func (c Changes) Result() Result {
	return Result{Added: len(c.Add), Updated: len(c.Update), Removed: len(c.Remove), Unchanged: c.Unchanged}
}

// maxKeepalive is the largest interval WireGuard can store (a uint16 of seconds).
const maxKeepalive = 65535 * time.Second

// Sync makes the peers of interface iface equal to desired, which must be the
// device's whole peer set (wgbot's peers and the hand-made ones from
// wg0.conf): any other peer is removed. It reads the device once, peer by
// peer, and writes only the difference, in calls of at most syncBatch
// peers; the private key, listen port and link state are never touched,
// and unchanged peers keep their sessions.
//
// If the write fails part-way the device may hold some of the changes; the
// next Sync reads it afresh and finishes the job. Calls for one interface
// must not overlap: two read-diff-write rounds interleaved can apply a stale
// diff, so the caller (the reconciler) serializes them.
func Sync(client Client, iface string, desired []Peer) (Result, error) {
	if err := validate(desired); err != nil {
		return Result{}, fmt.Errorf("sync wireguard interface %s: %w", iface, err)
	}
	d := newDiffer(desired)
	if _, err := Peers(client, iface, d.see); err != nil {
		return Result{}, deviceError("read", iface, err)
	}
	changes := d.plan()
	res := changes.result()
	n := res.Added + res.Updated + res.Removed
	if n == 0 {
		return res, nil
	}
	// In batches of syncBatch, in Config's order (removals first), each
	// built when it is sent: filling an empty device with 50,000 peers in
	// one call made wgctrl build a 16 MB request in memory at once, for no
	// gain in time.
	batch := make([]wgtypes.PeerConfig, 0, min(n, syncBatch))
	send := func() error {
		if err := client.ConfigureDevice(iface, wgtypes.Config{Peers: batch}); err != nil {
			return deviceError("configure", iface, err)
		}
		batch = batch[:0]
		return nil
	}
	for pc := range changes.configs {
		if batch = append(batch, pc); len(batch) == syncBatch {
			if err := send(); err != nil {
				return Result{}, err
			}
		}
	}
	if len(batch) > 0 {
		if err := send(); err != nil {
			return Result{}, err
		}
	}
	return res, nil
}

// syncBatch is how many peers Sync configures per ConfigureDevice call.
const syncBatch = 4096

// deviceError turns wgctrl's bare os.ErrNotExist into a message an operator
// can act on, keeping it matchable with errors.Is.
func deviceError(op, iface string, err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("wireguard interface %s not found: create it with `ip link add %s type wireguard` (kernel) or run `wireguard-go %s` (userspace): %w",
			iface, iface, iface, err)
	}
	return fmt.Errorf("%s wireguard interface %s: %w", op, iface, err)
}

// validate rejects input the device would either refuse half-way through a
// write or silently resolve in an order-dependent way.
func validate(desired []Peer) error {
	var zero wgtypes.Key
	keys := make(map[wgtypes.Key]struct{}, len(desired))
	owner := make(map[netip.Prefix]wgtypes.Key, len(desired))
	for i, p := range desired {
		if p.PublicKey == zero {
			return fmt.Errorf("peer %d: public key is empty", i)
		}
		if _, dup := keys[p.PublicKey]; dup {
			return fmt.Errorf("peer %s appears twice", p.PublicKey)
		}
		keys[p.PublicKey] = struct{}{}
		if p.PersistentKeepalive < 0 || p.PersistentKeepalive > maxKeepalive {
			return fmt.Errorf("peer %s: persistent keepalive %s is outside 0..%s", p.PublicKey, p.PersistentKeepalive, maxKeepalive)
		}
		for _, prefix := range p.AllowedIPs {
			if !prefix.IsValid() {
				return fmt.Errorf("peer %s: invalid allowed IP %q", p.PublicKey, prefix)
			}
			// WireGuard routes each prefix to exactly one peer; a second
			// claim would silently take it from the first.
			c := canonicalPrefix(prefix)
			if other, taken := owner[c]; taken && other != p.PublicKey {
				return fmt.Errorf("allowed IP %s is claimed by peers %s and %s", c, other, p.PublicKey)
			}
			owner[c] = p.PublicKey
		}
	}
	return nil
}

// Apply writes the peers in set whole (added, or replaced with exactly
// these allowed IPs, keys and keepalive) and removes the peers in remove,
// in one ConfigureDevice call, without reading the device: the hot path of
// an incremental reconcile, whose cost is the number of changed peers. Drift
// elsewhere on the device is left for Sync, which the reconciler runs on
// its resync interval.
func Apply(client Client, iface string, set []Peer, remove []wgtypes.Key) (Result, error) {
	if len(set) == 0 && len(remove) == 0 {
		return Result{}, nil
	}
	if err := validate(set); err != nil {
		return Result{}, fmt.Errorf("apply to wireguard interface %s: %w", iface, err)
	}
	cfg := wgtypes.Config{Peers: make([]wgtypes.PeerConfig, 0, len(set)+len(remove))}
	for _, k := range remove {
		cfg.Peers = append(cfg.Peers, wgtypes.PeerConfig{PublicKey: k, Remove: true})
	}
	for i := range set {
		cfg.Peers = append(cfg.Peers, addConfig(&set[i]))
	}
	if err := client.ConfigureDevice(iface, cfg); err != nil {
		return Result{}, deviceError("configure", iface, err)
	}
	return Result{Added: len(set), Removed: len(remove)}, nil
}
