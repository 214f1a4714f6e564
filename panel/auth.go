package panel

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"

	"wgbot/postgres"
)

const cookieName = "wgbot_panel"

// session is the signed-in admin a page is rendered for.
type session struct {
	postgres.PanelSession
	hash []byte
}

// loginPage shows a button that signs in with the link's token. Opening
// the link spends nothing: Telegram and mail clients fetch links to
// preview them, and that must not use up the admin's one sign-in.
func (p *Panel) loginPage(w http.ResponseWriter, r *http.Request) {
	token := r.URL.Query().Get("token")
	lang := langOf(r)
	if token == "" {
		p.render(w, r, http.StatusBadRequest, "message", page{Lang: lang, Title: tr(lang, "signin"), Message: tr(lang, "link_needed")})
		return
	}
	p.render(w, r, http.StatusOK, "login", page{Lang: lang, Title: tr(lang, "signin"), Token: token})
}

// login spends the link and starts the session.
func (p *Panel) login(w http.ResponseWriter, r *http.Request) {
	lang := langOf(r)
	if !p.sameOrigin(r) {
		p.refuse(w, r, lang, http.StatusForbidden, "cross_site")
		return
	}
	token := r.PostFormValue("token")
	sid, csrf := randomToken(), randomToken()
	ps, err := p.store.RedeemPanelLink(r.Context(), hashToken(token), hashToken(sid), csrf, p.now(), p.links.IsAdmin)
	if errors.Is(err, postgres.ErrPanelLink) {
		p.log.WarnContext(r.Context(), "panel sign-in refused: link used, expired, unknown or not an admin's")
		p.render(w, r, http.StatusForbidden, "message", page{Lang: lang, Title: tr(lang, "signin"), Message: tr(lang, "link_refused")})
		return
	}
	if err != nil {
		p.fail(w, r, lang, "sign in", err)
		return
	}
	p.log.InfoContext(r.Context(), "panel sign-in", "admin", ps.AdminID)
	p.audit(r, &session{PanelSession: ps}, "sign_in", 0, nil, nil)
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: sid, Path: p.cookiep, HttpOnly: true, Secure: p.secure,
		SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/panel/", http.StatusSeeOther)
}

func (p *Panel) logout(w http.ResponseWriter, r *http.Request, s *session) {
	if err := p.store.DeletePanelSession(r.Context(), s.hash); err != nil {
		p.fail(w, r, s.Lang, "log out", err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: p.cookiep, MaxAge: -1, HttpOnly: true, Secure: p.secure,
		SameSite: http.SameSiteStrictMode})
	p.render(w, r, http.StatusOK, "message", page{Lang: s.Lang, Title: tr(s.Lang, "signed_out"), Message: tr(s.Lang, "signed_out_text")})
}

// authed runs h for a signed-in admin. A request that changes anything
// must also come from the panel's own origin and carry the session's CSRF
// token: SameSite=Strict alone leaves out old browsers and same-site
// attackers.
func (p *Panel) authed(h func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		lang := langOf(r)
		s, err := p.session(r.Context(), r)
		if errors.Is(err, postgres.ErrPanelLink) || (err == nil && !p.links.IsAdmin(s.AdminID)) {
			p.render(w, r, http.StatusUnauthorized, "message", page{Lang: lang, Title: tr(lang, "signin"), Message: tr(lang, "signin_needed")})
			return
		}
		if err != nil {
			p.fail(w, r, lang, "read session", err)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if !p.sameOrigin(r) {
				p.refuse(w, r, s.Lang, http.StatusForbidden, "cross_site")
				return
			}
			if subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(s.CSRF)) != 1 {
				p.refuse(w, r, s.Lang, http.StatusForbidden, "bad_csrf")
				return
			}
		}
		h(w, r, s)
	}
}

func (p *Panel) session(ctx context.Context, r *http.Request) (*session, error) {
	c, err := r.Cookie(cookieName)
	if err != nil || c.Value == "" {
		return nil, postgres.ErrPanelLink
	}
	h := hashToken(c.Value)
	ps, err := p.store.PanelSession(ctx, h, p.now(), p.idle)
	if err != nil {
		return nil, err
	}
	return &session{PanelSession: ps, hash: h}, nil
}

// sameOrigin reports whether a state-changing request came from a page
// of the panel: its Origin (or, when a browser sends none, its Referer's
// origin) is PANEL_URL's.
func (p *Panel) sameOrigin(r *http.Request) bool {
	if o := r.Header.Get("Origin"); o != "" {
		return o == p.origin
	}
	ref, err := url.Parse(r.Header.Get("Referer"))
	return err == nil && ref.Host != "" && ref.Scheme+"://"+ref.Host == p.origin
}

func (p *Panel) refuse(w http.ResponseWriter, r *http.Request, lang string, status int, key string) {
	p.log.WarnContext(r.Context(), "panel request refused", "path", r.URL.Path, "why", key)
	p.render(w, r, status, "message", page{Lang: lang, Title: tr(lang, "refused"), Message: tr(lang, key)})
}

// fail shows an internal failure: the admin sees that it failed, the log
// has why.
func (p *Panel) fail(w http.ResponseWriter, r *http.Request, lang, op string, err error) {
	p.log.ErrorContext(r.Context(), "panel "+op+" failed", "err", err)
	p.render(w, r, http.StatusInternalServerError, "message", page{Lang: lang, Title: tr(lang, "failed"), Message: tr(lang, "internal")})
}

// langOf is the language of a page shown before sign-in: the browser's.
func langOf(r *http.Request) string {
	al := r.Header.Get("Accept-Language")
	if len(al) >= 2 && al[:2] == "ru" {
		return "ru"
	}
	return "en"
}
