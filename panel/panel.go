// Package panel is the operator's web panel under /panel/: sign-in by a
// one-time link from the bot or the CLI, sessions in PostgreSQL, and pages
// rendered on the server (html/template, charts as inline SVG) for the
// dashboard, users, payments and servers.
package panel

import (
	"context"
	"embed"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"wgbot"
	"wgbot/postgres"
	"wgbot/service"
)

//go:embed templates/*.html static/*
var files embed.FS

// Store is the panel's storage (postgres.Store).
type Store interface {
	LinkStore
	RedeemPanelLink(ctx context.Context, tokenHash, sessionHash []byte, csrf string, now time.Time, isAdmin func(int64) bool) (postgres.PanelSession, error)
	PanelSession(ctx context.Context, sessionHash []byte, now time.Time, idle time.Duration) (postgres.PanelSession, error)
	DeletePanelSession(ctx context.Context, sessionHash []byte) error
	Dashboard(ctx context.Context, now time.Time, days int) (postgres.Dashboard, error)
	PanelUsers(ctx context.Context, f postgres.PanelUserFilter) ([]postgres.PanelUser, error)
	PanelPayments(ctx context.Context, f postgres.PanelPaymentFilter) ([]postgres.PanelPayment, error)
	PanelServers(ctx context.Context) ([]postgres.PanelServer, error)
	SetServerState(ctx context.Context, name, state string) error
	AudienceSizes(ctx context.Context) (map[wgbot.Audience]int, error)
	RecentBroadcasts(ctx context.Context, limit int) ([]postgres.Broadcast, error)
	QueueBroadcastTo(ctx context.Context, text string, adminChat int64, key int, lang string, audience wgbot.Audience) (int, error)
	RecordAudit(ctx context.Context, e wgbot.AuditEntry) error
	UseFormKey(ctx context.Context, key string) (bool, error)
	AuditLog(ctx context.Context, target, before int64, limit int) ([]wgbot.AuditEntry, error)
}

// Service is what the panel reads through the business layer
// (*service.Service).
type Service interface {
	Stats(ctx context.Context) (wgbot.Stats, error)
	UserByTelegramID(ctx context.Context, telegramID int64) (wgbot.User, error)
	UserRecord(ctx context.Context, user wgbot.User) (service.UserRecord, error)
	Subscription(ctx context.Context, user wgbot.User) (wgbot.Subscription, error)
	Promos(ctx context.Context) ([]wgbot.Promo, error)
	CreatePromo(ctx context.Context, p wgbot.Promo) (wgbot.Promo, error)
	DisablePromo(ctx context.Context, code string) (wgbot.Promo, error)
}

// Actions change a user and tell them, as the bot's admin commands do
// (*telegram.Bot): the panel never writes to a user itself.
type Actions interface {
	GrantDays(ctx context.Context, user wgbot.User, days int) (wgbot.Subscription, error)
	RefundPayment(ctx context.Context, provider, chargeID string) (wgbot.RefundResult, error)
	RevokeUser(ctx context.Context, user wgbot.User, subID int64) error
	BanUser(ctx context.Context, user wgbot.User, subID int64) error
	UnbanUser(ctx context.Context, user wgbot.User) error
	SendMessage(ctx context.Context, user wgbot.User, text string) error
}

// Days is how far back the dashboard's charts go.
const Days = 90

// Panel serves the pages.
type Panel struct {
	links   *Links
	store   Store
	svc     Service
	act     Actions
	log     *slog.Logger
	pages   map[string]*template.Template
	origin  string // scheme://host of PANEL_URL: what a state-changing request's Origin must be
	secure  bool   // cookies only over https
	now     func() time.Time
	idle    time.Duration
	cookiep string // the cookie's path
}

// New builds the panel on links (which knows PANEL_URL and the admins).
func New(links *Links, store Store, svc Service, act Actions, log *slog.Logger) (*Panel, error) {
	if links == nil || store == nil || svc == nil || act == nil || log == nil {
		return nil, errors.New("panel: New needs links, a store, a service, actions and a logger")
	}
	u, _ := url.Parse(links.cfg.BaseURL) // checked by NewLinks
	p := &Panel{links: links, store: store, svc: svc, act: act, log: log,
		origin: u.Scheme + "://" + u.Host, secure: u.Scheme == "https",
		now: links.cfg.Now, idle: links.cfg.IdleTimeout, cookiep: "/panel/"}
	var err error
	if p.pages, err = parsePages(); err != nil {
		return nil, err
	}
	return p, nil
}

// Handler serves everything under /panel/.
func (p *Panel) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /panel/static/", http.StripPrefix("/panel/", http.FileServerFS(files)))
	mux.HandleFunc("GET /panel/login", p.loginPage)
	mux.HandleFunc("POST /panel/login", p.login)
	mux.HandleFunc("POST /panel/logout", p.authed(p.logout))
	mux.HandleFunc("GET /panel/{$}", p.authed(p.dashboard))
	mux.HandleFunc("GET /panel/users", p.authed(p.users))
	mux.HandleFunc("GET /panel/users/{id}", p.authed(p.user))
	mux.HandleFunc("POST /panel/users/{id}/grant", p.authed(p.grant))
	mux.HandleFunc("POST /panel/users/{id}/revoke", p.authed(p.revoke))
	mux.HandleFunc("POST /panel/users/{id}/ban", p.authed(p.ban))
	mux.HandleFunc("POST /panel/users/{id}/unban", p.authed(p.unban))
	mux.HandleFunc("POST /panel/users/{id}/message", p.authed(p.message))
	mux.HandleFunc("POST /panel/refund", p.authed(p.refund))
	mux.HandleFunc("GET /panel/audit", p.authed(p.auditPage))
	mux.HandleFunc("GET /panel/broadcast", p.authed(p.broadcastPage))
	mux.HandleFunc("POST /panel/broadcast", p.authed(p.broadcast))
	mux.HandleFunc("POST /panel/servers/{name}/{state}", p.authed(p.serverState))
	mux.HandleFunc("GET /panel/payments", p.authed(p.payments))
	mux.HandleFunc("GET /panel/servers", p.authed(p.servers))
	mux.HandleFunc("GET /panel/promos", p.authed(p.promos))
	mux.HandleFunc("POST /panel/promos", p.authed(p.addPromo))
	mux.HandleFunc("POST /panel/promos/{code}/disable", p.authed(p.disablePromo))
	return securityHeaders(mux)
}

// securityHeaders: no page of the panel may be framed, cached, or run a
// script it did not serve itself. The referrer policy keeps Origin on
// same-origin posts (no-referrer would make it "null").
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "same-origin")
		if !strings.HasPrefix(r.URL.Path, "/panel/static/") {
			hd.Set("Cache-Control", "no-store")
		}
		h.ServeHTTP(w, r)
	})
}
