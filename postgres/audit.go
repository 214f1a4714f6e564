package postgres

import (
	"context"
	"errors"
	"fmt"
	"maps"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"wgbot"
)

// The audit log's rows for admins' changes (wgbot.WithAudit): each is
// written inside the transaction of the change it records, with the state
// before and after as that transaction saw them, so neither can commit
// without the other.

// auditTrail is one change's audit row in the making; nil when ctx is no
// admin's action, and then its methods do nothing.
type auditTrail struct {
	entry wgbot.AuditEntry
	state func(ctx context.Context, tx pgx.Tx) (map[string]any, error)
}

// beginAudit starts the audit row of a change to the user userID (its
// subscription, access and ban), reading the state before it.
func beginAudit(ctx context.Context, tx pgx.Tx, userID int64) (*auditTrail, error) {
	return startTrail(ctx, tx, func(ctx context.Context, tx pgx.Tx) (map[string]any, error) {
		return userState(ctx, tx, userID)
	})
}

// beginServerAudit starts the audit row of a change to the server name.
func beginServerAudit(ctx context.Context, tx pgx.Tx, name string) (*auditTrail, error) {
	return startTrail(ctx, tx, func(ctx context.Context, tx pgx.Tx) (map[string]any, error) {
		return serverState(ctx, tx, name)
	})
}

// beginPaymentAudit starts the audit row of a refund: the payment's
// status and its payer's state. A payment not recorded has nothing to
// refund, so nothing to record.
func beginPaymentAudit(ctx context.Context, tx pgx.Tx, r Refund) (*auditTrail, error) {
	if _, ok := wgbot.AuditOf(ctx); !ok {
		return nil, nil
	}
	var userID int64
	err := tx.QueryRow(ctx, `SELECT COALESCE(user_id, 0) FROM payments WHERE provider = $1 AND provider_payment_id = $2`,
		r.Provider, r.ProviderPaymentID).Scan(&userID)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return startTrail(ctx, tx, func(ctx context.Context, tx pgx.Tx) (map[string]any, error) {
		state := map[string]any{"provider": r.Provider, "payment": r.ProviderPaymentID}
		if userID != 0 {
			var err error
			if state, err = userState(ctx, tx, userID); err != nil {
				return nil, err
			}
			state["provider"], state["payment"] = r.Provider, r.ProviderPaymentID
		}
		var status string
		err := tx.QueryRow(ctx, `SELECT status FROM payments WHERE provider = $1 AND provider_payment_id = $2`,
			r.Provider, r.ProviderPaymentID).Scan(&status)
		state["payment_status"] = status
		return state, err
	})
}

// beginPromoAudit starts the audit row of a change to the promo code.
func beginPromoAudit(ctx context.Context, tx pgx.Tx, code string) (*auditTrail, error) {
	return startTrail(ctx, tx, func(ctx context.Context, tx pgx.Tx) (map[string]any, error) {
		p, err := scanPromo(tx.QueryRow(ctx, `SELECT `+promoColumns+` FROM promo_codes WHERE code = $1`, code))
		if errors.Is(err, wgbot.ErrPromoNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return map[string]any{"promo": p.Code, "kind": p.Kind, "value": p.Value, "uses": p.Uses, "disabled": p.Disabled}, nil
	})
}

func startTrail(ctx context.Context, tx pgx.Tx, state func(context.Context, pgx.Tx) (map[string]any, error)) (*auditTrail, error) {
	e, ok := wgbot.AuditOf(ctx)
	if !ok {
		return nil, nil
	}
	a := &auditTrail{entry: e, state: state}
	before, err := state(ctx, tx)
	if err != nil {
		return nil, fmt.Errorf("audit %s: state before: %w", e.Action, err)
	}
	a.entry.Before = merged(e.Before, before)
	return a, nil
}

// done writes the row with the state after the change.
func (a *auditTrail) done(ctx context.Context, tx pgx.Tx) error {
	if a == nil {
		return nil
	}
	after, err := a.state(ctx, tx)
	if err != nil {
		return fmt.Errorf("audit %s: state after: %w", a.entry.Action, err)
	}
	e := a.entry
	e.After = merged(e.After, after)
	// The user the store changed is the target, whatever the caller
	// named (a refund's form names the payer only as a hint).
	if id, ok := after["telegram_id"].(int64); ok {
		e.TargetID = id
	}
	return insertAudit(ctx, tx, e)
}

// merged is the caller's facts with the store's added; nil when both are
// empty (a server that is gone has no state after).
func merged(given, read map[string]any) map[string]any {
	if len(given) == 0 && len(read) == 0 {
		return nil
	}
	out := maps.Clone(read)
	if out == nil {
		out = map[string]any{}
	}
	maps.Copy(out, given)
	return out
}

// userState is what the audit log shows of a user: banned or not, and the
// live (else the latest) subscription. It locks the user's row, as a
// confirmed ban or revoke does first: admins' changes to one user take
// turns, so each one's before is the after of the one before it.
func userState(ctx context.Context, tx pgx.Tx, userID int64) (map[string]any, error) {
	var telegramID int64
	var banned bool
	err := tx.QueryRow(ctx, `SELECT telegram_id, banned FROM users WHERE id = $1 FOR UPDATE`, userID).Scan(&telegramID, &banned)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, wgbot.ErrUserNotFound
	}
	if err != nil {
		return nil, err
	}
	state := map[string]any{"telegram_id": telegramID, "banned": banned, "subscription": nil}
	sub, err := scanSubscription(tx.QueryRow(ctx, `SELECT `+subscriptionColumns+` FROM subscriptions
		WHERE user_id = $1 ORDER BY status = 'active' DESC, expires_at DESC LIMIT 1`, userID))
	if errors.Is(err, wgbot.ErrNoSubscription) {
		return state, nil
	}
	if err != nil {
		return nil, err
	}
	state["subscription"], state["status"], state["expires_at"] = sub.ID, sub.Status, sub.ExpiresAt
	return state, nil
}

// serverState is what the audit log shows of a server; nil once removed.
func serverState(ctx context.Context, tx pgx.Tx, name string) (map[string]any, error) {
	var state string
	err := tx.QueryRow(ctx, `SELECT state FROM servers WHERE name = $1`, name).Scan(&state)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return map[string]any{"server": name, "state": state}, nil
}

// insertAudit writes one row in tx, or straight to the pool (RecordAudit).
func insertAudit(ctx context.Context, db interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
}, e wgbot.AuditEntry) error {
	_, err := db.Exec(ctx, `INSERT INTO audit_log (source, admin_id, action, target_id, before, after) VALUES ($1, $2, $3, $4, $5, $6)`,
		e.Source, e.AdminID, e.Action, e.TargetID, e.Before, e.After)
	if err != nil {
		return fmt.Errorf("audit %s: %w", e.Action, err)
	}
	return nil
}
