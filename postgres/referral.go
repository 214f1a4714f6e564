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

// ReferralCode returns the user's personal referral code, making one with
// newCode the first time: two first calls at once agree on one code, and
// a code another user holds is drawn again.
func (s *Store) ReferralCode(ctx context.Context, userID int64, newCode func() string) (string, error) {
	for range 8 {
		var code *string
		err := s.pool.QueryRow(ctx, `WITH made AS (
				UPDATE users SET referral_code = $2 WHERE id = $1 AND referral_code IS NULL RETURNING referral_code)
			SELECT COALESCE((SELECT referral_code FROM made), (SELECT referral_code FROM users WHERE id = $1))`,
			userID, newCode()).Scan(&code)
		if constraintOf(err) == "users_referral_code" {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("referral code of user %d: %w", userID, err)
		}
		if code == nil {
			// A concurrent first call holds the row; its code is visible
			// once it commits.
			if err := s.pool.QueryRow(ctx, `SELECT referral_code FROM users WHERE id = $1`, userID).Scan(&code); err != nil {
				return "", fmt.Errorf("referral code of user %d: %w", userID, err)
			}
			if code == nil {
				continue
			}
		}
		return *code, nil
	}
	return "", fmt.Errorf("referral code of user %d: no free code after repeated draws", userID)
}

// ReferralStats counts what the user's link brought them: users who
// joined through it, those whose first payment earned the bonus, and the
// bonus days kept (a refund takes back what was unused).
func (s *Store) ReferralStats(ctx context.Context, userID int64) (invited, paid, days int64, err error) {
	err = s.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM users WHERE referrer_id = $1),
			(SELECT count(*) FROM payments WHERE kind = 'referral' AND user_id = $1 AND provider_payment_id LIKE 'referrer:%'),
			(SELECT COALESCE(sum(days), 0) FROM payments WHERE kind = 'referral' AND user_id = $1 AND status = 'credited'
				AND provider_payment_id LIKE 'referrer:%')`, userID).Scan(&invited, &paid, &days)
	if err != nil {
		err = fmt.Errorf("referral stats of user %d: %w", userID, err)
	}
	return invited, paid, days, err
}

// referralBonusKey is the ledger key of one side's bonus for the invited
// user: at most once per invited user, ever.
func referralBonusKey(side string, invitedUserID int64) string {
	return side + ":" + strconv.FormatInt(invitedUserID, 10)
}

// rewardedReferrerTx is the referrer a payment of userID may earn a
// bonus, 0 if none: bonuses off, no referrer, or a banned one (who earns
// nothing; the friend's own bonus stands).
func (s *Store) rewardedReferrerTx(ctx context.Context, tx pgx.Tx, userID int64) (int64, error) {
	if s.referral.ReferrerDays <= 0 {
		return 0, nil
	}
	var referrer *int64
	err := tx.QueryRow(ctx, `SELECT r.id FROM users u JOIN users r ON r.id = u.referrer_id WHERE u.id = $1 AND NOT r.banned`,
		userID).Scan(&referrer)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && referrer == nil) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return *referrer, nil
}

// creditReferrerTx gives the referrer of the paying user their bonus, if
// the user has one and this is the first payment to earn it, in the
// crediting transaction (I10): the bonus's ledger row, its days, and the
// notice. The caller holds both users' locks (lockUsersTx), so the
// referrer's device may take the allocator's lock before the payer's
// subscription is extended without breaking the lock order.
func (s *Store) creditReferrerTx(ctx context.Context, tx pgx.Tx, paymentID, userID, serverID int64, peer NewPeer, now time.Time) error {
	referrer, err := s.rewardedReferrerTx(ctx, tx, userID)
	if err != nil || referrer == 0 {
		return err
	}
	days := s.referral.ReferrerDays
	id, ok, err := insertBonusTx(ctx, tx, wgbot.LedgerReferral, wgbot.ProviderReferral, referralBonusKey("referrer", userID), referrer, days, paymentID)
	if err != nil || !ok {
		return err
	}
	if err := s.insertJob(ctx, tx, jobargs.DeviceIssued{PublicKey: peer.Secrets.PublicKey, Reason: jobargs.IssuedReferral, Days: days}, deviceIssuedOpts(peer)); err != nil {
		return err
	}
	return s.applyBonusTx(ctx, tx, id, referrer, days, serverID, peer, now)
}

// creditInvitedTx gives the paying user their own bonus for joining
// through a link, after their payment extended their subscription.
func (s *Store) creditInvitedTx(ctx context.Context, tx pgx.Tx, paymentID, userID, serverID int64, now time.Time) error {
	if s.referral.InvitedDays <= 0 {
		return nil
	}
	var referrer *int64
	if err := tx.QueryRow(ctx, `SELECT referrer_id FROM users WHERE id = $1`, userID).Scan(&referrer); err != nil || referrer == nil {
		return err
	}
	days := s.referral.InvitedDays
	id, ok, err := insertBonusTx(ctx, tx, wgbot.LedgerReferral, wgbot.ProviderReferral, referralBonusKey("invited", userID), userID, days, paymentID)
	if err != nil || !ok {
		return err
	}
	// The payment just made the subscription live: the days extend it.
	return s.applyBonusTx(ctx, tx, id, userID, days, serverID, NewPeer{}, now)
}

// insertBonusTx records a credit that is not money under its key; ok is
// false when the key was credited before (nothing is given twice).
func insertBonusTx(ctx context.Context, tx pgx.Tx, kind, provider, key string, userID int64, days int, sourceID int64) (int64, bool, error) {
	var source *int64
	if sourceID != 0 {
		source = &sourceID
	}
	var id int64
	err := tx.QueryRow(ctx, `INSERT INTO payments (provider, provider_payment_id, user_id, amount, currency, status, days, kind, source_payment_id)
		VALUES ($1, $2, $3, 0, '', 'credited', $4, $5, $6)
		ON CONFLICT (provider, provider_payment_id) DO NOTHING RETURNING id`,
		provider, key, userID, days, kind, source).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	return id, err == nil, err
}

// applyBonusTx adds a bonus's days to its user and records the end of the
// period they bought, so a take-back removes only what is unused. When
// the days issued no device, the bonus's own notice says what happened;
// when they did, the device's delivery says it.
func (s *Store) applyBonusTx(ctx context.Context, tx pgx.Tx, ledgerID, userID int64, days int, serverID int64, peer NewPeer, now time.Time) error {
	sub, p, _, err := s.addDaysTx(ctx, tx, userID, days, serverID, peer, now)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE payments SET credited_until = $2 WHERE id = $1`, ledgerID, sub.ExpiresAt); err != nil {
		return err
	}
	if p != nil {
		return nil
	}
	return s.insertJob(ctx, tx, jobargs.PaymentCredited{PaymentID: ledgerID}, nil)
}

// addDaysTx gives a user days without a payment (a bonus, promo days): a
// live subscription runs that much longer and keeps its plan; a user
// without one gets them as a gift, as an operator's grant does (their
// ended subscription renewed, or a new one with a device).
func (s *Store) addDaysTx(ctx context.Context, tx pgx.Tx, userID int64, days int, serverID int64, peer NewPeer, now time.Time) (wgbot.Subscription, *wgbot.Peer, wgbot.Change, error) {
	sub, err := scanSubscription(tx.QueryRow(ctx, `SELECT `+subscriptionColumns+` FROM subscriptions
		WHERE user_id = $1 AND status = 'active' AND expires_at > $2 FOR UPDATE`, userID, now))
	if err == nil {
		sub.ExpiresAt = sub.ExpiresAt.AddDate(0, 0, days)
		_, err = tx.Exec(ctx, `UPDATE subscriptions SET expires_at = $2, updated_at = $3 WHERE id = $1`, sub.ID, sub.ExpiresAt, now)
		return sub, nil, wgbot.Change{}, err
	}
	if !errors.Is(err, wgbot.ErrNoSubscription) {
		return sub, nil, wgbot.Change{}, err
	}
	if peer.Secrets.PublicKey == "" {
		return sub, nil, wgbot.Change{}, errors.New("days for a user without a live subscription need a new device's keys")
	}
	return s.extend(ctx, tx, userID, wgbot.Plan{Name: wgbot.GrantPlanName, Days: days, Devices: 1}, serverID, peer, now)
}

// BonusNotice loads the user a bonus's ledger row credited and their
// subscription as it stands now, for the notice that a refund took the
// bonus back.
func (s *Store) BonusNotice(ctx context.Context, ledgerID int64) (wgbot.User, wgbot.Subscription, error) {
	var userID int64
	err := s.pool.QueryRow(ctx, `SELECT user_id FROM payments WHERE id = $1`, ledgerID).Scan(&userID)
	if errors.Is(err, pgx.ErrNoRows) {
		return wgbot.User{}, wgbot.Subscription{}, wgbot.ErrPaymentNotFound
	}
	if err != nil {
		return wgbot.User{}, wgbot.Subscription{}, fmt.Errorf("bonus %d: %w", ledgerID, err)
	}
	u, err := s.UserByID(ctx, userID)
	if err != nil {
		return u, wgbot.Subscription{}, err
	}
	sub, err := s.LatestSubscription(ctx, userID)
	return u, sub, err
}
