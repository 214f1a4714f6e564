package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"wgbot"
	"wgbot/jobs/jobargs"
)

const promoColumns = `id, code, kind, value, currency, plans, max_uses, per_user, uses, new_users, expires_at, disabled_at IS NOT NULL, created_at`

func scanPromo(row pgx.Row) (wgbot.Promo, error) {
	var p wgbot.Promo
	var expires *time.Time
	err := row.Scan(&p.ID, &p.Code, &p.Kind, &p.Value, &p.Currency, &p.Plans, &p.MaxUses, &p.PerUser, &p.Uses, &p.NewUsers, &expires, &p.Disabled, &p.Created)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, wgbot.ErrPromoNotFound
	}
	if expires != nil {
		p.Expires = *expires
	}
	return p, err
}

// CreatePromo records a new promo code (validated by the caller with
// wgbot.ValidatePromo); a code that exists is wgbot.ErrPromoExists.
func (s *Store) CreatePromo(ctx context.Context, p wgbot.Promo) (wgbot.Promo, error) {
	var expires *time.Time
	if !p.Expires.IsZero() {
		expires = &p.Expires
	}
	plans := p.Plans
	if plans == nil {
		plans = []string{}
	}
	var out wgbot.Promo
	err := inTx(ctx, s.pool, func(tx pgx.Tx) error {
		trail, err := beginPromoAudit(ctx, tx, p.Code)
		if err != nil {
			return err
		}
		out, err = scanPromo(tx.QueryRow(ctx, `INSERT INTO promo_codes (code, kind, value, currency, plans, max_uses, per_user, new_users, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING `+promoColumns,
			p.Code, p.Kind, p.Value, p.Currency, plans, p.MaxUses, max(p.PerUser, 1), p.NewUsers, expires))
		if err != nil {
			return err
		}
		return trail.done(ctx, tx)
	})
	if constraintOf(err) == "promo_codes_code_key" {
		return out, fmt.Errorf("promo code %s: %w", p.Code, wgbot.ErrPromoExists)
	}
	if err != nil {
		return out, fmt.Errorf("create promo code %s: %w", p.Code, err)
	}
	return out, nil
}

// Promos lists every promo code, newest first.
func (s *Store) Promos(ctx context.Context) ([]wgbot.Promo, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+promoColumns+` FROM promo_codes ORDER BY id DESC`)
	if err != nil {
		return nil, fmt.Errorf("list promo codes: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (wgbot.Promo, error) { return scanPromo(r) })
	if err != nil {
		return nil, fmt.Errorf("list promo codes: %w", err)
	}
	return list, nil
}

// DisablePromo stops a code from being redeemed from now on; discounts
// already redeemed with it stay good for their order. Disabling it twice
// is harmless.
func (s *Store) DisablePromo(ctx context.Context, code string, now time.Time) (wgbot.Promo, error) {
	var p wgbot.Promo
	err := inTx(ctx, s.pool, func(tx pgx.Tx) error {
		trail, err := beginPromoAudit(ctx, tx, code)
		if err != nil {
			return err
		}
		var was bool
		if err := tx.QueryRow(ctx, `SELECT disabled_at IS NOT NULL FROM promo_codes WHERE code = $1 FOR UPDATE`, code).Scan(&was); err != nil {
			return err
		}
		if p, err = scanPromo(tx.QueryRow(ctx, `UPDATE promo_codes SET disabled_at = COALESCE(disabled_at, $2)
		WHERE code = $1 RETURNING `+promoColumns, code, now)); err != nil || was {
			return err
		}
		return trail.done(ctx, tx)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		err = wgbot.ErrPromoNotFound
	}
	if err != nil {
		return p, fmt.Errorf("disable promo code %s: %w", code, err)
	}
	return p, nil
}

// RedeemPromo redeems a code for a user, in one transaction. The code's row
// lock makes every redemption of one code take turns, in one process or
// many, so a code with n uses left is redeemed exactly n times however many
// users try at once (the CHECK on uses and the UNIQUE per-user key are the
// last guards). Free days go to the user at once, as a ledger row of their
// own; a discount waits for the user's next order.
func (s *Store) RedeemPromo(ctx context.Context, userID int64, code string, serverID int64, peer NewPeer, now time.Time) (wgbot.Redemption, error) {
	var res wgbot.Redemption
	err := s.retryTx(ctx, func(tx pgx.Tx) error {
		res = wgbot.Redemption{}
		p, err := scanPromo(tx.QueryRow(ctx, `SELECT `+promoColumns+` FROM promo_codes WHERE code = $1 FOR UPDATE`, code))
		if err != nil {
			return err
		}
		var used int
		var paid bool
		if err := tx.QueryRow(ctx, `SELECT (SELECT count(*) FROM promo_redemptions WHERE promo_id = $1 AND user_id = $2),
				EXISTS (SELECT 1 FROM payments WHERE user_id = $2 AND kind = 'payment' AND status = 'credited')`,
			p.ID, userID).Scan(&used, &paid); err != nil {
			return err
		}
		if err := p.CanRedeem(now, used, paid); err != nil {
			return err
		}
		status := "applied"
		if p.Kind != wgbot.PromoDays {
			status = "pending"
		}
		var redemptionID int64
		err = tx.QueryRow(ctx, `INSERT INTO promo_redemptions (promo_id, user_id, n, status, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id`,
			p.ID, userID, used+1, status, now).Scan(&redemptionID)
		if constraintOf(err) == "promo_redemptions_one_pending" {
			return wgbot.ErrPromoPending
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE promo_codes SET uses = uses + 1 WHERE id = $1`, p.ID); err != nil {
			return err
		}
		p.Uses++
		res.Promo = p
		if p.Kind != wgbot.PromoDays {
			res.Discount = &wgbot.Discount{RedemptionID: redemptionID, Code: p.Code, Kind: p.Kind, Value: p.Value, Currency: p.Currency, Plans: p.Plans}
			return nil
		}
		res.Days = int(p.Value)
		key := strconv.FormatInt(redemptionID, 10)
		ledgerID, _, err := insertBonusTx(ctx, tx, wgbot.LedgerPromo, wgbot.ProviderPromo, key, userID, res.Days, 0)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE promo_redemptions SET payment_id = $2 WHERE id = $1`, redemptionID, ledgerID); err != nil {
			return err
		}
		// The request that redeemed the code sends a new device's config;
		// its job sends it if the request dies first (I9).
		if err := s.insertJob(ctx, tx, jobargs.DeviceIssued{PublicKey: peer.Secrets.PublicKey, Reason: jobargs.IssuedPromo, Days: res.Days}, deviceIssuedOpts(peer)); err != nil {
			return err
		}
		res.Subscription, res.NewPeer, res.Change, err = s.addDaysTx(ctx, tx, userID, res.Days, serverID, peer, now)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE payments SET credited_until = $2 WHERE id = $1`, ledgerID, res.Subscription.ExpiresAt)
		return err
	})
	if err != nil {
		return res, fmt.Errorf("redeem promo code %s for user %d: %w", code, userID, err)
	}
	return res, nil
}

// PendingDiscount is the discount the user redeemed and has not yet paid
// an order with, or nil.
func (s *Store) PendingDiscount(ctx context.Context, userID int64) (*wgbot.Discount, error) {
	return pendingDiscount(ctx, s.pool, userID)
}

func pendingDiscount(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, userID int64) (*wgbot.Discount, error) {
	var d wgbot.Discount
	err := q.QueryRow(ctx, `SELECT r.id, c.code, c.kind, c.value, c.currency, c.plans
		FROM promo_redemptions r JOIN promo_codes c ON c.id = r.promo_id
		WHERE r.user_id = $1 AND r.status = 'pending'`, userID).Scan(&d.RedemptionID, &d.Code, &d.Kind, &d.Value, &d.Currency, &d.Plans)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pending discount of user %d: %w", userID, err)
	}
	return &d, nil
}

// useDiscountTx marks the discount a paid order was priced with as used
// by payment paymentID, and cancels the user's other open orders priced
// with it (replaced by the paid one, so no failed payment): one discount
// pays for one order.
func useDiscountTx(ctx context.Context, tx pgx.Tx, orderID, paymentID int64) error {
	var redemption *int64
	if err := tx.QueryRow(ctx, `SELECT redemption_id FROM orders WHERE id = $1`, orderID).Scan(&redemption); err != nil || redemption == nil {
		return err
	}
	tag, err := tx.Exec(ctx, `UPDATE promo_redemptions SET status = 'used', payment_id = $2 WHERE id = $1 AND status = 'pending'`,
		*redemption, paymentID)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		// Another payment used this discount first: an order priced with
		// it was paid anyway (a checkout left open at the provider). The
		// money is credited, as always; an admin is shown it was short.
		if _, err := tx.Exec(ctx, `UPDATE payments SET flagged = 'discount already used by another payment' WHERE id = $1 AND flagged = ''`,
			paymentID); err != nil {
			return err
		}
	}
	_, err = tx.Exec(ctx, `UPDATE orders SET status = 'canceled', replaced_by = $2
		WHERE redemption_id = $1 AND id <> $2 AND status = 'pending'`, *redemption, orderID)
	return err
}

// promoCounts counts codes for /stats: all of them, and those a user can
// still redeem at now.
func (s *Store) promoCounts(ctx context.Context, now time.Time) (all, active int64, err error) {
	err = s.pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE disabled_at IS NULL
			AND (expires_at IS NULL OR expires_at > $1) AND (max_uses = 0 OR uses < max_uses)) FROM promo_codes`, now).Scan(&all, &active)
	return all, active, err
}

// PromoUse is one redemption of a code by a user, as the panel's user
// page lists it.
type PromoUse struct {
	Code   string
	Kind   string
	Value  int64
	Status string // applied (free days given), pending (a discount waiting for an order) or used
	At     time.Time
}

// UserPromos lists the user's redemptions, newest first.
func (s *Store) UserPromos(ctx context.Context, userID int64) ([]PromoUse, error) {
	rows, err := s.pool.Query(ctx, `SELECT c.code, c.kind, c.value, r.status, r.created_at
		FROM promo_redemptions r JOIN promo_codes c ON c.id = r.promo_id
		WHERE r.user_id = $1 ORDER BY r.id DESC`, userID)
	if err != nil {
		return nil, fmt.Errorf("promo redemptions of user %d: %w", userID, err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (PromoUse, error) {
		var u PromoUse
		err := r.Scan(&u.Code, &u.Kind, &u.Value, &u.Status, &u.At)
		return u, err
	})
}
