// Package gctight keeps the moments a process holds a whole server's
// peers (a full reconcile, a read of the whole device) from adding up:
// they take turns, and the GC target is lowered while one runs.
package gctight

import "runtime/debug"

// Percent is the GC target (GOGC) between Begin and its restore. A full
// reconcile holds the database's peers, wg0.conf parsed and rendered, and
// the device's changes at once; a traffic collection holds the whole
// device as wgctrl parsed it and the rows of its write. With the default
// target of 100 the heap could grow to twice that before a collection:
// the peak memory of a start with 50,000 peers was 177 MB against 95 MB
// held after it; at 25 the first traffic collection still reached 127 MB,
// at 10 108 MB. Collecting more often for those moments costs a little
// CPU once a resync or a collection, and nothing in between.
const Percent = 10

// turn is held by the one whole-server operation running in this process.
// Run side by side, the first traffic collection after a start and the
// end of the cold-start reconcile held two copies of 50,000 peers: the
// peak memory was 147 MB against 97 MB held after it.
var turn = make(chan struct{}, 1)

// Begin waits for its turn, then lowers the GC target to Percent until
// restore is called, unless it is already lower or off (GOGC=off). A
// holder must not call Begin again before restoring.
func Begin() (restore func()) {
	turn <- struct{}{}
	return tighten()
}

// TryBegin is Begin without the wait: it reports false, and holds
// nothing, while another operation has the turn. A heartbeat uses it to
// skip a device read rather than be late.
func TryBegin() (restore func(), ok bool) {
	select {
	case turn <- struct{}{}:
		return tighten(), true
	default:
		return nil, false
	}
}

func tighten() (restore func()) {
	was := debug.SetGCPercent(Percent)
	if was < 0 || was <= Percent {
		debug.SetGCPercent(was)
	}
	return func() {
		// Collect first: the target is a factor of the heap the last
		// collection found live, which was found while the peers were
		// held. Restored without it, the next collection would wait for a
		// heap of twice that (176 MB after a start at 50,000 peers). The
		// pages the peers held go back to the system at once, rather than
		// over minutes as the runtime's scavenger would.
		debug.FreeOSMemory()
		debug.SetGCPercent(was)
		<-turn
	}
}
