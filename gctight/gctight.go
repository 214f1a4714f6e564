// Package gctight lowers the GC target for the moments a process holds a
// whole server's peers several times over: a full reconcile, a read of the
// whole device.
package gctight

import (
	"runtime"
	"runtime/debug"
	"sync"
)

// Percent is the GC target (GOGC) between Begin and its restore. A full
// reconcile holds the database's peers, wg0.conf parsed and rendered, and
// the device's changes at once; a traffic collection holds the whole
// device as wgctrl parsed it and the rows of its write. With the default
// target of 100 the heap could grow to twice that before a collection:
// the peak memory of a start with 50,000 peers was 177 MB against 95 MB
// held after it. Collecting more often for those moments costs a little
// CPU, and nothing in between.
const Percent = 25

var tightGC struct {
	sync.Mutex
	n   int // holders in this process
	was int // the GC target before the first of them
}

// Begin lowers the GC target to Percent until restore is called, unless
// it is already lower or off (GOGC=off). Holders may overlap: the last one
// out runs a collection and restores the target.
func Begin() (restore func()) {
	tightGC.Lock()
	defer tightGC.Unlock()
	if tightGC.n == 0 {
		tightGC.was = debug.SetGCPercent(Percent)
		if tightGC.was < 0 || tightGC.was <= Percent {
			debug.SetGCPercent(tightGC.was)
		}
	}
	tightGC.n++
	return func() {
		tightGC.Lock()
		defer tightGC.Unlock()
		if tightGC.n--; tightGC.n == 0 {
			// Collect first: the target is a factor of the heap the last
			// collection found live, which was found while the peers were
			// held. Restored without it, the next collection would wait for
			// a heap of twice that (176 MB after a start at 50,000 peers).
			runtime.GC()
			debug.SetGCPercent(tightGC.was)
		}
	}
}
