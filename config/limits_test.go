package config

import (
	"os"
	"strings"
	"testing"
)

// TestUserLimits: the per-user limit defaults to a burst of 10 and 2 a
// second; nonsense in either is refused, naming both at once.
func TestUserLimits(t *testing.T) {
	s, err := Load(env(nil), os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	if s.UserBurst != 10 || s.UserRate != 2 {
		t.Errorf("defaults: burst %d, rate %d; want 10, 2", s.UserBurst, s.UserRate)
	}
	s, err = Load(env(map[string]string{"USER_BURST": "30", "USER_RATE": "5"}), os.DevNull)
	if err != nil || s.UserBurst != 30 || s.UserRate != 5 {
		t.Errorf("USER_BURST=30 USER_RATE=5: %d, %d, %v", s.UserBurst, s.UserRate, err)
	}
	_, err = Load(env(map[string]string{"USER_BURST": "0", "USER_RATE": "fast"}), os.DevNull)
	if !IsConfigError(err) || !strings.Contains(err.Error(), "USER_BURST") || !strings.Contains(err.Error(), "USER_RATE") {
		t.Errorf("bad limits: %v, want an error naming USER_BURST and USER_RATE", err)
	}
}
