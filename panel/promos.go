package panel

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"wgbot"
)

// The promo codes page: the codes with their use, a form that creates one
// and a button that disables one, as `wgbot promo add|list|disable` and
// the bot's /promoadd, /promos and /promooff do. Both changes are audited
// in their own transaction.

type promosData struct {
	Codes []wgbot.Promo
	Form  url.Values // what the create form last held, shown again after a refusal
}

func (p *Panel) promos(w http.ResponseWriter, r *http.Request, s *session) {
	p.showPromos(w, r, s, http.StatusOK, nil, promoFlash(s.Lang, r.URL.Query()), "")
}

func promoFlash(lang string, q url.Values) string {
	switch {
	case q.Get("added") != "":
		return tr(lang, "promo_added", q.Get("added"))
	case q.Get("disabled") != "":
		return tr(lang, "promo_disabled", q.Get("disabled"))
	}
	return ""
}

func (p *Panel) showPromos(w http.ResponseWriter, r *http.Request, s *session, status int, form url.Values, flash, errText string) {
	list, err := p.svc.Promos(r.Context())
	if err != nil {
		p.fail(w, r, s.Lang, "promo codes", err)
		return
	}
	pg := s.page("promos", "promos")
	pg.Data = promosData{Codes: list, Form: form}
	pg.Flash, pg.Error = flash, errText
	p.render(w, r, status, "promos", pg)
}

// addPromo creates a code from the form: a kind and its value, and the
// optional limits. A refusal shows the form again with why.
func (p *Panel) addPromo(w http.ResponseWriter, r *http.Request, s *session) {
	f := r.PostForm
	promo, err := promoFromForm(f)
	if err == nil {
		promo, err = p.svc.CreatePromo(p.asAdmin(r, s, "promo_add", 0, nil), promo)
	}
	if err != nil {
		p.showPromos(w, r, s, http.StatusConflict, f, "", p.actionError(r, s.Lang, "promo add", err))
		return
	}
	p.log.InfoContext(r.Context(), "panel promo add", "admin", s.AdminID, "code", promo.Code)
	http.Redirect(w, r, "/panel/promos?"+url.Values{"added": {promo.Code}}.Encode(), http.StatusSeeOther)
}

// promoFromForm reads the create form; wgbot.PreparePromo (in
// CreatePromo) checks the rest.
func promoFromForm(f url.Values) (wgbot.Promo, error) {
	field := func(name string) string { return strings.TrimSpace(f.Get(name)) }
	number := func(name string) (int64, error) {
		if field(name) == "" {
			return 0, nil
		}
		n, err := strconv.ParseInt(field(name), 10, 64)
		if err != nil || n < 0 {
			return 0, wgbot.Errorf(wgbot.EInvalid, "bad_promo", "%s: want a whole number, got %q", name, field(name))
		}
		return n, nil
	}
	p := wgbot.Promo{Code: field("code"), Kind: field("kind"), Currency: strings.ToUpper(field("currency")), NewUsers: f.Get("new_users") != ""}
	if p.Kind != wgbot.PromoFixed {
		p.Currency = "" // the form keeps the field; only a fixed discount has one
	}
	var err error
	if p.Value, err = number("value"); err != nil {
		return p, err
	}
	uses, err := number("uses")
	if err != nil {
		return p, err
	}
	perUser, err := number("per_user")
	if err != nil {
		return p, err
	}
	p.MaxUses, p.PerUser = int(uses), int(perUser)
	if until := field("until"); until != "" {
		day, err := time.Parse(time.DateOnly, until)
		if err != nil {
			return p, wgbot.Errorf(wgbot.EInvalid, "bad_promo", "until: want YYYY-MM-DD, got %q", until)
		}
		p.Expires = day.AddDate(0, 0, 1) // through that day, as the CLI's --until
	}
	for _, plan := range strings.Split(field("plans"), ",") {
		if plan = strings.TrimSpace(plan); plan != "" {
			p.Plans = append(p.Plans, plan)
		}
	}
	return p, nil
}

func (p *Panel) disablePromo(w http.ResponseWriter, r *http.Request, s *session) {
	code := r.PathValue("code")
	got, err := p.svc.DisablePromo(p.asAdmin(r, s, "promo_disable", 0, nil), code)
	if err != nil {
		p.showPromos(w, r, s, http.StatusConflict, nil, "", p.actionError(r, s.Lang, "promo disable", err))
		return
	}
	p.log.InfoContext(r.Context(), "panel promo disable", "admin", s.AdminID, "code", got.Code)
	http.Redirect(w, r, "/panel/promos?"+url.Values{"disabled": {got.Code}}.Encode(), http.StatusSeeOther)
}

// promoTerms is what a code gives, for its row: "7 days", "20 %",
// "50.00 RUB off".
func promoTerms(lang string, p wgbot.Promo) string {
	switch p.Kind {
	case wgbot.PromoDays:
		return tr(lang, "promo_terms_days", p.Value)
	case wgbot.PromoPercent:
		return tr(lang, "promo_terms_percent", p.Value)
	}
	return tr(lang, "promo_terms_fixed", formatAmount(p.Value, p.Currency))
}
