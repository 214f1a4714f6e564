package tgtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An emulator given a state file continues the update ids of the one
// before it, whether that one was closed or killed (ids are reserved in
// the file before they are handed out), as Telegram's ids keep growing
// across a bot's restarts; a bot that remembers the ids it handled must
// not mistake the next run's updates for redeliveries.
func TestUpdateIDsContinueAcrossRestarts(t *testing.T) {
	t.Parallel()
	state := filepath.Join(t.TempDir(), "update-ids")
	seen := map[int64]bool{}
	last := int64(0)
	for run := range 3 {
		s := New(testToken, WithUpdateIDFile(state))
		for range 150 { // more than one reservation
			id := s.SendText(alice, "/start")
			if seen[id] || id <= last {
				t.Fatalf("run %d handed out update id %d again (last %d)", run, id, last)
			}
			seen[id], last = true, id
		}
		if run == 1 {
			continue // as if killed: never closed
		}
		s.Close()
	}

	// Without a state file ids start at 1, as before.
	if id := newServer(t).SendText(alice, "hi"); id != 1 {
		t.Errorf("without a state file the first update id is %d, want 1", id)
	}
}

// A state file that is not a number is refused, saying which file: ids
// must never silently restart at 1.
func TestUpdateIDFileGarbled(t *testing.T) {
	t.Parallel()
	state := filepath.Join(t.TempDir(), "update-ids")
	if err := os.WriteFile(state, []byte("not a number\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := NewHandler(testToken, WithUpdateIDFile(state))
	if err == nil || !strings.Contains(err.Error(), state) {
		t.Fatalf("a garbled state file: %v", err)
	}
}

// WithFirstUpdateID raises the first id, with or without a state file, and
// never lowers it below what the file reserved.
func TestFirstUpdateID(t *testing.T) {
	t.Parallel()
	if id := newServer(t, WithFirstUpdateID(500)).SendText(alice, "hi"); id != 500 {
		t.Errorf("first id %d, want 500", id)
	}
	state := filepath.Join(t.TempDir(), "update-ids")
	s := New(testToken, WithUpdateIDFile(state))
	last := s.SendText(alice, "hi")
	s.Close()
	if id := newServer(t, WithUpdateIDFile(state), WithFirstUpdateID(1)).SendText(alice, "hi"); id <= last {
		t.Errorf("a lower first id took the emulator back to %d (last %d)", id, last)
	}
	if id := newServer(t, WithUpdateIDFile(state), WithFirstUpdateID(10_000)).SendText(alice, "hi"); id != 10_000 {
		t.Errorf("first id %d, want 10000", id)
	}
}
