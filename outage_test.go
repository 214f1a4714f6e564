package wgbot

import (
	"testing"
	"time"
)

func TestOutageCredit(t *testing.T) {
	for _, c := range []struct {
		name            string
		downtime, after time.Duration
		want            time.Duration
	}{
		{"credit off", 3 * time.Hour, 0, 0},
		{"shorter than the threshold", 29 * time.Minute, 30 * time.Minute, 0},
		{"exactly the threshold", 30 * time.Minute, 30 * time.Minute, 30 * time.Minute},
		{"rounded up to the minute", 42*time.Minute + time.Second, 30 * time.Minute, 43 * time.Minute},
		{"a few seconds past a short threshold", 5 * time.Second, 3 * time.Second, time.Minute},
		{"hours", 5*time.Hour + 59*time.Minute + 59*time.Second, 30 * time.Minute, 6 * time.Hour},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := OutageCredit(c.downtime, c.after); got != c.want {
				t.Errorf("OutageCredit(%v, %v) = %v, want %v", c.downtime, c.after, got, c.want)
			}
		})
	}
}
