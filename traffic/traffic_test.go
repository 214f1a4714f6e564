package traffic

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"runtime"
	"slices"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"wgbot/postgres"
)

type fakeDevice struct {
	peers []wgtypes.Peer
	err   error
}

func (d *fakeDevice) Device(string) (*wgtypes.Device, error) {
	if d.err != nil {
		return nil, d.err
	}
	return &wgtypes.Device{Peers: d.peers}, nil
}

type fakeStore struct {
	writes [][]postgres.PeerSample
	err    error
	calls  int
	failAt int // the call that fails with err, from 1; 0: every call while err is set
}

func (s *fakeStore) RecordUsage(_ context.Context, _ int64, _ time.Time, samples []postgres.PeerSample) error {
	s.calls++
	if s.err != nil && (s.failAt == 0 || s.failAt == s.calls) {
		return s.err
	}
	s.writes = append(s.writes, slices.Clone(samples))
	return nil
}

// A collection writes only the peers that moved since the last recorded
// one (all after a start); a failed write is sent again in full; a peer
// that left the device and came back is written again; a failed device
// read writes nothing.
func TestCollectWritesWhatMoved(t *testing.T) {
	k1, _ := wgtypes.GeneratePrivateKey()
	k2, _ := wgtypes.GeneratePrivateKey()
	hs := time.Now()
	a := wgtypes.Peer{PublicKey: k1.PublicKey(), ReceiveBytes: 10, TransmitBytes: 20, LastHandshakeTime: hs}
	b := wgtypes.Peer{PublicKey: k2.PublicKey()}
	dev, store := &fakeDevice{peers: []wgtypes.Peer{a, b}}, &fakeStore{}
	c := New(dev, store, Config{ServerID: 1, Interface: "wg0"}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	step := func(want int) {
		t.Helper()
		n, err := c.Collect(context.Background())
		if err != nil || n != want {
			t.Fatalf("Collect: %d written, %v; want %d", n, err, want)
		}
	}
	step(2) // the start: everything
	step(0) // nothing moved
	a.ReceiveBytes = 30
	dev.peers = []wgtypes.Peer{a, b}
	store.err = errors.New("database away")
	if _, err := c.Collect(context.Background()); err == nil {
		t.Fatal("a failed write was not reported")
	}
	store.err = nil
	step(1) // the move is still pending after the failure
	dev.peers = []wgtypes.Peer{a}
	step(0)
	dev.peers = []wgtypes.Peer{a, b} // b re-added
	step(1)
	dev.err = errors.New("no such device")
	if _, err := c.Collect(context.Background()); err == nil {
		t.Fatal("a failed read was not reported")
	}
	if last := store.writes[len(store.writes)-1]; len(last) != 1 || last[0].PublicKey != b.PublicKey.String() {
		t.Errorf("last write %+v, want b alone", last)
	}
}

// What the collector keeps between collections at 50,000 peers stays
// small (it was 7 MB), and a collection where nothing moved writes
// nothing; the first one writes everything, in batches.
func TestCollectorMemory(t *testing.T) {
	const n = 50000
	peers := make([]wgtypes.Peer, n)
	for i := range peers {
		k, _ := wgtypes.GenerateKey()
		peers[i] = wgtypes.Peer{PublicKey: k, ReceiveBytes: int64(i)}
	}
	store := &fakeStore{}
	c := New(&fakeDevice{peers: peers}, store, Config{ServerID: 1, Interface: "wg0"}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if got, err := c.Collect(context.Background()); err != nil || got != n {
		t.Fatalf("first collection: %d written, %v; want %d", got, err, n)
	}
	if len(store.writes) != (n+writeBatch-1)/writeBatch {
		t.Errorf("first collection in %d writes, want batches of %d", len(store.writes), writeBatch)
	}
	store.writes = nil
	runtime.GC()
	runtime.ReadMemStats(&after)
	if kept := int64(after.HeapAlloc) - int64(before.HeapAlloc); kept > 3<<20 {
		t.Errorf("the collector keeps %.1f MB for %d peers, want under 3", float64(kept)/(1<<20), n)
	}
	if got, _ := c.Collect(context.Background()); got != 0 || len(store.writes) != 1 || len(store.writes[0]) != 0 {
		t.Errorf("a collection where nothing moved wrote %d peers", got)
	}
	runtime.KeepAlive(c)
}

// A collection whose second of three batches fails keeps the first as
// recorded: the next collection writes the peers of the second and third
// batches again, and those alone.
func TestCollectRewritesFailedBatches(t *testing.T) {
	n := 2*writeBatch + 10
	peers := make([]wgtypes.Peer, n)
	for i := range peers {
		k, _ := wgtypes.GenerateKey()
		peers[i] = wgtypes.Peer{PublicKey: k, ReceiveBytes: int64(i + 1)}
	}
	store := &fakeStore{err: errors.New("database away"), failAt: 2}
	c := New(&fakeDevice{peers: peers}, store, Config{ServerID: 1, Interface: "wg0"}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if _, err := c.Collect(context.Background()); err == nil {
		t.Fatal("a failed batch was not reported")
	}
	if len(store.writes) != 1 || len(store.writes[0]) != writeBatch {
		t.Fatalf("the failed collection recorded %d batches, want the first", len(store.writes))
	}
	first := map[string]bool{}
	for _, s := range store.writes[0] {
		first[s.PublicKey] = true
	}
	store.writes = nil
	got, err := c.Collect(context.Background())
	if err != nil || got != n-writeBatch {
		t.Fatalf("the next collection wrote %d peers, %v; want the %d not yet recorded", got, err, n-writeBatch)
	}
	for _, batch := range store.writes {
		for _, s := range batch {
			if first[s.PublicKey] {
				t.Fatalf("peer %s, recorded by the first batch, was written again", s.PublicKey)
			}
		}
	}
}
