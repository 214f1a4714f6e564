package wgconf

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

var benchSizes = []int{1_000, 10_000, 50_000}

func benchPeers(n int) []Peer {
	peers := make([]Peer, n)
	for i := range peers {
		peers[i] = peerFor(fmt.Sprintf("%06d", i), i)
	}
	return peers
}

// benchFile is the server config with n managed peers.
func benchFile(b *testing.B, n int) []byte {
	f := mustParse(b, mustReadFile(b, "testdata/server-iptables.conf"))
	if err := f.SetManagedPeers(benchPeers(n)); err != nil {
		b.Fatal(err)
	}
	return f.Render()
}

// BenchmarkRender measures rendering a file whose managed peers were set.
func BenchmarkRender(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("peers=%d", n), func(b *testing.B) {
			f := mustParse(b, benchFile(b, n))
			if err := f.SetManagedPeers(f.ManagedPeers()); err != nil {
				b.Fatal(err)
			}
			size := len(f.Render())
			b.SetBytes(int64(size))
			b.ReportMetric(float64(size), "bytes/file")
			for b.Loop() {
				f.Render()
			}
		})
	}
}

// BenchmarkParse measures parsing a file with n managed peers.
func BenchmarkParse(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("peers=%d", n), func(b *testing.B) {
			data := benchFile(b, n)
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := Parse(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkWrite measures one whole change as the reconciler makes it: lock,
// read, parse, set the managed peers (one peer more or less than the file
// holds), render, write, fsync, rename, fsync the directory, unlock.
func BenchmarkWrite(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("peers=%d", n), func(b *testing.B) {
			cfg := filepath.Join(b.TempDir(), "wg0.conf")
			writeTestFile(b, cfg, benchFile(b, n), 0o600)
			w, err := NewWriter(Config{Path: cfg, LockTimeout: 10 * time.Second})
			if err != nil {
				b.Fatal(err)
			}
			with := benchPeers(n + 1)
			without := with[:n]
			ctx := context.Background()
			i := 0
			for b.Loop() {
				peers := without
				if i%2 == 0 {
					peers = with
				}
				i++
				changed, err := w.SetManagedPeers(ctx, peers)
				if err != nil || !changed {
					b.Fatalf("changed %v, err %v", changed, err)
				}
			}
			written := int64(len(mustReadFile(b, cfg)))
			b.SetBytes(written)
			b.ReportMetric(float64(written), "bytes/write")
		})
	}
}

// BenchmarkWriteFileAtomic measures the atomic replacement alone.
func BenchmarkWriteFileAtomic(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("peers=%d", n), func(b *testing.B) {
			cfg := filepath.Join(b.TempDir(), "wg0.conf")
			data := benchFile(b, n)
			b.SetBytes(int64(len(data)))
			b.ReportMetric(float64(len(data)), "bytes/write")
			for b.Loop() {
				if err := WriteFileAtomic(cfg, data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkUpdateCached measures one change as the incremental reconciler
// makes it in file mode: lock, the cached File (no read, no parse), one peer
// added or removed, render, write, fsync, rename, fsync the directory,
// unlock. Its cost is what an issuance waits for in file mode.
func BenchmarkUpdateCached(b *testing.B) {
	for _, n := range append([]int{0}, benchSizes...) {
		b.Run(fmt.Sprintf("peers=%d", n), func(b *testing.B) {
			cfg := filepath.Join(b.TempDir(), "wg0.conf")
			writeTestFile(b, cfg, benchFile(b, n), 0o600)
			w, err := NewWriter(Config{Path: cfg, LockTimeout: 10 * time.Second})
			if err != nil {
				b.Fatal(err)
			}
			var cache Cache
			extra := peerFor(fmt.Sprintf("%06d", n), n)
			ctx := context.Background()
			i := 0
			for b.Loop() {
				i++
				changed, err := w.UpdateCached(ctx, &cache, func(f *File, _ bool) error {
					if i%2 == 1 {
						return f.PutManagedPeer(extra)
					}
					f.RemoveManagedPeer(extra.ID)
					return nil
				}, nil)
				if err != nil || !changed {
					b.Fatalf("changed %v, err %v", changed, err)
				}
			}
		})
	}
}
