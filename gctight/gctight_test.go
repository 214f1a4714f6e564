package gctight

import (
	"runtime/debug"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Holders take turns, each with the GC target lowered while it holds the
// turn and restored after; a target already lower, or GC off, is left
// alone.
func TestTakeTurnsTightGC(t *testing.T) {
	was := debug.SetGCPercent(100)
	defer debug.SetGCPercent(was)
	var holding, most atomic.Int32
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			restore := Begin()
			n := holding.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			if got := debug.SetGCPercent(Percent); got != Percent {
				t.Errorf("while held GOGC is %d, want %d", got, Percent)
			}
			time.Sleep(time.Millisecond)
			holding.Add(-1)
			restore()
		})
	}
	wg.Wait()
	if m := most.Load(); m != 1 {
		t.Errorf("%d holders at once, want one at a time", m)
	}
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

// TryBegin does not wait: it fails while another holds the turn and
// succeeds once it is given back.
func TestTryBegin(t *testing.T) {
	restore := Begin()
	if _, ok := TryBegin(); ok {
		t.Fatal("TryBegin succeeded while the turn was held")
	}
	restore()
	again, ok := TryBegin()
	if !ok {
		t.Fatal("TryBegin failed with the turn free")
	}
	again()
}
