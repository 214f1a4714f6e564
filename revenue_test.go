package wgbot

import (
	"errors"
	"testing"
	"time"
)

func TestDiscountPrice(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		d     Discount
		price int64
		want  int64
	}{
		{Discount{Kind: PromoPercent, Value: 20}, 1400, 1120},
		{Discount{Kind: PromoPercent, Value: 50}, 150, 75},
		{Discount{Kind: PromoPercent, Value: 33}, 199, 134}, // 65.67 off: 65 whole units
		{Discount{Kind: PromoPercent, Value: 99}, 1, 1},     // never below one minor unit
		{Discount{Kind: PromoPercent, Value: 99}, 150, 2},
		{Discount{Kind: PromoFixed, Value: 5000, Currency: "RUB"}, 19900, 14900},
		{Discount{Kind: PromoFixed, Value: 50000, Currency: "RUB"}, 19900, 1},
	} {
		if got := tc.d.Price(tc.price); got != tc.want {
			t.Errorf("%+v of %d = %d, want %d", tc.d, tc.price, got, tc.want)
		}
	}
}

func TestDiscountApplies(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		d              Discount
		plan, currency string
		want           bool
	}{
		{Discount{Kind: PromoPercent, Value: 10}, "month", "XTR", true},
		{Discount{Kind: PromoPercent, Value: 10, Plans: []string{"year"}}, "month", "XTR", false},
		{Discount{Kind: PromoPercent, Value: 10, Plans: []string{"year"}}, "year", "RUB", true},
		{Discount{Kind: PromoFixed, Value: 10, Currency: "RUB"}, "month", "XTR", false},
		{Discount{Kind: PromoFixed, Value: 10, Currency: "RUB"}, "month", "RUB", true},
	} {
		if got := tc.d.Applies(tc.plan, tc.currency); got != tc.want {
			t.Errorf("%+v applies to %s in %s: %v, want %v", tc.d, tc.plan, tc.currency, got, tc.want)
		}
	}
}

func TestCanRedeem(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	ok := Promo{Kind: PromoDays, Value: 3, PerUser: 1, MaxUses: 10, Uses: 9}
	for _, tc := range []struct {
		name string
		p    func(Promo) Promo
		used int
		paid bool
		want error
	}{
		{"ok", func(p Promo) Promo { return p }, 0, true, nil},
		{"disabled", func(p Promo) Promo { p.Disabled = true; return p }, 0, false, ErrPromoDisabled},
		{"expired", func(p Promo) Promo { p.Expires = now; return p }, 0, false, ErrPromoExpired},
		{"not yet expired", func(p Promo) Promo { p.Expires = now.Add(time.Second); return p }, 0, false, nil},
		{"used up", func(p Promo) Promo { p.Uses = 10; return p }, 0, false, ErrPromoUsedUp},
		{"no limit", func(p Promo) Promo { p.MaxUses, p.Uses = 0, 1000; return p }, 0, false, nil},
		{"used by the user", func(p Promo) Promo { return p }, 1, false, ErrPromoRepeated},
		{"twice allowed", func(p Promo) Promo { p.PerUser = 2; return p }, 1, false, nil},
		{"new users only", func(p Promo) Promo { p.NewUsers = true; return p }, 0, true, ErrPromoNewOnly},
		{"disabled before expired", func(p Promo) Promo { p.Disabled, p.Expires = true, now; return p }, 0, false, ErrPromoDisabled},
	} {
		if err := tc.p(ok).CanRedeem(now, tc.used, tc.paid); !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestPreparePromo(t *testing.T) {
	t.Parallel()
	plans := []string{"month", "year"}
	p, err := PreparePromo(Promo{Code: " spring-10 ", Kind: PromoFixed, Value: 5000, Currency: "rub", Plans: []string{"year"}}, plans)
	if err != nil || p.Code != "SPRING-10" || p.Currency != "RUB" || p.PerUser != 1 {
		t.Fatalf("prepared %+v, %v", p, err)
	}
	for _, bad := range []Promo{
		{Code: "AB", Kind: PromoDays, Value: 1},
		{Code: "A B C", Kind: PromoDays, Value: 1},
		{Code: "DAYS", Kind: PromoDays, Value: 0},
		{Code: "DAYS", Kind: PromoDays, Value: MaxPromoDays + 1},
		{Code: "DAYS", Kind: PromoDays, Value: 3, Plans: []string{"month"}},
		{Code: "PCT", Kind: PromoPercent, Value: 100},
		{Code: "PCT", Kind: PromoPercent, Value: 10, Currency: "RUB"},
		{Code: "FIX", Kind: PromoFixed, Value: 10},
		{Code: "PLAN", Kind: PromoPercent, Value: 10, Plans: []string{"lifetime"}},
		{Code: "LIMIT", Kind: PromoDays, Value: 1, MaxUses: 1, PerUser: 2},
		{Code: "KIND", Kind: "gift", Value: 1},
	} {
		if _, err := PreparePromo(bad, plans); ErrorCode(err) != EInvalid {
			t.Errorf("%+v: %v, want invalid", bad, err)
		}
	}
}
