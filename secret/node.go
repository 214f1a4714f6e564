package secret

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/crypto/curve25519"
	"golang.org/x/crypto/nacl/box"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"wgbot"
)

// A node key is a WireGuard host's own X25519 key pair. Serve seals each
// peer's preshared key to the public half of its server's node key (an
// anonymous NaCl box), so the node opens its own peers' preshared keys
// without the master key, and nothing else.

// NodeKey is a node's key pair.
type NodeKey struct {
	private, public [32]byte
}

// GenerateNodeKey makes a fresh node key pair.
func GenerateNodeKey() (NodeKey, error) {
	pub, priv, err := box.GenerateKey(rand.Reader)
	if err != nil {
		return NodeKey{}, fmt.Errorf("generate a node key: %w", err)
	}
	return NodeKey{private: *priv, public: *pub}, nil
}

func nodeKeyFromPrivate(priv []byte) (NodeKey, error) {
	var k NodeKey
	if len(priv) != 32 {
		return k, fmt.Errorf("want 32 bytes, got %d", len(priv))
	}
	copy(k.private[:], priv)
	pub, err := curve25519.X25519(k.private[:], curve25519.Basepoint)
	if err != nil {
		return k, err
	}
	copy(k.public[:], pub)
	return k, nil
}

// PublicKey is the public half in base64, as the server row stores it.
func (k NodeKey) PublicKey() string { return base64.StdEncoding.EncodeToString(k.public[:]) }

// ParseNodePublicKey checks a base64 node public key.
func ParseNodePublicKey(s string) (*[32]byte, error) {
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(raw) != 32 {
		return nil, fmt.Errorf("node public key %q: want 32 bytes in base64", s)
	}
	var pub [32]byte
	copy(pub[:], raw)
	return &pub, nil
}

// SealToNode seals a peer's preshared key to a node's public key. The
// peer's public key is sealed with it and checked on opening, so a sealed
// value copied onto another row does not open. A peer without a
// preshared key (imported) is sealed as the zero key, which WireGuard
// reads as "none".
func SealToNode(nodePublicKey, peerPublicKey string, psk wgtypes.Key) ([]byte, error) {
	pub, err := ParseNodePublicKey(nodePublicKey)
	if err != nil {
		return nil, err
	}
	plain := append(psk[:], peerPublicKey...)
	sealed, err := box.SealAnonymous(nil, plain, pub, rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("seal to node key %s: %w", nodePublicKey, err)
	}
	return sealed, nil
}

// open opens what SealToNode sealed for the peer peerPublicKey.
func (k NodeKey) open(sealed []byte, peerPublicKey string) (wgtypes.Key, error) {
	var psk wgtypes.Key
	plain, ok := box.OpenAnonymous(nil, sealed, &k.public, &k.private)
	if !ok || len(plain) != len(psk)+len(peerPublicKey) || !bytes.Equal(plain[len(psk):], []byte(peerPublicKey)) {
		return psk, fmt.Errorf("preshared key does not open with node key %s", k.PublicKey())
	}
	copy(psk[:], plain)
	return psk, nil
}

// ErrNotSealedToNode: a peer's preshared key is not (yet) sealed to this
// node's key. Serve seals it within seconds of the key's registration.
var ErrNotSealedToNode = errors.New("preshared key not sealed to this node's key yet (a `wgbot serve`, which holds the master key, seals it)")

// NodeKeys opens preshared keys on a node: with its current key, and
// during a rotation with the previous one too, until serve has re-sealed
// every peer to the new key; then the previous key is forgotten.
type NodeKeys struct {
	mu       sync.RWMutex
	current  NodeKey
	previous *NodeKey
}

// NewNodeKeys is a node's keys, holding key.
func NewNodeKeys(key NodeKey) *NodeKeys { return &NodeKeys{current: key} }

// Current is the key the node registers.
func (n *NodeKeys) Current() NodeKey {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.current
}

// Rotate makes next the current key and keeps the old one for opening
// until ForgetPrevious.
func (n *NodeKeys) Rotate(next NodeKey) {
	n.mu.Lock()
	defer n.mu.Unlock()
	old := n.current
	n.current, n.previous = next, &old
}

// ForgetPrevious drops the key a rotation replaced; it reports whether
// there was one.
func (n *NodeKeys) ForgetPrevious() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	had := n.previous != nil
	n.previous = nil
	return had
}

// OpenPresharedKey opens a peer's preshared key sealed to this node; the
// reconciler of a `wgbot node` calls it instead of the master keyring's.
func (n *NodeKeys) OpenPresharedKey(sec wgbot.PeerSecrets) (wgtypes.Key, error) {
	if sec.NodeKey == "" {
		return wgtypes.Key{}, ErrNotSealedToNode
	}
	n.mu.RLock()
	keys := []NodeKey{n.current}
	if n.previous != nil {
		keys = append(keys, *n.previous)
	}
	n.mu.RUnlock()
	for _, k := range keys {
		if k.PublicKey() == sec.NodeKey {
			return k.open(sec.NodeSealed, sec.PublicKey)
		}
	}
	return wgtypes.Key{}, fmt.Errorf("sealed to node key %s, not this node's %s: %w", sec.NodeKey, keys[0].PublicKey(), ErrNotSealedToNode)
}

// LoadOrCreateNodeKey reads the node's private key (base64) from path, or
// on first start creates the file, 0600, with a fresh key. A file that
// others may read, or that does not hold a key, is refused: the node
// stops rather than run with a key it cannot trust.
func LoadOrCreateNodeKey(path string) (key NodeKey, created bool, err error) {
	key, err = readNodeKey(path)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return key, false, err
	}
	if key, err = GenerateNodeKey(); err != nil {
		return key, false, err
	}
	won, err := linkKeyFile(path, ".node.key-*", key.private[:])
	if err != nil {
		return key, false, fmt.Errorf("create node key file %s: %w", path, err)
	}
	if !won { // another process created it first: use theirs
		key, err = readNodeKey(path)
		return key, false, err
	}
	return key, true, nil
}

// ReplaceNodeKey writes key over the node key file at path, atomically:
// the file holds the old key or the new one, never a mix.
func ReplaceNodeKey(path string, key NodeKey) error {
	f, err := writeKeyTemp(filepath.Dir(path), ".node.key-*", key.private[:])
	if err != nil {
		return fmt.Errorf("write node key file %s: %w", path, err)
	}
	defer os.Remove(f)
	if err := os.Rename(f, path); err != nil {
		return fmt.Errorf("replace node key file %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

func readNodeKey(path string) (NodeKey, error) {
	info, err := os.Stat(path)
	if err != nil {
		return NodeKey{}, err
	}
	if !info.Mode().IsRegular() {
		return NodeKey{}, fmt.Errorf("node key file %s: not a regular file", path)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return NodeKey{}, fmt.Errorf("node key file %s has mode %04o, which lets others read it: "+
			"chmod 600 %s, and rotate the key (wgbot servers rekey) if anyone may have copied it", path, perm, path)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return NodeKey{}, err
	}
	priv, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil || len(priv) != 32 {
		return NodeKey{}, fmt.Errorf("node key file %s: want a 32-byte private key in base64", path)
	}
	return nodeKeyFromPrivate(priv)
}

// linkKeyFile creates path holding key (base64), 0600, whole or not at
// all: a temp file linked into place. won is false if path existed.
func linkKeyFile(path, pattern string, key []byte) (won bool, err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return false, err
	}
	f, err := writeKeyTemp(filepath.Dir(path), pattern, key)
	if err != nil {
		return false, err
	}
	defer os.Remove(f)
	if err := os.Link(f, path); errors.Is(err, os.ErrExist) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	return true, syncDir(filepath.Dir(path))
}

// writeKeyTemp writes key in base64 to a new 0600 file in dir, synced.
func writeKeyTemp(dir, pattern string, key []byte) (string, error) {
	f, err := os.CreateTemp(dir, pattern) // 0600
	if err != nil {
		return "", err
	}
	_, err = f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
