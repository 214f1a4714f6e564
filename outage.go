package wgbot

import "time"

// LedgerOutage is an outage credit's row in the payments ledger, under
// ProviderOutage and the key outage:<outage id>:<subscription id>: each
// subscription gets each outage back once, ever.
const (
	LedgerOutage   = "outage"
	ProviderOutage = "outage"
)

// OutageCreditUnit is what an outage credit is rounded up to: a user is
// never given less than the downtime, and messages speak in minutes.
const OutageCreditUnit = time.Minute

// Outage is the gap between the last heartbeat of a server's node and the
// first heartbeat of the node process that came after it.
type Outage struct {
	ID        int64
	ServerID  int64
	Location  string // the server's location, else its name: what users know it by
	StartedAt time.Time
	EndedAt   time.Time
}

// Downtime is how long the server's node was gone.
func (o Outage) Downtime() time.Duration { return o.EndedAt.Sub(o.StartedAt) }

// OutageCredit is the extra time every affected subscription gets for a
// downtime: none when crediting is off (after 0) or the node was back
// sooner than after, else the downtime rounded up to OutageCreditUnit.
func OutageCredit(downtime, after time.Duration) time.Duration {
	if after <= 0 || downtime < after {
		return 0
	}
	credit := downtime.Truncate(OutageCreditUnit)
	if credit < downtime {
		credit += OutageCreditUnit
	}
	return credit
}
