package secret

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"wgbot"
)

// A preshared key sealed to a node opens with that node's key only, for
// the peer it was sealed for only; the zero key (an imported peer without
// one) round-trips too.
func TestSealToNode(t *testing.T) {
	node, _ := GenerateNodeKey()
	other, _ := GenerateNodeKey()
	psk, _ := wgtypes.GenerateKey()
	peer, _ := wgtypes.GeneratePrivateKey()
	pub := peer.PublicKey().String()
	sealed, err := SealToNode(node.PublicKey(), pub, psk)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(sealed), string(psk[:])) {
		t.Fatal("the sealed value contains the preshared key")
	}
	keys := NewNodeKeys(node)
	got, err := keys.OpenPresharedKey(wgbot.PeerSecrets{PublicKey: pub, NodeSealed: sealed, NodeKey: node.PublicKey()})
	if err != nil || got != psk {
		t.Fatalf("open with the node's key: %v %v", got, err)
	}
	otherPeer, _ := wgtypes.GeneratePrivateKey()
	flipped := append([]byte{}, sealed...)
	flipped[40] ^= 1
	for name, sec := range map[string]wgbot.PeerSecrets{
		"other node's key":      {PublicKey: pub, NodeSealed: sealed, NodeKey: node.PublicKey()},
		"other row":             {PublicKey: otherPeer.PublicKey().String(), NodeSealed: sealed, NodeKey: node.PublicKey()},
		"flipped bit":           {PublicKey: pub, NodeSealed: flipped, NodeKey: node.PublicKey()},
		"truncated":             {PublicKey: pub, NodeSealed: sealed[:20], NodeKey: node.PublicKey()},
		"not sealed to a node":  {PublicKey: pub},
		"sealed to another key": {PublicKey: pub, NodeSealed: sealed, NodeKey: other.PublicKey()},
	} {
		ring := keys
		if name == "other node's key" {
			ring = NewNodeKeys(other)
			ring.current.public = node.public // claims the right public key, holds the wrong private one
		}
		if _, err := ring.OpenPresharedKey(sec); err == nil {
			t.Errorf("%s: opened", name)
		}
	}
	if _, err := keys.OpenPresharedKey(wgbot.PeerSecrets{PublicKey: pub}); !errors.Is(err, ErrNotSealedToNode) {
		t.Errorf("an unsealed peer: %v, want ErrNotSealedToNode", err)
	}
	zero, _ := SealToNode(node.PublicKey(), pub, wgtypes.Key{})
	if got, err := keys.OpenPresharedKey(wgbot.PeerSecrets{PublicKey: pub, NodeSealed: zero, NodeKey: node.PublicKey()}); err != nil || got != (wgtypes.Key{}) {
		t.Errorf("the zero key: %v %v", got, err)
	}
	if _, err := SealToNode("not a key", pub, psk); err == nil {
		t.Error("a malformed node key was accepted")
	}
}

// During a rotation the node opens values sealed to either key; once the
// previous key is forgotten, only those sealed to the new one.
func TestNodeKeysRotate(t *testing.T) {
	old, _ := GenerateNodeKey()
	next, _ := GenerateNodeKey()
	psk, _ := wgtypes.GenerateKey()
	sealedOld, _ := SealToNode(old.PublicKey(), "peer", psk)
	sealedNew, _ := SealToNode(next.PublicKey(), "peer", psk)
	keys := NewNodeKeys(old)
	keys.Rotate(next)
	if keys.Current() != next {
		t.Fatal("Rotate did not make the new key current")
	}
	for _, sec := range []wgbot.PeerSecrets{{PublicKey: "peer", NodeSealed: sealedOld, NodeKey: old.PublicKey()},
		{PublicKey: "peer", NodeSealed: sealedNew, NodeKey: next.PublicKey()}} {
		if got, err := keys.OpenPresharedKey(sec); err != nil || got != psk {
			t.Fatalf("during the rotation: %v %v", got, err)
		}
	}
	if !keys.ForgetPrevious() || keys.ForgetPrevious() {
		t.Fatal("ForgetPrevious does not report the previous key once")
	}
	if _, err := keys.OpenPresharedKey(wgbot.PeerSecrets{PublicKey: "peer", NodeSealed: sealedOld, NodeKey: old.PublicKey()}); err == nil {
		t.Fatal("the forgotten key still opens")
	}
}

// The node key file is created once, 0600, whatever the number of
// processes starting at once; a file others may read, a malformed one or
// a directory is refused; ReplaceNodeKey swaps it whole.
func TestLoadOrCreateNodeKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "node.key")
	var wg sync.WaitGroup
	keys := make([]NodeKey, 8)
	created := make([]bool, 8)
	for i := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if keys[i], created[i], err = LoadOrCreateNodeKey(path); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	n := 0
	for i := range keys {
		if created[i] {
			n++
		}
		if keys[i] != keys[0] {
			t.Fatal("callers got different keys")
		}
	}
	if n != 1 {
		t.Fatalf("%d callers created the key file", n)
	}
	if info, err := os.Stat(path); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("node key file mode: %v %v", info.Mode(), err)
	}
	again, created2, err := LoadOrCreateNodeKey(path)
	if err != nil || created2 || again != keys[0] {
		t.Fatalf("reloading: %v %v %v", created2, err, again == keys[0])
	}

	next, _ := GenerateNodeKey()
	if err := ReplaceNodeKey(path, next); err != nil {
		t.Fatal(err)
	}
	if got, _, err := LoadOrCreateNodeKey(path); err != nil || got != next {
		t.Fatalf("after ReplaceNodeKey: %v", err)
	}
	if info, _ := os.Stat(path); info.Mode().Perm() != 0o600 {
		t.Fatalf("replaced file mode %v", info.Mode())
	}

	os.Chmod(path, 0o644)
	if _, _, err := LoadOrCreateNodeKey(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a world-readable key file: %v", err)
	}
	os.Chmod(path, 0o600)
	os.WriteFile(path, []byte("short\n"), 0o600)
	if _, _, err := LoadOrCreateNodeKey(path); err == nil {
		t.Fatal("a malformed key file was accepted")
	}
	if got, _ := os.ReadFile(path); string(got) != "short\n" {
		t.Fatal("a malformed key file was overwritten")
	}
	dir := filepath.Join(t.TempDir(), "node.key")
	os.Mkdir(dir, 0o700)
	if _, _, err := LoadOrCreateNodeKey(dir); err == nil {
		t.Fatal("a directory was accepted as the key file")
	}
}
