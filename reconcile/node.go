package reconcile

import (
	"context"
	"fmt"
	"time"

	"wgbot/postgres"
)

// nodePoll is how often a process in ModeNode reads the node's report
// besides its notifications: it covers notifications lost with a dropped
// connection and tells whether the node is alive.
const nodePoll = time.Second

// errNodeApplies refuses a local reconcile of a server its node runs.
func errNodeApplies(serverID int64) error {
	return fmt.Errorf("server %d is applied by its `wgbot node` (WG_APPLY_MODE=node): reconcile it there", serverID)
}

// followNode is Run in ModeNode: it applies nothing and learns from the
// servers' nodes which revision each applied, by their notifications on
// postgres.AppliedChannel and by reading their reports every nodePoll.
// Apply's waiters are woken as a node's revision moves; Status reports
// the own server's node's last heartbeat as the last success.
func (r *Reconciler) followNode(ctx context.Context) error {
	if r.listen != nil {
		go r.listenLoop(ctx, postgres.AppliedChannel, r.appliedOnNotice)
	}
	tick := time.NewTicker(nodePoll)
	defer tick.Stop()
	for {
		nodes, err := r.store.NodeStatuses(ctx)
		if ctx.Err() != nil {
			return nil
		}
		own, ok := nodes[r.cfg.ServerID]
		r.mu.Lock()
		r.lastErr = err
		if err == nil && !ok {
			r.lastErr = fmt.Errorf("no `wgbot node` has reported for server %d yet", r.cfg.ServerID)
		}
		if ok {
			r.lastOK = own.SeenAt
		}
		r.mu.Unlock()
		for id, st := range nodes {
			r.nodeApplied(id, st.Revision)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-r.kick: // Apply: a waiter arrived; read now
		}
	}
}

// nodeApplied records that server id's node applied rev and wakes the
// waiters.
func (r *Reconciler) nodeApplied(id, rev int64) {
	r.mu.Lock()
	if r.nodes == nil {
		r.nodes = map[int64]int64{}
	}
	if rev > r.nodes[id] {
		r.nodes[id] = rev
		if id == r.cfg.ServerID {
			r.applied = rev
		}
		close(r.attempts)
		r.attempts = make(chan struct{})
	}
	r.mu.Unlock()
}

// appliedOnNotice is listenLoop's reaction to the nodes' notifications.
func (r *Reconciler) appliedOnNotice(payload string) {
	if id, rev, ok := postgres.ParseApplied(payload); ok {
		r.nodeApplied(id, rev)
	}
}
