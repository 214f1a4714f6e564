package traffic

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"runtime"
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
}

func (s *fakeStore) RecordUsage(_ context.Context, _ int64, _ time.Time, samples []postgres.PeerSample) error {
	if s.err != nil {
		return s.err
	}
	s.writes = append(s.writes, samples)
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
