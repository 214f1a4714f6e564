package secret

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func key(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func TestSealOpen(t *testing.T) {
	ring, err := NewKeyring(key(1))
	if err != nil {
		t.Fatal(err)
	}
	sealed, id, err := ring.Seal([]byte("private"), []byte("pub"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("private")) {
		t.Fatal("sealed value contains the plain text")
	}
	tests := []struct {
		name    string
		sealed  []byte
		id, ctx string
		ok      bool
	}{
		{"right key and context", sealed, id, "pub", true},
		{"other row's context", sealed, id, "other", false},
		{"unknown key id", sealed, "0000", "pub", false},
		{"flipped bit", append(append([]byte{}, sealed[:20]...), append([]byte{sealed[20] ^ 1}, sealed[21:]...)...), id, "pub", false},
		{"truncated", sealed[:5], id, "pub", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plain, err := ring.Open(tt.sealed, tt.id, []byte(tt.ctx))
			if tt.ok != (err == nil) || (tt.ok && string(plain) != "private") {
				t.Fatalf("Open = %q, %v", plain, err)
			}
		})
	}
}

func TestRotation(t *testing.T) {
	old, _ := NewKeyring(key(1))
	sealed, oldID, _ := old.Seal([]byte("k"), nil)
	rotated, err := NewKeyring(key(2), key(1))
	if err != nil {
		t.Fatal(err)
	}
	if rotated.CurrentID() == oldID {
		t.Fatal("new key has the old id")
	}
	if plain, err := rotated.Open(sealed, oldID, nil); err != nil || string(plain) != "k" {
		t.Fatalf("old value after rotation: %q %v", plain, err)
	}
	if _, id, _ := rotated.Seal([]byte("k"), nil); id != rotated.CurrentID() {
		t.Fatal("Seal did not use the current key")
	}
}

func TestLoadOrCreateKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "master.key")
	var wg sync.WaitGroup
	keys := make([][]byte, 8)
	created := make([]bool, 8)
	for i := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			keys[i], created[i], err = LoadOrCreateKeyFile(path)
			if err != nil {
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
		if !bytes.Equal(keys[i], keys[0]) {
			t.Fatal("callers got different keys")
		}
	}
	if n != 1 {
		t.Fatalf("%d callers created the key file", n)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v %v", info.Mode(), err)
	}
	os.WriteFile(path, []byte("short"), 0o600)
	if _, _, err := LoadOrCreateKeyFile(path); err == nil {
		t.Fatal("a corrupt key file was accepted")
	}
}
