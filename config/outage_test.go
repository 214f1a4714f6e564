package config

import (
	"os"
	"testing"
	"time"
)

// OUTAGE_CREDIT_AFTER is a duration, 30 minutes unless set; off or 0
// turns the credit off, and anything else is refused by name.
func TestOutageCreditAfter(t *testing.T) {
	for raw, want := range map[string]time.Duration{"": 30 * time.Minute, "45s": 45 * time.Second, "2h": 2 * time.Hour,
		"off": 0, "OFF": 0, "0": 0} {
		s, err := Load(env(map[string]string{"OUTAGE_CREDIT_AFTER": raw}), os.DevNull)
		if err != nil || s.OutageCreditAfter != want {
			t.Errorf("OUTAGE_CREDIT_AFTER=%q: %v, %v; want %v", raw, s.OutageCreditAfter, err, want)
		}
	}
	for _, raw := range []string{"soon", "-5m", "30"} {
		if _, err := Load(env(map[string]string{"OUTAGE_CREDIT_AFTER": raw}), os.DevNull); !IsConfigError(err) {
			t.Errorf("OUTAGE_CREDIT_AFTER=%q: %v, want a settings error", raw, err)
		}
	}
}
