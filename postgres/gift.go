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

const giftColumns = `id, token, order_id, payment_id, buyer_id, plan, days, devices, status, COALESCE(redeemed_by, 0), COALESCE(redeemed_at, 'epoch')`

func scanGift(row pgx.Row) (wgbot.Gift, error) {
	var g wgbot.Gift
	err := row.Scan(&g.ID, &g.Token, &g.OrderID, &g.PaymentID, &g.BuyerID, &g.Plan.Name, &g.Plan.Days, &g.Plan.Devices,
		&g.Status, &g.RedeemedBy, &g.RedeemedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return g, wgbot.ErrGiftNotFound
	}
	return g, err
}

// makeGiftTx records the gift a gift order's payment bought, in the
// transaction that records the payment: the buyer's ledger row keeps the
// money and no days (the gift holds them), so a refund takes back no time
// of the buyer's, and nothing is extended.
func makeGiftTx(ctx context.Context, tx pgx.Tx, c wgbot.Credit, paymentID int64, now time.Time) (*wgbot.Gift, error) {
	if !wgbot.GiftTokenPattern.MatchString(c.GiftToken) {
		return nil, fmt.Errorf("gift order %d: no valid gift token", c.OrderID)
	}
	if _, err := tx.Exec(ctx, `UPDATE payments SET days = 0 WHERE id = $1`, paymentID); err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, `UPDATE orders SET status = 'paid', paid_at = $2 WHERE id = $1 AND status <> 'paid'`, c.OrderID, now); err != nil {
		return nil, err
	}
	if err := useDiscountTx(ctx, tx, c.OrderID, paymentID); err != nil {
		return nil, err
	}
	g, err := scanGift(tx.QueryRow(ctx, `INSERT INTO gifts (token, order_id, payment_id, buyer_id, plan, days, devices, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING `+giftColumns,
		c.GiftToken, c.OrderID, paymentID, c.UserID, c.Plan.Name, c.Plan.Days, c.Plan.Devices, now))
	if err != nil {
		return nil, fmt.Errorf("record gift of order %d: %w", c.OrderID, err)
	}
	return &g, nil
}

// GiftNotice loads a gift and its buyer, for the notice that gives the
// buyer its link.
func (s *Store) GiftNotice(ctx context.Context, giftID int64) (wgbot.User, wgbot.Gift, error) {
	g, err := scanGift(s.pool.QueryRow(ctx, `SELECT `+giftColumns+` FROM gifts WHERE id = $1`, giftID))
	if err != nil {
		return wgbot.User{}, g, fmt.Errorf("gift %d: %w", giftID, err)
	}
	u, err := s.UserByID(ctx, g.BuyerID)
	return u, g, err
}

// giftOfOrderTx returns the gift an order's payment made, nil if none.
func giftOfOrderTx(ctx context.Context, tx pgx.Tx, orderID int64) (*wgbot.Gift, error) {
	g, err := scanGift(tx.QueryRow(ctx, `SELECT `+giftColumns+` FROM gifts WHERE order_id = $1`, orderID))
	if errors.Is(err, wgbot.ErrGiftNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &g, nil
}

// RedeemGift gives the gift with token to userID, once: its row lock
// makes one of any number of users opening the link at once the winner;
// the others find it redeemed. The days are a ledger row of kind gift
// keyed gift:<id> (I10), applied in the same transaction, issuing peer
// if the user has no live subscription.
func (s *Store) RedeemGift(ctx context.Context, userID int64, token string, serverID int64, peer NewPeer, now time.Time) (wgbot.Gift, wgbot.CreditResult, error) {
	var g wgbot.Gift
	var res wgbot.CreditResult
	err := s.retryTx(ctx, func(tx pgx.Tx) error {
		res = wgbot.CreditResult{}
		var err error
		g, err = scanGift(tx.QueryRow(ctx, `SELECT `+giftColumns+` FROM gifts WHERE token = $1 FOR UPDATE`, token))
		if err != nil {
			return err
		}
		switch g.Status {
		case wgbot.GiftRedeemed:
			return wgbot.ErrGiftRedeemed
		case wgbot.GiftRefunded:
			return wgbot.ErrGiftRefunded
		}
		// No source_payment_id: the buyer's refund is refused once the
		// gift is redeemed, and a key share on the buyer's payment row
		// here could deadlock with a refund holding it.
		id, ok, err := insertBonusTx(ctx, tx, wgbot.LedgerGift, wgbot.ProviderGift, "gift:"+strconv.FormatInt(g.ID, 10), userID, g.Plan.Days, 0)
		if err != nil {
			return err
		}
		if !ok {
			return wgbot.ErrGiftRedeemed // the status says otherwise only if edited by hand
		}
		res.PaymentID = id
		// The request sends a new device's config; its job sends it if
		// the request dies first (I9).
		if err := s.insertJob(ctx, tx, jobargs.DeviceIssued{PublicKey: peer.Secrets.PublicKey, Reason: jobargs.IssuedGift, Days: g.Plan.Days}, deviceIssuedOpts(peer)); err != nil {
			return err
		}
		res.Subscription, res.NewPeer, res.Change, err = s.extend(ctx, tx, userID, g.Plan, serverID, peer, now)
		if err != nil {
			return err
		}
		// The plan given sets the monthly quota, as buying it would: the
		// gift's order keeps its copy.
		var traffic int64
		if err := tx.QueryRow(ctx, `SELECT traffic FROM orders WHERE id = $1`, g.OrderID).Scan(&traffic); err != nil {
			return err
		}
		changes, err := s.setPlanQuotaTx(ctx, tx, res.Subscription.ID, traffic, now)
		if err != nil {
			return err
		}
		if len(changes) > 0 {
			res.Change = changes[len(changes)-1]
		}
		var peerID *int64
		if res.NewPeer != nil {
			peerID = &res.NewPeer.ID
		}
		if _, err := tx.Exec(ctx, `UPDATE payments SET peer_id = $2, credited_until = $3 WHERE id = $1`, id, peerID, res.Subscription.ExpiresAt); err != nil {
			return err
		}
		g.Status, g.RedeemedBy, g.RedeemedAt = wgbot.GiftRedeemed, userID, now
		_, err = tx.Exec(ctx, `UPDATE gifts SET status = 'redeemed', redeemed_by = $2, redeemed_at = $3 WHERE id = $1`, g.ID, userID, now)
		return err
	})
	if err != nil {
		return g, res, fmt.Errorf("redeem gift for user %d: %w", userID, err)
	}
	return g, res, nil
}

// CloseGift marks the open gift a payment bought as refunded, before the
// money goes back, so it cannot be redeemed meanwhile. A redeemed gift is
// wgbot.ErrGiftRedeemed (its payment is not to be refunded); a payment
// that bought no gift is no error.
func (s *Store) CloseGift(ctx context.Context, provider, providerPaymentID string) error {
	var status string
	err := s.pool.QueryRow(ctx, `WITH g AS (SELECT g.id, g.status FROM gifts g JOIN payments p ON p.id = g.payment_id
			WHERE p.provider = $1 AND p.provider_payment_id = $2 FOR UPDATE OF g)
		UPDATE gifts SET status = CASE WHEN gifts.status = 'open' THEN 'refunded' ELSE gifts.status END
		FROM g WHERE gifts.id = g.id RETURNING g.status`, provider, providerPaymentID).Scan(&status)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil
	case err != nil:
		return fmt.Errorf("close gift of %s payment %s: %w", provider, providerPaymentID, err)
	case status == wgbot.GiftRedeemed:
		return wgbot.ErrGiftRedeemed
	}
	return nil
}
