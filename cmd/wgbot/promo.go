package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"wgbot"
	"wgbot/service"
)

const usagePromo = "promo add CODE (--days N | --percent N | --off MINOR_UNITS --currency CUR) [--uses N] [--per-user N] " +
	"[--until YYYY-MM-DD] [--plans a,b] [--new-users] | promo list | promo disable CODE [--json]"

// promo manages promo codes: the same rules as the bot's /promoadd,
// /promos and /promooff. Codes live in the database alone, so no
// WireGuard or master key is needed.
func (op *operatorCmd) promo(ctx context.Context, args []string) error {
	if len(args) == 0 || (args[0] != "add" && args[0] != "list" && args[0] != "disable") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
			fmt.Fprintf(op.out, "usage: wgbot %s\n", usagePromo)
			return nil
		}
		return usageError{"promo: want add, list or disable\nusage: wgbot " + usagePromo}
	}
	fs := op.flags("promo " + args[0])
	var p wgbot.Promo
	var days, percent, off int64
	var until, plans string
	if args[0] == "add" {
		fs.Int64Var(&days, "days", 0, "free days, given at once")
		fs.Int64Var(&percent, "percent", 0, "percent off the next order (1-99)")
		fs.Int64Var(&off, "off", 0, "amount off the next order, in minor units of --currency (5000 RUB is 50.00 RUB; XTR: stars)")
		fs.StringVar(&p.Currency, "currency", "", "the currency of --off")
		fs.IntVar(&p.MaxUses, "uses", 0, "redemptions in all (0: no limit)")
		fs.IntVar(&p.PerUser, "per-user", 1, "redemptions per user")
		fs.StringVar(&until, "until", "", "last day it can be redeemed, YYYY-MM-DD (UTC)")
		fs.StringVar(&plans, "plans", "", "comma-separated plans a discount applies to (default: every plan)")
		fs.BoolVar(&p.NewUsers, "new-users", false, "only for users who never paid")
	}
	npos := 1
	if args[0] == "list" {
		npos = 0
	}
	pos, err := op.parse(fs, usagePromo, args[1:], npos)
	if err != nil {
		return err
	}
	store, closeDB, err := op.openStore(ctx)
	if err != nil {
		return err
	}
	defer closeDB()
	switch args[0] {
	case "list":
		list, err := store.Promos(ctx)
		if err != nil {
			return err
		}
		return op.printPromos(list)
	case "disable":
		got, err := store.DisablePromo(asOperator(ctx, "promo_disable", 0, nil), wgbot.NormalizePromoCode(pos[0]), time.Now().UTC())
		if err != nil {
			return err
		}
		return op.printPromos([]wgbot.Promo{got})
	}
	p.Code = pos[0]
	set := 0
	for kind, v := range map[string]int64{wgbot.PromoDays: days, wgbot.PromoPercent: percent, wgbot.PromoFixed: off} {
		if v != 0 {
			p.Kind, p.Value = kind, v
			set++
		}
	}
	if set != 1 {
		return usageError{"promo add: give exactly one of --days, --percent and --off\nusage: wgbot " + usagePromo}
	}
	if until != "" {
		day, err := time.Parse(time.DateOnly, until)
		if err != nil {
			return usageError{fmt.Sprintf("promo add: --until %q: want YYYY-MM-DD", until)}
		}
		p.Expires = day.AddDate(0, 0, 1) // through that day
	}
	if plans != "" {
		p.Plans = strings.Split(plans, ",")
	}
	onSale, err := service.LoadPlans(op.settings.PlansFile)
	if err != nil {
		return err
	}
	var names []string
	for _, pl := range onSale {
		names = append(names, pl.Name)
	}
	if p, err = wgbot.PreparePromo(p, names); err != nil {
		return err
	}
	created, err := store.CreatePromo(asOperator(ctx, "promo_add", 0, nil), p)
	if err != nil {
		return err
	}
	return op.printPromos([]wgbot.Promo{created})
}

// promoView is a promo code as the CLI prints it.
type promoView struct {
	Code     string    `json:"code"`
	Kind     string    `json:"kind"`
	Value    int64     `json:"value"`
	Currency string    `json:"currency,omitempty"`
	Plans    []string  `json:"plans,omitempty"`
	Uses     int       `json:"uses"`
	MaxUses  int       `json:"max_uses"` // 0: no limit
	PerUser  int       `json:"per_user"`
	NewUsers bool      `json:"new_users"`
	Expires  time.Time `json:"expires_at,omitzero"`
	Disabled bool      `json:"disabled"`
	Created  time.Time `json:"created_at"`
}

func (op *operatorCmd) printPromos(list []wgbot.Promo) error {
	views := make([]promoView, len(list))
	for i, p := range list {
		views[i] = promoView{Code: p.Code, Kind: p.Kind, Value: p.Value, Currency: p.Currency, Plans: p.Plans, Uses: p.Uses,
			MaxUses: p.MaxUses, PerUser: p.PerUser, NewUsers: p.NewUsers, Expires: p.Expires, Disabled: p.Disabled, Created: p.Created}
	}
	if op.json {
		return op.writeJSON(views)
	}
	tw := newTable(op.out)
	fmt.Fprintln(tw, "CODE\tGIVES\tUSES\tPER USER\tPLANS\tNEW USERS\tUNTIL (UTC)\tSTATE")
	for _, v := range views {
		gives := fmt.Sprintf("%d days", v.Value)
		switch v.Kind {
		case wgbot.PromoPercent:
			gives = fmt.Sprintf("%d%% off", v.Value)
		case wgbot.PromoFixed:
			gives = fmt.Sprintf("%d %s off (minor units)", v.Value, v.Currency)
		}
		uses := fmt.Sprintf("%d", v.Uses)
		if v.MaxUses > 0 {
			uses += fmt.Sprintf("/%d", v.MaxUses)
		}
		until, state := "-", "active"
		if !v.Expires.IsZero() {
			until = fmtTime(v.Expires)
			if !time.Now().Before(v.Expires) {
				state = "expired"
			}
		}
		if v.Disabled {
			state = "disabled"
		}
		plans := "all"
		if len(v.Plans) > 0 {
			plans = strings.Join(v.Plans, ",")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%v\t%s\t%s\n", v.Code, gives, uses, v.PerUser, plans, v.NewUsers, until, state)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(op.out, "%d promo code(s)\n", len(views))
	return nil
}
