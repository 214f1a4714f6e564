package panel

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"wgbot"
	"wgbot/postgres"
	"wgbot/service"
)

// page is what every template gets.
type page struct {
	Lang    string
	Title   string
	Nav     string // which menu entry is this page
	CSRF    string // empty before sign-in
	Token   string // the login page's link token
	Message string // the message page's text
	Flash   string // what the last action did
	Error   string // why the last action failed
	Data    any
}

func parsePages() (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"t":     tr,
		"money": formatAmount,
		// formkey is a new one-time key for each form that shows it (a
		// refund button per payment).
		"formkey": newFormKey,
		"dict":    func(lang string, data any) page { return page{Lang: lang, Data: data} },
		"dict3":   func(lang, csrf string, data any) page { return page{Lang: lang, CSRF: csrf, Data: data} },
		"lag":     func(revision, applied int64) int64 { return max(revision-applied, 0) },
		"state":   auditState,
		"promo":   promoTerms,
		"promouse": func(lang string, u postgres.PromoUse) string {
			return promoTerms(lang, wgbot.Promo{Kind: u.Kind, Value: u.Value})
		},
		"bytes": wgbot.HumanBytes,
		"join":  func(list []string) string { return strings.Join(list, ", ") },
		"date": func(t any) string {
			switch v := t.(type) {
			case time.Time:
				return v.UTC().Format("2006-01-02 15:04")
			case *time.Time:
				if v != nil {
					return v.UTC().Format("2006-01-02 15:04")
				}
			}
			return "—"
		},
	}
	layout, err := fs.ReadFile(files, "templates/layout.html")
	if err != nil {
		return nil, err
	}
	parts, err := fs.ReadFile(files, "templates/parts.html")
	if err != nil {
		return nil, err
	}
	names, err := fs.Glob(files, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" || name == "parts" {
			continue
		}
		body, err := fs.ReadFile(files, n)
		if err != nil {
			return nil, err
		}
		t, err := template.New("layout").Funcs(funcs).Parse(string(layout))
		if err == nil {
			_, err = t.New("parts").Parse(string(parts))
		}
		if err == nil {
			_, err = t.New("body").Parse(string(body))
		}
		if err != nil {
			return nil, fmt.Errorf("panel template %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// render writes a whole page or, if the template fails, a plain error:
// never half a page.
func (p *Panel) render(w http.ResponseWriter, r *http.Request, status int, name string, pg page) {
	var buf bytes.Buffer
	if err := p.pages[name].Execute(&buf, pg); err != nil {
		p.log.ErrorContext(r.Context(), "panel template failed", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func (s *session) page(title, nav string) page {
	return page{Lang: s.Lang, Title: tr(s.Lang, title), Nav: nav, CSRF: s.CSRF}
}

// tile is one window's figures (today, 7 days, 30 days).
type tile struct {
	Name                                         string
	NewUsers, Trials, Converted, Payments, Fails int64
	Revenue                                      []string
}

type chart struct {
	Title string
	SVG   template.HTML
}

type dashboardData struct {
	Stats   wgbot.Stats
	Tiles   []tile
	Charts  []chart
	Servers []postgres.PanelServer
}

func (p *Panel) dashboard(w http.ResponseWriter, r *http.Request, s *session) {
	// Three independent reads, at once.
	var (
		st      wgbot.Stats
		d       postgres.Dashboard
		servers []postgres.PanelServer
	)
	g, ctx := errgroup.WithContext(r.Context())
	g.Go(func() (err error) { st, err = p.svc.Stats(ctx); return err })
	g.Go(func() (err error) { d, err = p.store.Dashboard(ctx, p.now(), Days); return err })
	g.Go(func() (err error) { servers, err = p.store.PanelServers(ctx); return err })
	if err := g.Wait(); err != nil {
		p.fail(w, r, s.Lang, "dashboard", err)
		return
	}
	data := dashboardData{Stats: st, Servers: servers}
	for i, w := range st.Windows {
		t := tile{Name: tr(s.Lang, []string{"today", "days7", "days30"}[min(i, 2)]), NewUsers: w.NewUsers, Trials: w.TrialsStarted,
			Converted: w.TrialsConverted, Payments: w.Payments, Fails: w.FailedPayments}
		for _, rv := range w.Revenue {
			t.Revenue = append(t.Revenue, rv.Provider+": "+formatAmount(rv.Amount, rv.Currency))
		}
		data.Tiles = append(data.Tiles, t)
	}
	data.Charts = dashboardCharts(s.Lang, d)
	pg := s.page("dashboard", "dashboard")
	pg.Data = data
	p.render(w, r, http.StatusOK, "dashboard", pg)
}

// dashboardCharts draws every series: one revenue chart per currency (a
// sum across currencies means nothing), then the others.
func dashboardCharts(lang string, d postgres.Dashboard) []chart {
	days := func(series []postgres.DayValue, text func(int64) string) []point {
		pts := make([]point, len(series))
		for i, dv := range series {
			pts[i] = point{Label: dayLabel(dv.Day), Value: float64(dv.Value), Text: text(dv.Value)}
		}
		return pts
	}
	count := func(v int64) string { return strconv.FormatInt(v, 10) }
	var charts []chart
	currencies := make([]string, 0, len(d.Revenue))
	for c := range d.Revenue {
		currencies = append(currencies, c)
	}
	slices.Sort(currencies)
	for _, cur := range currencies {
		pts := days(d.Revenue[cur], func(v int64) string { return formatAmount(v, cur) })
		for i := range pts {
			if minorUnits(cur) == 2 {
				pts[i].Value /= 100
			}
		}
		title := tr(lang, "chart_revenue", cur)
		charts = append(charts, chart{Title: title, SVG: barChart(title, pts)})
	}
	if len(currencies) == 0 {
		charts = append(charts, chart{Title: tr(lang, "chart_revenue", "—") + ": " + tr(lang, "no_revenue"), SVG: barChart("", nil)})
	}
	add := func(key string, pts []point) {
		charts = append(charts, chart{Title: tr(lang, key), SVG: barChart(tr(lang, key), pts)})
	}
	add("chart_active", days(d.Active, count))
	add("chart_signups", days(d.Signups, count))
	var cohorts []point
	for _, c := range d.Cohorts {
		pct := 0.0
		if c.Trials > 0 {
			pct = 100 * float64(c.Paid) / float64(c.Trials)
		}
		cohorts = append(cohorts, point{Label: c.Week.Format("2006-01-02"), Value: pct,
			Text: fmt.Sprintf("%.0f%% (%d / %d)", pct, c.Paid, c.Trials)})
	}
	add("chart_cohorts", cohorts)
	add("chart_churn", days(d.Churn, count))
	return charts
}

// usersData is the user list page.
type usersData struct {
	Query, Status string
	Users         []postgres.PanelUser
	Next          string // the next page's URL; "" on the last
	Filters       [][2]string
}

const pageSize = 50

func (p *Panel) users(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	f := postgres.PanelUserFilter{Query: q.Get("q"), Status: q.Get("status"), Limit: pageSize + 1}
	f.Before, _ = strconv.ParseInt(q.Get("before"), 10, 64)
	pg := s.page("users", "users")
	data := usersData{Query: f.Query, Status: f.Status, Filters: [][2]string{{"", "filter_any"}, {postgres.PanelActive, "filter_active"},
		{postgres.PanelExpired, "filter_expired"}, {postgres.PanelTrial, "filter_trial"}, {postgres.PanelNeverPaid, "filter_never"},
		{postgres.PanelBanned, "filter_banned"}}}
	list, err := p.store.PanelUsers(r.Context(), f)
	var we *wgbot.Error
	if errors.As(err, &we) && we.Code == wgbot.EInvalid {
		pg.Error = we.Message
		pg.Data = data
		p.render(w, r, http.StatusBadRequest, "users", pg)
		return
	}
	if err != nil {
		p.fail(w, r, s.Lang, "list users", err)
		return
	}
	if len(list) > pageSize {
		list = list[:pageSize]
		next := url.Values{"q": {f.Query}, "status": {f.Status}, "before": {strconv.FormatInt(list[len(list)-1].ID, 10)}}
		data.Next = "/panel/users?" + next.Encode()
	}
	data.Users = list
	pg.Data = data
	p.render(w, r, http.StatusOK, "users", pg)
}

type userData struct {
	User     wgbot.User
	Record   service.UserRecord
	Payments []postgres.PanelPayment
	MaxDays  int
	// FormKey is the grant form's one-time key: a grant sent twice is
	// done once.
	FormKey string
	// LiveSubscription is the live subscription's id (0: none): revoke
	// and ban name it, so a press after the user bought again ends nothing.
	LiveSubscription int64
}

// targetUser reads the user the path names by Telegram id.
func (p *Panel) targetUser(w http.ResponseWriter, r *http.Request, s *session) (wgbot.User, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	var u wgbot.User
	if err == nil {
		u, err = p.svc.UserByTelegramID(r.Context(), id)
	}
	if err != nil && !errors.Is(err, wgbot.ErrUserNotFound) && !errors.Is(err, strconv.ErrSyntax) && !errors.Is(err, strconv.ErrRange) {
		p.fail(w, r, s.Lang, "find user", err)
		return u, false
	}
	if err != nil {
		pg := s.page("users", "users")
		pg.Message = tr(s.Lang, "not_found")
		p.render(w, r, http.StatusNotFound, "message", pg)
		return u, false
	}
	return u, true
}

func (p *Panel) user(w http.ResponseWriter, r *http.Request, s *session) {
	u, ok := p.targetUser(w, r, s)
	if !ok {
		return
	}
	p.showUser(w, r, s, u, http.StatusOK, "", "")
}

func (p *Panel) showUser(w http.ResponseWriter, r *http.Request, s *session, u wgbot.User, status int, flash, errText string) {
	rec, err := p.svc.UserRecord(r.Context(), u)
	if err != nil {
		p.fail(w, r, s.Lang, "read user", err)
		return
	}
	pays, err := p.store.PanelPayments(r.Context(), postgres.PanelPaymentFilter{UserID: u.ID, Limit: 100})
	if err != nil {
		p.fail(w, r, s.Lang, "read payments", err)
		return
	}
	if flash == "" {
		flash = flashText(s.Lang, r.URL.Query())
	}
	pg := s.page("users", "users")
	pg.Title = fmt.Sprintf("%d %s", u.TelegramID, u.FirstName)
	pg.Flash, pg.Error = flash, errText
	data := userData{User: u, Record: rec, Payments: pays, MaxDays: wgbot.MaxGrantDays, FormKey: newFormKey()}
	for _, sub := range rec.Subscriptions {
		if sub.Status == wgbot.SubscriptionActive {
			data.LiveSubscription = sub.ID
		}
	}
	pg.Data = data
	p.render(w, r, status, "user", pg)
}

// flashText is what the redirect after an action says it did; only the
// panel's own keys are shown, so a crafted URL can put no text here.
func flashText(lang string, q url.Values) string {
	switch q.Get("done") {
	case "granted":
		return tr(lang, "granted", q.Get("until"))
	case "refunded":
		days, _ := strconv.Atoi(q.Get("days"))
		return tr(lang, "refund_done", q.Get("charge"), days)
	case "refunded_by_hand":
		days, _ := strconv.Atoi(q.Get("days"))
		return tr(lang, "refund_by_hand", q.Get("charge"), days)
	case "again":
		return tr(lang, "refund_again")
	case "broadcast":
		n, _ := strconv.Atoi(q.Get("n"))
		return tr(lang, "done_broadcast", n)
	case "broadcast_again":
		return tr(lang, "broadcast_again")
	case "revoked", "banned", "unbanned", "sent":
		return tr(lang, "done_"+q.Get("done"))
	}
	return ""
}

// actionError is what an admin reads when an action was refused: a wgbot
// error's message is written for operators; anything else stays in the log.
func (p *Panel) actionError(r *http.Request, lang, op string, err error) string {
	p.log.WarnContext(r.Context(), "panel "+op+" failed", "err", err)
	var we *wgbot.Error
	if errors.As(err, &we) && we.Code != wgbot.EInternal {
		return tr(lang, "error", we.Message)
	}
	return tr(lang, "internal")
}

func (p *Panel) grant(w http.ResponseWriter, r *http.Request, s *session) {
	u, ok := p.targetUser(w, r, s)
	if !ok {
		return
	}
	days, err := strconv.Atoi(strings.TrimSpace(r.PostFormValue("days")))
	if err != nil || days < 1 || days > wgbot.MaxGrantDays {
		p.showUser(w, r, s, u, http.StatusBadRequest, "", tr(s.Lang, "bad_days", wgbot.MaxGrantDays))
		return
	}
	key := r.PostFormValue("form")
	if len(key) != 32 {
		p.showUser(w, r, s, u, http.StatusBadRequest, "", tr(s.Lang, "internal"))
		return
	}
	fresh, err := p.store.UseFormKey(r.Context(), key)
	if err != nil {
		p.showUser(w, r, s, u, http.StatusServiceUnavailable, "", p.actionError(r, s.Lang, "grant", err))
		return
	}
	if !fresh {
		// The same form again (a double click, a resent POST): done once.
		http.Redirect(w, r, fmt.Sprintf("/panel/users/%d?%s", u.TelegramID, url.Values{"done": {"again"}}.Encode()), http.StatusSeeOther)
		return
	}
	sub, err := p.act.GrantDays(p.asAdmin(r, s, "grant", u.TelegramID, map[string]any{"days": days}), u, days)
	if err != nil {
		p.showUser(w, r, s, u, http.StatusConflict, "", p.actionError(r, s.Lang, "grant", err))
		return
	}
	p.log.InfoContext(r.Context(), "panel grant", "admin", s.AdminID, "user", u.TelegramID, "days", days, "until", sub.ExpiresAt)
	q := url.Values{"done": {"granted"}, "until": {sub.ExpiresAt.UTC().Format("2006-01-02 15:04")}}
	http.Redirect(w, r, fmt.Sprintf("/panel/users/%d?%s", u.TelegramID, q.Encode()), http.StatusSeeOther)
}

// refund returns a payment's money through its provider and reverses it
// in the ledger, once: the form's one-time key makes a double click or a
// resent POST do nothing the second time, and the ledger's own check
// (Duplicate) covers two pages open at once.
func (p *Panel) refund(w http.ResponseWriter, r *http.Request, s *session) {
	provider, charge := r.PostFormValue("provider"), r.PostFormValue("charge")
	back := "/panel/payments"
	target, err := strconv.ParseInt(r.PostFormValue("user"), 10, 64)
	if err == nil {
		back = fmt.Sprintf("/panel/users/%d", target)
	}
	refused := func(status int, err error) {
		pg := s.page("payments", "payments")
		pg.Message = p.actionError(r, s.Lang, "refund", err)
		p.render(w, r, status, "message", pg)
	}
	key := r.PostFormValue("form")
	if len(key) != 32 {
		refused(http.StatusBadRequest, wgbot.Errorf(wgbot.EInvalid, "bad_form", "the refund form is incomplete; reload the page"))
		return
	}
	fresh, err := p.store.UseFormKey(r.Context(), key)
	if err != nil {
		refused(http.StatusServiceUnavailable, err)
		return
	}
	if !fresh {
		http.Redirect(w, r, back+"?"+url.Values{"done": {"again"}}.Encode(), http.StatusSeeOther)
		return
	}
	res, err := p.act.RefundPayment(p.asAdmin(r, s, "refund", target, nil), provider, charge)
	if err != nil {
		refused(http.StatusConflict, err)
		return
	}
	q := url.Values{"done": {"refunded"}, "charge": {charge}, "days": {strconv.Itoa(res.Days)}}
	switch {
	case res.Duplicate:
		q = url.Values{"done": {"again"}}
	case res.Note != "":
		q.Set("done", "refunded_by_hand")
		fallthrough
	default:
		p.log.InfoContext(r.Context(), "panel refund", "admin", s.AdminID, "provider", provider, "payment", charge, "days", res.Days, "note", res.Note)
	}
	http.Redirect(w, r, back+"?"+q.Encode(), http.StatusSeeOther)
}

type paymentsData struct {
	Provider, Status string
	Flagged          bool
	Payments         []postgres.PanelPayment
	Next             string
}

func (p *Panel) payments(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	f := postgres.PanelPaymentFilter{Provider: q.Get("provider"), Status: q.Get("status"), Flagged: q.Get("flagged") == "1", Limit: pageSize + 1}
	f.Before, _ = strconv.ParseInt(q.Get("before"), 10, 64)
	pg := s.page("payments", "payments")
	pg.Flash = flashText(s.Lang, q)
	data := paymentsData{Provider: f.Provider, Status: f.Status, Flagged: f.Flagged}
	list, err := p.store.PanelPayments(r.Context(), f)
	var we *wgbot.Error
	if errors.As(err, &we) && we.Code == wgbot.EInvalid {
		pg.Error, pg.Data = we.Message, data
		p.render(w, r, http.StatusBadRequest, "payments", pg)
		return
	}
	if err != nil {
		p.fail(w, r, s.Lang, "list payments", err)
		return
	}
	if len(list) > pageSize {
		list = list[:pageSize]
		next := url.Values{"provider": {f.Provider}, "status": {f.Status}, "before": {strconv.FormatInt(list[len(list)-1].ID, 10)}}
		if f.Flagged {
			next.Set("flagged", "1")
		}
		data.Next = "/panel/payments?" + next.Encode()
	}
	data.Payments = list
	pg.Data = data
	p.render(w, r, http.StatusOK, "payments", pg)
}

func (p *Panel) servers(w http.ResponseWriter, r *http.Request, s *session) {
	list, err := p.store.PanelServers(r.Context())
	if err != nil {
		p.fail(w, r, s.Lang, "servers", err)
		return
	}
	pg := s.page("servers", "servers")
	pg.Data = list
	p.render(w, r, http.StatusOK, "servers", pg)
}

// formatAmount shows minor units as the currency is written: Stars are
// whole, most fiat currencies have cents.
func formatAmount(amount int64, currency string) string {
	if currency == "XTR" {
		return fmt.Sprintf("%d ⭐", amount)
	}
	if minorUnits(currency) == 0 {
		return fmt.Sprintf("%d %s", amount, currency)
	}
	sign := ""
	if amount < 0 {
		sign, amount = "-", -amount
	}
	return fmt.Sprintf("%s%d.%02d %s", sign, amount/100, amount%100, currency)
}

func minorUnits(currency string) int {
	switch currency {
	case "XTR", "JPY", "KRW":
		return 0
	}
	return 2
}

// auditState shows an audit entry's before or after as "key: value"
// pairs in key order.
func auditState(m map[string]any) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s: %v", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// newFormKey is a random one-time key for a form (UseFormKey).
func newFormKey() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b[:])
}
