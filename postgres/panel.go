package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"wgbot"
)

// The operator web panel's storage (panel/): its login links and sessions,
// and the reads behind its pages.

// ErrPanelLink is a login link that is unknown, used or expired: all three
// look the same to whoever holds it.
var ErrPanelLink = wgbot.Errorf(wgbot.ENotFound, "panel_link", "this sign-in link is used, expired or unknown")

// PanelSession is one signed-in browser.
type PanelSession struct {
	AdminID int64  // the admin's Telegram id
	CSRF    string // the token every state-changing form carries
	Lang    string // "en" or "ru", from the admin's own user row
}

// CreatePanelLink records a login link by its token's hash, and drops the
// links and sessions that can no longer be used, so neither table grows.
func (s *Store) CreatePanelLink(ctx context.Context, tokenHash []byte, adminID int64, expires time.Time, now time.Time, idle time.Duration) error {
	return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM panel_links WHERE expires_at < $1::timestamptz - interval '1 day'`, now); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM panel_sessions WHERE last_seen_at < $1::timestamptz - $2::interval`, now, idle); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO panel_links (token_hash, admin_id, expires_at) VALUES ($1, $2, $3)`, tokenHash, adminID, expires)
		return err
	})
}

// RedeemPanelLink uses the link once and opens a session with it, in one
// transaction: of two browsers opening one link at once, one gets the
// session and the other ErrPanelLink. isAdmin is asked about the link's
// admin inside the transaction, so a link of someone no longer an admin
// opens nothing (and is spent).
func (s *Store) RedeemPanelLink(ctx context.Context, tokenHash, sessionHash []byte, csrf string, now time.Time, isAdmin func(int64) bool) (PanelSession, error) {
	var ps PanelSession
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{}, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `UPDATE panel_links SET used_at = $2
			WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 RETURNING admin_id`, tokenHash, now).Scan(&ps.AdminID)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrPanelLink
		}
		if err != nil {
			return err
		}
		if !isAdmin(ps.AdminID) {
			return ErrPanelLink
		}
		ps.CSRF = csrf
		return tx.QueryRow(ctx, `INSERT INTO panel_sessions (id_hash, admin_id, csrf, lang, created_at, last_seen_at)
			VALUES ($1, $2, $3, COALESCE((SELECT CASE WHEN language = 'ru' THEN 'ru' ELSE 'en' END FROM users WHERE telegram_id = $2), 'en'), $4, $4)
			RETURNING lang`, sessionHash, ps.AdminID, csrf, now).Scan(&ps.Lang)
	})
	if errors.Is(err, ErrPanelLink) {
		// The link stays spent: a failed use is still its one use.
		if _, uerr := s.pool.Exec(ctx, `UPDATE panel_links SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL`, tokenHash, now); uerr != nil {
			return ps, fmt.Errorf("spend panel link: %w", uerr)
		}
	}
	return ps, err
}

// PanelSession finds a session seen within idle and marks it seen now;
// ErrPanelLink if there is none (never was, logged out, or idle too long).
func (s *Store) PanelSession(ctx context.Context, sessionHash []byte, now time.Time, idle time.Duration) (PanelSession, error) {
	var ps PanelSession
	err := s.pool.QueryRow(ctx, `UPDATE panel_sessions SET last_seen_at = $2
		WHERE id_hash = $1 AND last_seen_at > $2::timestamptz - $3::interval RETURNING admin_id, csrf, lang`,
		sessionHash, now, idle).Scan(&ps.AdminID, &ps.CSRF, &ps.Lang)
	if errors.Is(err, pgx.ErrNoRows) {
		return ps, ErrPanelLink
	}
	return ps, err
}

// DeletePanelSession logs a session out.
func (s *Store) DeletePanelSession(ctx context.Context, sessionHash []byte) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM panel_sessions WHERE id_hash = $1`, sessionHash)
	return err
}

// DayValue is one day's figure of a dashboard series (days in UTC).
type DayValue struct {
	Day   time.Time
	Value int64
}

// Cohort is the trials started in one week and how many of those users
// have paid since.
type Cohort struct {
	Week   time.Time // Monday, UTC
	Trials int64
	Paid   int64
}

// Dashboard is the panel's series over the last days.
type Dashboard struct {
	Revenue map[string][]DayValue // currency → minor units per day, net of refunds on the day of the refund
	Active  []DayValue            // subscriptions live at the end of each day, trials included
	Signups []DayValue            // users registered
	Churn   []DayValue            // bought (not trial, not granted) subscriptions that ended (expired or revoked) that day
	Cohorts []Cohort              // by the week the trial started
}

// Dashboard reads the series over the days up to now's day, each day
// present (zero when nothing happened). Each series is one pass over its
// table's rows of the period, so the cost grows with the period's rows,
// not with every row ever.
func (s *Store) Dashboard(ctx context.Context, now time.Time, days int) (Dashboard, error) {
	now = now.UTC()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	from := today.AddDate(0, 0, -(days - 1))
	d := Dashboard{Revenue: map[string][]DayValue{}}
	index := func(day time.Time) int { return int(day.Sub(from).Hours() / 24) }
	series := func() []DayValue {
		out := make([]DayValue, days)
		for i := range out {
			out[i].Day = from.AddDate(0, 0, i)
		}
		return out
	}
	// add puts each (day, key, value) row into the series of its key.
	add := func(ctx context.Context, sql string, pick func(key string) []DayValue, args ...any) error {
		rows, err := s.pool.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var day time.Time
			var key string
			var v int64
			if err := rows.Scan(&day, &key, &v); err != nil {
				return err
			}
			if i := index(day); i >= 0 && i < days {
				pick(key)[i].Value += v
			}
		}
		return rows.Err()
	}
	wrap := func(what string, err error) error {
		if err != nil {
			return fmt.Errorf("dashboard %s: %w", what, err)
		}
		return nil
	}
	// A subscription's end: its expiry, or the revoke that cut it short.
	const ends = `CASE WHEN status = 'revoked' THEN least(expires_at, updated_at) ELSE expires_at END`
	revenue := func(cur string) []DayValue {
		if d.Revenue[cur] == nil {
			d.Revenue[cur] = series()
		}
		return d.Revenue[cur]
	}
	// The series are independent reads: run at once, the page waits for
	// the slowest instead of their sum.
	d.Signups, d.Churn, d.Active = series(), series(), series()
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		err := add(ctx, `SELECT (applied_at AT TIME ZONE 'UTC')::date::timestamp, currency, sum(amount)::bigint FROM payments
			WHERE applied_at >= $1 GROUP BY 1, 2
		UNION ALL
		SELECT (refunded_at AT TIME ZONE 'UTC')::date::timestamp, currency, -sum(amount)::bigint FROM payments
			WHERE refunded_at >= $1 AND status = 'refunded' GROUP BY 1, 2`, revenue, from)
		return wrap("revenue", err)
	})
	g.Go(func() error {
		err := add(ctx, `SELECT (created_at AT TIME ZONE 'UTC')::date::timestamp, '', count(*) FROM users WHERE created_at >= $1 GROUP BY 1`,
			func(string) []DayValue { return d.Signups }, from)
		return wrap("sign-ups", err)
	})
	g.Go(func() error {
		err := add(ctx, `SELECT (`+ends+` AT TIME ZONE 'UTC')::date::timestamp, '', count(*) FROM subscriptions
		WHERE status <> 'active' AND plan <> ALL ($2) AND `+ends+` >= $1 GROUP BY 1`,
			func(string) []DayValue { return d.Churn }, from, []string{wgbot.TrialPlanName, wgbot.GrantPlanName})
		return wrap("churn", err)
	})
	// Active at each day's end: those live when the period began, plus
	// starts, minus ends, summed day by day.
	var before int64
	g.Go(func() error {
		err := s.pool.QueryRow(ctx, `SELECT count(*) FROM subscriptions WHERE starts_at < $1 AND `+ends+` >= $1`,
			from).Scan(&before)
		return wrap("active", err)
	})
	g.Go(func() error {
		err := add(ctx, `SELECT (starts_at AT TIME ZONE 'UTC')::date::timestamp, '', count(*) FROM subscriptions WHERE starts_at >= $1 GROUP BY 1
		UNION ALL
		SELECT (`+ends+` AT TIME ZONE 'UTC')::date::timestamp, '', -count(*) FROM subscriptions
			WHERE `+ends+` >= $1 AND `+ends+` <= $2 AND status <> 'active' GROUP BY 1`,
			func(string) []DayValue { return d.Active }, from, now)
		return wrap("active", err)
	})
	g.Go(func() error {
		rows, err := s.pool.Query(ctx, `SELECT date_trunc('week', t.created_at AT TIME ZONE 'UTC'), count(*),
				count(*) FILTER (WHERE EXISTS (SELECT 1 FROM payments p
					WHERE p.user_id = t.user_id AND p.status = 'credited' AND p.applied_at >= t.created_at))
			FROM subscriptions t WHERE t.is_trial AND t.created_at >= $1 GROUP BY 1 ORDER BY 1`, from)
		if err == nil {
			d.Cohorts, err = pgx.CollectRows(rows, pgx.RowToStructByPos[Cohort])
		}
		return wrap("cohorts", err)
	})
	if err := g.Wait(); err != nil {
		return d, err
	}
	running := before
	for i := range d.Active {
		running += d.Active[i].Value
		d.Active[i].Value = running
	}
	return d, nil
}

// PanelServer is one server as the panel's server list shows it.
type PanelServer struct {
	Name        string
	Location    string
	State       string // active or draining
	Capacity    *int64
	ActivePeers int64
	Revision    int64      // the database's
	Applied     int64      // what its node last applied
	Handshakes  int64      // peers with a recent handshake, as the node reported
	SeenAt      *time.Time // the node's last report; nil: never
}

// PanelServers lists the servers with their load and their node's state.
func (s *Store) PanelServers(ctx context.Context) ([]PanelServer, error) {
	rows, err := s.pool.Query(ctx, `SELECT sv.name, sv.location, sv.state, sv.capacity::bigint, `+ServerActivePeers+`,
			sv.revision, COALESCE(n.revision, 0), COALESCE(n.handshakes, 0)::bigint, n.seen_at
		FROM servers sv LEFT JOIN node_status n ON n.server_id = sv.id ORDER BY sv.id`)
	if err != nil {
		return nil, fmt.Errorf("panel servers: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[PanelServer])
}

// User states the panel's list filters by.
const (
	PanelActive    = "active"     // a live subscription
	PanelTrial     = "trial"      // live on the trial plan
	PanelExpired   = "expired"    // had one, none live
	PanelNeverPaid = "never_paid" // no payment ever recorded
	PanelBanned    = "banned"
)

// PanelUserFilter says which users the panel's list shows.
type PanelUserFilter struct {
	// Query is a Telegram id, an @username prefix, or a prefix of the
	// first name or username; empty: everyone.
	Query  string
	Status string // one of the Panel* states; empty: any
	Before int64  // only users with a smaller id (the next page); 0: from the newest
	Limit  int
}

// PanelUser is one row of the panel's user list.
type PanelUser struct {
	wgbot.User
	Plan      string // of the current (or last) subscription; "" if none
	Status    string // its status
	ExpiresAt *time.Time
}

// PanelUsers lists users newest first, Limit at a time: the next page
// starts Before the last id shown, so a page costs the same however deep.
func (s *Store) PanelUsers(ctx context.Context, f PanelUserFilter) ([]PanelUser, error) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	q := strings.TrimSpace(f.Query)
	// A search reads its matches by the prefix indexes first: left to
	// itself the planner walks every user newest first for the LIMIT,
	// which costs the whole table when few or none match.
	from := "users"
	search := func(cond string) {
		from = "(WITH hits AS MATERIALIZED (SELECT * FROM users u WHERE " + cond + ") SELECT * FROM hits)"
	}
	if id, err := strconv.ParseInt(q, 10, 64); err == nil {
		where = append(where, "u.telegram_id = "+arg(id))
	} else if name, ok := strings.CutPrefix(q, "@"); ok && name != "" {
		search("u.username <> '' AND lower(u.username) LIKE " + arg(likePrefix(name)))
	} else if q != "" {
		p := arg(likePrefix(q))
		search("lower(u.first_name) LIKE " + p + " OR (u.username <> '' AND lower(u.username) LIKE " + p + ")")
	}
	const live = `EXISTS (SELECT 1 FROM subscriptions a WHERE a.user_id = u.id AND a.status = 'active'`
	switch f.Status {
	case "":
	case PanelActive:
		where = append(where, live+")")
	case PanelTrial:
		where = append(where, live+" AND a.plan = "+arg(wgbot.TrialPlanName)+")")
	case PanelExpired:
		where = append(where, "NOT "+live+") AND EXISTS (SELECT 1 FROM subscriptions e WHERE e.user_id = u.id)")
	case PanelNeverPaid:
		where = append(where, "NOT EXISTS (SELECT 1 FROM payments p WHERE p.user_id = u.id)")
	case PanelBanned:
		where = append(where, "u.banned")
	default:
		return nil, wgbot.Errorf(wgbot.EInvalid, "bad_filter", "unknown user filter %q", f.Status)
	}
	if f.Before > 0 {
		where = append(where, "u.id < "+arg(f.Before))
	}
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 50
	}
	// The page's users first, then their subscriptions: joined before
	// the LIMIT, every match would be.
	page := "SELECT u.* FROM " + from + " u"
	if len(where) > 0 {
		page += " WHERE " + strings.Join(where, " AND ")
	}
	page += " ORDER BY u.id DESC LIMIT " + arg(f.Limit)
	sql := `SELECT u.id, u.telegram_id, u.username, u.first_name, u.language, COALESCE(u.referrer_id, 0),
			u.blocked_bot, u.banned, u.created_at, COALESCE(s.plan, ''), COALESCE(s.status, ''), s.expires_at
		FROM (` + page + `) u
		LEFT JOIN LATERAL (SELECT plan, status, expires_at FROM subscriptions WHERE user_id = u.id
			ORDER BY status = 'active' DESC, id DESC LIMIT 1) s ON true
		ORDER BY u.id DESC`
	// A search's pattern goes in as a literal (pgx quotes it): a LIKE
	// with a parameter in a cached generic plan cannot use the prefix
	// indexes at all.
	if from != "users" {
		args = append([]any{pgx.QueryExecModeSimpleProtocol}, args...)
	}
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("panel users: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (PanelUser, error) {
		var pu PanelUser
		u := &pu.User
		err := row.Scan(&u.ID, &u.TelegramID, &u.Username, &u.FirstName, &u.Language, &u.ReferrerID,
			&u.BlockedBot, &u.Banned, &u.CreatedAt, &pu.Plan, &pu.Status, &pu.ExpiresAt)
		return pu, err
	})
}

// likePrefix is a LIKE pattern matching what starts with s, any case:
// LIKE's own wildcards in s match only themselves.
func likePrefix(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(strings.ToLower(s)) + "%"
}

// PanelPayment is one row of the panel's payment list.
type PanelPayment struct {
	ID                int64
	Provider          string
	ProviderPaymentID string
	TelegramID        int64
	Amount            int64
	Currency          string
	Status            string
	Days              int
	Flagged           string
	AppliedAt         time.Time
	RefundedAt        *time.Time
}

// PanelPaymentFilter says which payments the list shows.
type PanelPaymentFilter struct {
	Provider string // "": any
	Status   string // credited, refunded or "": any
	Flagged  bool
	UserID   int64 // 0: anyone's
	Before   int64 // the next page: ids below it
	Limit    int
}

// PanelPayments lists payments newest first.
func (s *Store) PanelPayments(ctx context.Context, f PanelPaymentFilter) ([]PanelPayment, error) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.Provider != "" {
		where = append(where, "p.provider = "+arg(f.Provider))
	}
	switch f.Status {
	case "":
	case "credited", "refunded":
		where = append(where, "p.status = "+arg(f.Status))
	default:
		return nil, wgbot.Errorf(wgbot.EInvalid, "bad_filter", "unknown payment status %q", f.Status)
	}
	if f.Flagged {
		where = append(where, "p.flagged <> ''")
	}
	if f.UserID > 0 {
		where = append(where, "p.user_id = "+arg(f.UserID))
	}
	if f.Before > 0 {
		where = append(where, "p.id < "+arg(f.Before))
	}
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 50
	}
	sql := `SELECT p.id, p.provider, p.provider_payment_id, COALESCE(u.telegram_id, 0), p.amount, p.currency, p.status, p.days,
			p.flagged, p.applied_at, p.refunded_at
		FROM payments p LEFT JOIN users u ON u.id = p.user_id`
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	sql += " ORDER BY p.id DESC LIMIT " + arg(f.Limit)
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("panel payments: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[PanelPayment])
}

// RecordAudit adds one entry to the audit log on its own: for what
// changes nothing in the database (a sign-in, a broadcast queued
// elsewhere); a change records its entry in its own transaction
// (wgbot.WithAudit).
func (s *Store) RecordAudit(ctx context.Context, e wgbot.AuditEntry) error {
	return insertAudit(ctx, s.pool, e)
}

// AuditLog lists entries newest first, below id before (0: from the
// newest), for one user's Telegram id when target is not 0.
func (s *Store) AuditLog(ctx context.Context, target, before int64, limit int) ([]wgbot.AuditEntry, error) {
	if limit <= 0 || limit > 500 {
		limit = 50
	}
	rows, err := s.pool.Query(ctx, `SELECT id, at, source, admin_id, action, target_id, before, after FROM audit_log
		WHERE ($1 = 0 OR target_id = $1) AND ($2 = 0 OR id < $2) ORDER BY id DESC LIMIT $3`, target, before, limit)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[wgbot.AuditEntry])
}

// UseFormKey spends a form's one-time key: false if it was spent before,
// so the form's action is not done twice.
func (s *Store) UseFormKey(ctx context.Context, key string) (bool, error) {
	tag, err := s.pool.Exec(ctx, `INSERT INTO panel_forms (key) VALUES ($1) ON CONFLICT DO NOTHING`, key)
	if err != nil {
		return false, fmt.Errorf("use form key: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}
