package panel

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"wgbot"
	"wgbot/postgres"
)

// The user page's actions beyond grant and refund, and the audit log.
// Each action is done by the bot's own step (the user is told as the bot's
// admin commands tell them), then recorded in the audit log.

// asAdmin marks the request's context as this admin's action: the store
// records the change it makes in that change's own transaction
// (wgbot.WithAudit), with the state before and after as it read them.
// after is what the panel adds to that.
func (p *Panel) asAdmin(r *http.Request, s *session, action string, target int64, after map[string]any) context.Context {
	return wgbot.WithAudit(r.Context(), wgbot.AuditEntry{Source: wgbot.AuditPanel, AdminID: s.AdminID, Action: action,
		TargetID: target, After: after})
}

// audit records what an admin did that the database does not hold (a
// message sent). It is done by then: a failure to record it is logged,
// and the admin still sees it done.
func (p *Panel) audit(r *http.Request, s *session, action string, target int64, before, after map[string]any) {
	err := p.store.RecordAudit(r.Context(), wgbot.AuditEntry{Source: wgbot.AuditPanel, AdminID: s.AdminID, Action: action,
		TargetID: target, Before: before, After: after})
	if err != nil {
		p.log.ErrorContext(r.Context(), "panel audit failed", "action", action, "admin", s.AdminID, "user", target, "err", err)
	}
}

// afterAction shows the user page again: with what was done, or why not.
func (p *Panel) afterAction(w http.ResponseWriter, r *http.Request, s *session, u wgbot.User, op, done string, err error) {
	if errors.Is(err, wgbot.ErrConfirmStale) {
		p.showUser(w, r, s, u, http.StatusConflict, "", tr(s.Lang, "stale"))
		return
	}
	if err != nil {
		p.showUser(w, r, s, u, http.StatusConflict, "", p.actionError(r, s.Lang, op, err))
		return
	}
	p.log.InfoContext(r.Context(), "panel "+op, "admin", s.AdminID, "user", u.TelegramID)
	http.Redirect(w, r, fmt.Sprintf("/panel/users/%d?%s", u.TelegramID, url.Values{"done": {done}}.Encode()), http.StatusSeeOther)
}

func (p *Panel) revoke(w http.ResponseWriter, r *http.Request, s *session) {
	p.endAccess(w, r, s, "revoke", "revoked", p.act.RevokeUser)
}

func (p *Panel) ban(w http.ResponseWriter, r *http.Request, s *session) {
	p.endAccess(w, r, s, "ban", "banned", p.act.BanUser)
}

// endAccess revokes or bans for the live subscription the page showed
// (its id in the form): pressed after the user bought another, it ends
// nothing.
func (p *Panel) endAccess(w http.ResponseWriter, r *http.Request, s *session, op, done string, end func(context.Context, wgbot.User, int64) error) {
	u, ok := p.targetUser(w, r, s)
	if !ok {
		return
	}
	subID, _ := strconv.ParseInt(r.PostFormValue("sub"), 10, 64)
	err := end(p.asAdmin(r, s, op, u.TelegramID, nil), u, subID)
	p.afterAction(w, r, s, u, op, done, err)
}

func (p *Panel) unban(w http.ResponseWriter, r *http.Request, s *session) {
	u, ok := p.targetUser(w, r, s)
	if !ok {
		return
	}
	err := p.act.UnbanUser(p.asAdmin(r, s, "unban", u.TelegramID, nil), u)
	p.afterAction(w, r, s, u, "unban", "unbanned", err)
}

func (p *Panel) message(w http.ResponseWriter, r *http.Request, s *session) {
	u, ok := p.targetUser(w, r, s)
	if !ok {
		return
	}
	text := r.PostFormValue("text")
	err := p.act.SendMessage(r.Context(), u, text)
	if err == nil {
		p.audit(r, s, "message", u.TelegramID, nil, map[string]any{"text": text})
	}
	p.afterAction(w, r, s, u, "message", "sent", err)
}

type auditData struct {
	Entries []wgbot.AuditEntry
	Next    string
}

func (p *Panel) auditPage(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	target, _ := strconv.ParseInt(q.Get("user"), 10, 64)
	before, _ := strconv.ParseInt(q.Get("before"), 10, 64)
	list, err := p.store.AuditLog(r.Context(), target, before, pageSize+1)
	if err != nil {
		p.fail(w, r, s.Lang, "audit log", err)
		return
	}
	data := auditData{Entries: list}
	if len(list) > pageSize {
		data.Entries = list[:pageSize]
		next := url.Values{"before": {strconv.FormatInt(data.Entries[pageSize-1].ID, 10)}}
		if target != 0 {
			next.Set("user", strconv.FormatInt(target, 10))
		}
		data.Next = "/panel/audit?" + next.Encode()
	}
	pg := s.page("audit", "audit")
	pg.Data = data
	p.render(w, r, http.StatusOK, "audit", pg)
}

// serverState drains a server (no new peers there; its peers keep
// working) or enables it again, as `wgbot servers drain|enable` does.
func (p *Panel) serverState(w http.ResponseWriter, r *http.Request, s *session) {
	name := r.PathValue("name")
	state := map[string]string{"drain": postgres.ServerDraining, "enable": postgres.ServerActive}[r.PathValue("state")]
	if state == "" {
		http.NotFound(w, r)
		return
	}
	if err := p.store.SetServerState(p.asAdmin(r, s, r.PathValue("state"), 0, nil), name, state); err != nil {
		pg := s.page("servers", "servers")
		pg.Message = p.actionError(r, s.Lang, "server state", err)
		p.render(w, r, http.StatusConflict, "message", pg)
		return
	}
	p.log.InfoContext(r.Context(), "panel server state", "admin", s.AdminID, "server", name, "state", state)
	http.Redirect(w, r, "/panel/servers", http.StatusSeeOther)
}
