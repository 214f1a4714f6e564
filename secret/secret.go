// Package secret seals client private keys and preshared keys at rest with
// AES-256-GCM under the operator's master key. Each sealed value records
// which key sealed it, so the master key can be rotated without downtime.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Keyring holds the current master key, used to seal, and older keys still
// accepted to open values sealed before a rotation.
type Keyring struct {
	currentID string
	aeads     map[string]cipher.AEAD
}

// NewKeyring builds a keyring; every key must be 32 bytes.
func NewKeyring(current []byte, older ...[]byte) (*Keyring, error) {
	k := &Keyring{aeads: map[string]cipher.AEAD{}}
	for i, key := range append([][]byte{current}, older...) {
		if len(key) != 32 {
			return nil, fmt.Errorf("master key %d: want 32 bytes, got %d", i, len(key))
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		id := KeyID(key)
		if i == 0 {
			k.currentID = id
		}
		k.aeads[id] = aead
	}
	return k, nil
}

// KeyID names a key without revealing it: a short hash stored next to each
// sealed value.
func KeyID(key []byte) string {
	sum := sha256.Sum256(append([]byte("wgbot master key id\x00"), key...))
	return hex.EncodeToString(sum[:8])
}

// CurrentID is the id of the key Seal uses.
func (k *Keyring) CurrentID() string { return k.currentID }

// Seal encrypts plain under the current key. context is authenticated but
// not stored (the peer's public key), so a sealed value copied onto another
// row does not open.
func (k *Keyring) Seal(plain, context []byte) (sealed []byte, keyID string, err error) {
	aead := k.aeads[k.currentID]
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, "", err
	}
	return aead.Seal(nonce, nonce, plain, context), k.currentID, nil
}

// Open decrypts a value sealed by Seal under the key named keyID.
func (k *Keyring) Open(sealed []byte, keyID string, context []byte) ([]byte, error) {
	aead, ok := k.aeads[keyID]
	if !ok {
		return nil, fmt.Errorf("value sealed with master key %s, which is not configured (see MASTER_KEY_OLD)", keyID)
	}
	if len(sealed) < aead.NonceSize() {
		return nil, errors.New("sealed value is truncated")
	}
	plain, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], context)
	if err != nil {
		return nil, fmt.Errorf("open sealed value with master key %s: %w", keyID, err)
	}
	return plain, nil
}

// LoadOrCreateKeyFile reads a base64 master key from path, or, on first run,
// creates the file (0600; two processes starting at once agree on one key)
// with a fresh random key. Back this file up: without it no client config
// can be shown again.
func LoadOrCreateKeyFile(path string) (key []byte, created bool, err error) {
	key, err = readKeyFile(path)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return key, false, err
	}
	key = make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, false, err
	}
	// If another process created the file first, we use its key.
	won, err := linkKeyFile(path, ".master.key-*", key)
	if err != nil {
		return nil, false, fmt.Errorf("create master key file %s: %w", path, err)
	}
	if !won {
		key, err = readKeyFile(path)
		return key, false, err
	}
	return key, true, nil
}

func readKeyFile(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("master key file %s: want 32 bytes in base64", path)
	}
	return key, nil
}
