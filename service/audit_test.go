package service_test

import (
	"context"
	"errors"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"wgbot"
)

// An admin's change and its audit row are one transaction: neither commits
// without the other.
func TestAuditInTheChangesTransaction(t *testing.T) {
	ctx := context.Background()
	e := setup(t, "10.186.0.0/24", nil)
	u := e.user(t, 8100001)
	asCLI := func(action string, after map[string]any) context.Context {
		return wgbot.WithAudit(ctx, wgbot.AuditEntry{Source: wgbot.AuditCLI, Action: action, TargetID: u.TelegramID, After: after})
	}
	rows := func() int { return count(t, e.pool, `SELECT count(*) FROM audit_log`) }
	live := func() int {
		return count(t, e.pool, `SELECT count(*) FROM subscriptions WHERE user_id = $1 AND status = 'active'`, u.ID)
	}

	// A failure at commit, after both the change and its row are written:
	// this deferred trigger refuses a grant of 13 days.
	mustExec(t, e.pool, `CREATE FUNCTION refuse_13() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN IF NEW.after->>'days' = '13' THEN RAISE EXCEPTION 'refused at commit'; END IF; RETURN NEW; END $$`)
	mustExec(t, e.pool, `CREATE CONSTRAINT TRIGGER refuse_13 AFTER INSERT ON audit_log DEFERRABLE INITIALLY DEFERRED
		FOR EACH ROW EXECUTE FUNCTION refuse_13()`)
	if _, _, err := e.svc.Grant(asCLI("grant", map[string]any{"days": 13}), u, 13, 1); err == nil {
		t.Fatal("the grant refused at commit succeeded")
	}
	if rows() != 0 || live() != 0 {
		t.Fatalf("a grant whose transaction failed left %d audit rows and %d live subscriptions", rows(), live())
	}

	// An audit row that cannot be written (its source breaks a CHECK)
	// undoes its change.
	bad := wgbot.WithAudit(ctx, wgbot.AuditEntry{Source: "nobody", Action: "grant", TargetID: u.TelegramID})
	if _, _, err := e.svc.Grant(bad, u, 5, 1); err == nil {
		t.Fatal("a grant whose audit row failed succeeded")
	}
	if rows() != 0 || live() != 0 {
		t.Fatalf("a grant whose audit row failed left %d rows, %d live subscriptions", rows(), live())
	}
	if _, err := e.svc.Ban(bad, u, 0); err == nil || count(t, e.pool, `SELECT count(*) FROM users WHERE id = $1 AND banned`, u.ID) != 0 {
		t.Fatalf("a ban whose audit row failed: err %v, banned anyway?", err)
	}

	// Done: one row each, with the state before and after as the change's
	// transaction saw it.
	sub, _, err := e.svc.Grant(asCLI("grant", map[string]any{"days": 5}), u, 5, 1)
	if err != nil {
		t.Fatal(err)
	}
	var before, after *string
	var target int64
	if err := e.pool.QueryRow(ctx, `SELECT before->>'subscription', after->>'expires_at', target_id FROM audit_log WHERE action = 'grant'`).
		Scan(&before, &after, &target); err != nil {
		t.Fatal(err)
	}
	if before != nil || after == nil || target != u.TelegramID {
		t.Fatalf("grant row: before subscription %v, after expires %v, target %d", before, after, target)
	}
	if got, _ := time.Parse(time.RFC3339Nano, *after); !got.Equal(sub.ExpiresAt) {
		t.Errorf("grant row says the subscription ends %s, it ends %s", *after, sub.ExpiresAt)
	}

	// A change that fails, or changes nothing, writes no row.
	if err := e.svc.RevokeSubscription(asCLI("revoke", nil), u, sub.ID+1000); !errors.Is(err, wgbot.ErrConfirmStale) {
		t.Fatalf("a stale revoke: %v", err)
	}
	if err := e.svc.Unban(asCLI("unban", nil), u); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Refund(asCLI("refund", nil), "stars", "no-such-charge"); err == nil {
		t.Fatal("a refund of no payment succeeded")
	}
	// Without an admin (a payment's webhook, the expiry job) nothing is
	// recorded.
	if _, _, err := e.svc.Grant(ctx, u, 2, 1); err != nil {
		t.Fatal(err)
	}
	if n := rows(); n != 1 {
		t.Fatalf("%d audit rows, want the one grant", n)
	}

	// Ban, a second ban, unban: two rows, each before the other's after.
	if _, err := e.svc.Ban(asCLI("ban", nil), u, sub.ID); err != nil {
		t.Fatal(err)
	}
	if changed, err := e.svc.Ban(asCLI("ban", nil), u, 0); err != nil || changed {
		t.Fatalf("a second ban: changed %v, %v", changed, err)
	}
	if err := e.svc.Unban(asCLI("unban", nil), u); err != nil {
		t.Fatal(err)
	}
	var got string
	e.pool.QueryRow(ctx, `SELECT string_agg(action || ':' || (before->>'banned') || '>' || (after->>'banned') || ':' || (after->>'status'), ' ' ORDER BY id)
		FROM audit_log WHERE action <> 'grant'`).Scan(&got)
	if want := "ban:false>true:revoked unban:true>false:revoked"; got != want {
		t.Fatalf("audit rows %q, want %q", got, want)
	}
}

// auditGrants has one user get n grants of days from n goroutines, each as
// the CLI's action; start lines them up with other processes.
func auditGrants(ctx context.Context, e *env, telegramID int64, n, days int, start time.Time) error {
	u, err := e.svc.UserByTelegramID(ctx, telegramID)
	if err != nil {
		return err
	}
	time.Sleep(time.Until(start))
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			actx := wgbot.WithAudit(ctx, wgbot.AuditEntry{Source: wgbot.AuditCLI, Action: "grant", TargetID: telegramID,
				After: map[string]any{"days": days}})
			if _, _, err := e.svc.Grant(actx, u, days, 1); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	return errors.Join(func() (all []error) {
		for err := range errs {
			all = append(all, err)
		}
		return all
	}()...)
}

// runAuditChild is the child role of TestAuditEveryActionOnce.
func runAuditChild(ctx context.Context, role string) (bool, error) {
	if role != "audit-grants" {
		return false, nil
	}
	e, err := newEnv(ctx, os.Getenv("CHILD_DB"), os.Getenv("CHILD_SUBNET"), nil, storeSetup{})
	if err != nil {
		return true, err
	}
	defer e.pool.Close()
	id, _ := strconv.ParseInt(os.Getenv("CHILD_USER"), 10, 64)
	n, _ := strconv.ParseInt(os.Getenv("CHILD_START"), 10, 64)
	return true, auditGrants(ctx, e, id, 10, 2, time.Unix(0, n))
}

// Admins' grants to one user from many goroutines and several processes
// at once: each has exactly one audit row, and the rows chain (each
// one's before is the after of the one committed before it), as they
// would not if a row were written apart from its change.
func TestAuditEveryActionOnce(t *testing.T) {
	ctx := context.Background()
	e := setup(t, "10.187.0.0/24", nil)
	u := e.user(t, 8100002)
	if _, _, err := e.svc.Grant(ctx, u, 1, 1); err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(2 * time.Second)
	children := startChildren(t, 2, "audit-grants", "CHILD_DB="+e.url, "CHILD_SUBNET=10.187.0.0/24",
		"CHILD_USER="+strconv.FormatInt(u.TelegramID, 10), "CHILD_START="+strconv.FormatInt(start.UnixNano(), 10))
	if err := auditGrants(ctx, e, u.TelegramID, 20, 2, start); err != nil {
		t.Error(err)
	}
	waitAll(t, children)

	rows, err := e.pool.Query(ctx, `SELECT (before->>'expires_at')::timestamptz, (after->>'expires_at')::timestamptz FROM audit_log
		WHERE action = 'grant' AND target_id = $1 ORDER BY id`, u.TelegramID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	var last time.Time
	for rows.Next() {
		var before, after time.Time
		if err := rows.Scan(&before, &after); err != nil {
			t.Fatal(err)
		}
		if n > 0 && !before.Equal(last) {
			t.Errorf("row %d: before %s, but the row before ended at %s", n, before, last)
		}
		if got := after.Sub(before); got != 2*24*time.Hour {
			t.Errorf("row %d: a grant of 2 days moved the expiry %s", n, got)
		}
		last = after
		n++
	}
	if n != 40 {
		t.Fatalf("%d audit rows for 40 grants", n)
	}
	var expires time.Time
	e.pool.QueryRow(ctx, `SELECT expires_at FROM subscriptions WHERE user_id = $1 AND status = 'active'`, u.ID).Scan(&expires)
	if !expires.Equal(last) {
		t.Fatalf("the subscription ends %s, the last audit row says %s", expires, last)
	}
	t.Logf("%d grants, each with one row, chained", n)
}
