package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"wgbot"
)

// MarkBlocked records that a user blocked the bot (Telegram answered 403),
// so broadcasts and reminders skip them until they write again.
func (s *Store) MarkBlocked(ctx context.Context, telegramID int64, blocked bool) error {
	_, err := s.pool.Exec(ctx, `UPDATE users SET blocked_bot = $2 WHERE telegram_id = $1`, telegramID, blocked)
	return err
}

// Reachable lists the Telegram ids of users who have not blocked the bot,
// for broadcasts, in id order.
func (s *Store) Reachable(ctx context.Context) ([]int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT telegram_id FROM users WHERE NOT blocked_bot ORDER BY id`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[int64])
}

// The operator's queries: what `wgbot users`, `wgbot peers` and `wgbot
// issue` read and do. Reads never touch sealed keys.

// UserSummary is one row of the operator's user list.
type UserSummary struct {
	wgbot.User
	Subscription *wgbot.Subscription // the current (or last) one; nil if none
	Devices      int                 // peers that are not revoked
}

// ListUsers lists every user in id order with their current subscription
// (the live one, else the one that ended last) and device count.
func (s *Store) ListUsers(ctx context.Context) ([]UserSummary, error) {
	rows, err := s.pool.Query(ctx, `SELECT u.id, u.telegram_id, u.username, u.first_name, u.language, COALESCE(u.referrer_id, 0),
			u.blocked_bot, u.banned, u.created_at,
			s.id, s.plan, s.is_trial, s.status, s.device_limit, s.starts_at, s.expires_at,
			(SELECT count(*) FROM peers p JOIN subscriptions ps ON ps.id = p.subscription_id
			 WHERE ps.user_id = u.id AND p.status <> 'revoked')
		FROM users u
		LEFT JOIN LATERAL (SELECT * FROM subscriptions WHERE user_id = u.id
			ORDER BY status = 'active' DESC, expires_at DESC LIMIT 1) s ON true
		ORDER BY u.id`)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (UserSummary, error) {
		var us UserSummary
		u := &us.User
		var subID *int64
		var plan, status *string
		var trial *bool
		var limit *int
		var starts, expires *time.Time
		err := row.Scan(&u.ID, &u.TelegramID, &u.Username, &u.FirstName, &u.Language, &u.ReferrerID, &u.BlockedBot, &u.Banned, &u.CreatedAt,
			&subID, &plan, &trial, &status, &limit, &starts, &expires, &us.Devices)
		if err == nil && subID != nil {
			us.Subscription = &wgbot.Subscription{ID: *subID, UserID: u.ID, Plan: *plan, IsTrial: *trial, Status: *status,
				DeviceLimit: *limit, StartsAt: *starts, ExpiresAt: *expires}
		}
		return us, err
	})
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return list, nil
}

// RegisterUser creates the user on first contact and refreshes name and
// username afterwards; two /start at once yield one row. The language and
// referrer are kept from the first contact (later ones may not move them):
// the referrer is whoever holds referralCode ("" or no such code: none),
// never the user themself.
func (s *Store) RegisterUser(ctx context.Context, u wgbot.User, referralCode string) (wgbot.User, bool, error) {
	var created bool
	var referrer *int64
	err := s.pool.QueryRow(ctx, `
		INSERT INTO users (telegram_id, username, first_name, language, referrer_id)
		VALUES ($1, $2, $3, $4, (SELECT id FROM users WHERE referral_code = NULLIF($5, '') AND telegram_id <> $1))
		ON CONFLICT (telegram_id) DO UPDATE SET username = EXCLUDED.username, first_name = EXCLUDED.first_name
		RETURNING id, language, referrer_id, blocked_bot, banned, created_at, xmax = 0`,
		u.TelegramID, u.Username, u.FirstName, u.Language, referralCode).
		Scan(&u.ID, &u.Language, &referrer, &u.BlockedBot, &u.Banned, &u.CreatedAt, &created)
	if err != nil {
		return u, false, fmt.Errorf("register user %d: %w", u.TelegramID, err)
	}
	if referrer != nil {
		u.ReferrerID = *referrer
	}
	return u, created, nil
}

func scanUser(row pgx.Row) (wgbot.User, error) {
	var u wgbot.User
	err := row.Scan(&u.ID, &u.TelegramID, &u.Username, &u.FirstName, &u.Language, &u.ReferrerID, &u.BlockedBot, &u.Banned, &u.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return u, wgbot.ErrUserNotFound
	}
	return u, err
}

// UserByTelegramID finds a user by Telegram id.
func (s *Store) UserByTelegramID(ctx context.Context, telegramID int64) (wgbot.User, error) {
	return scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE telegram_id = $1`, telegramID))
}

// UserByUsername finds a user by @username, case-insensitively.
// Usernames move between accounts on Telegram, so a stale one may match
// two users: then the caller must use the Telegram id.
func (s *Store) UserByUsername(ctx context.Context, username string) (wgbot.User, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+userColumns+` FROM users WHERE lower(username) = lower($1) LIMIT 2`, strings.TrimPrefix(username, "@"))
	if err != nil {
		return wgbot.User{}, err
	}
	users, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (wgbot.User, error) { return scanUser(r) })
	switch {
	case err != nil:
		return wgbot.User{}, err
	case len(users) == 0:
		return wgbot.User{}, wgbot.ErrUserNotFound
	case len(users) > 1:
		return wgbot.User{}, wgbot.Errorf(wgbot.EConflict, "ambiguous_username", "several users have been @%s; use the Telegram id", strings.TrimPrefix(username, "@"))
	}
	return users[0], nil
}

// SetLanguage stores the user's chosen language.
func (s *Store) SetLanguage(ctx context.Context, userID int64, lang string) error {
	_, err := s.pool.Exec(ctx, `UPDATE users SET language = $2 WHERE id = $1`, userID, lang)
	return err
}

// UserByID finds a user by wgbot's id.
func (s *Store) UserByID(ctx context.Context, id int64) (wgbot.User, error) {
	return scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
}

// SetBanned bans or unbans a user; a banned user is issued nothing.
// An admin's change (wgbot.WithAudit) is recorded when it changed the flag.
func (s *Store) SetBanned(ctx context.Context, userID int64, banned bool) error {
	err := inTx(ctx, s.pool, func(tx pgx.Tx) error {
		trail, err := beginAudit(ctx, tx, userID)
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE users SET banned = $2 WHERE id = $1 AND banned <> $2`, userID, banned)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		return trail.done(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("set user %d banned=%v: %w", userID, banned, err)
	}
	return nil
}
