package gctight

import (
	"runtime/debug"
	"sync"
	"testing"
)

// Overlapping holders lower the GC target once and the last one restores
// it; a target already lower, or GC off, is left alone.
func TestTightenGC(t *testing.T) {
	was := debug.SetGCPercent(100)
	defer debug.SetGCPercent(was)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			restore := Begin()
			if got := debug.SetGCPercent(Percent); got != Percent {
				t.Errorf("while held GOGC is %d, want %d", got, Percent)
			}
			restore()
		})
	}
	wg.Wait()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("after every holder GOGC is %d, want 100 back", got)
	}
	for _, v := range []int{-1, 10} {
		debug.SetGCPercent(v)
		restore := Begin()
		if got := debug.SetGCPercent(v); got != v {
			t.Errorf("GOGC %d became %d", v, got)
		}
		restore()
		if got := debug.SetGCPercent(v); got != v {
			t.Errorf("GOGC %d restored as %d", v, got)
		}
	}
}
