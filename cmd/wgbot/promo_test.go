package main

import (
	"strings"
	"testing"
)

// TestPromoCommands: `wgbot promo add|list|disable` through the binary:
// codes are made with the bot's rules, listed with their uses, disabled,
// and bad input is a usage or invalid error that changes nothing.
func TestPromoCommands(t *testing.T) {
	w := newOpWorld(t, "")
	add := w.ok(t, "promo", "add", "spring", "--days", "7", "--uses", "10", "--until", "2099-04-30")
	if !strings.Contains(add.stdout, "SPRING") || !strings.Contains(add.stdout, "7 days") || !strings.Contains(add.stdout, "0/10") {
		t.Fatalf("promo add printed:\n%s", add.stdout)
	}
	w.ok(t, "promo", "add", "YEAR20", "--percent", "20", "--plans", "year", "--new-users")
	w.ok(t, "promo", "add", "MINUS50", "--off", "5000", "--currency", "rub", "--per-user", "2", "--uses", "4")
	var list []promoView
	w.okJSON(t, &list, "promo", "list")
	if len(list) != 3 || list[0].Code != "MINUS50" || list[0].Currency != "RUB" || list[0].PerUser != 2 ||
		list[1].Kind != "percent" || !list[1].NewUsers || list[1].Plans[0] != "year" || list[2].Expires.Format("2006-01-02") != "2099-05-01" {
		t.Fatalf("promo list: %+v", list)
	}
	off := w.ok(t, "promo", "disable", "spring")
	if !strings.Contains(off.stdout, "disabled") {
		t.Fatalf("promo disable printed:\n%s", off.stdout)
	}
	for _, bad := range [][]string{
		{"promo", "add", "SPRING", "--days", "3"},                     // exists
		{"promo", "add", "X", "--days", "3"},                          // too short
		{"promo", "add", "TWO", "--days", "3", "--percent", "10"},     // two kinds
		{"promo", "add", "FULL", "--percent", "100"},                  // nothing left to pay
		{"promo", "add", "NOPLAN", "--percent", "10", "--plans", "x"}, // no such plan
		{"promo", "add", "DATE", "--days", "3", "--until", "soon"},
		{"promo", "disable", "NOSUCH"},
		{"promo", "frobnicate"},
	} {
		if r := w.wgbot(t, bad...); r.code == 0 {
			t.Errorf("wgbot %s succeeded:\n%s", strings.Join(bad, " "), r.stdout)
		}
	}
	if n := w.count(t, `SELECT count(*) FROM promo_codes`); n != 3 {
		t.Fatalf("bad commands left %d codes, want 3", n)
	}
	if n := w.count(t, `SELECT count(*) FROM promo_codes WHERE disabled_at IS NOT NULL`); n != 1 {
		t.Fatalf("%d codes disabled, want 1", n)
	}
}
