package tgtest

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// TestCreateInvoiceLink: a subscription link is accepted only for 30 days,
// in Stars, at no more than 10000 Stars, as the Bot API does; a plain link
// has no period.
func TestCreateInvoiceLink(t *testing.T) {
	s := newServer(t)
	base := func(extra map[string]any) map[string]any {
		p := map[string]any{"title": "VPN", "description": "A month", "payload": "42", "currency": "XTR",
			"prices": []map[string]any{{"label": "VPN", "amount": 150}}}
		for k, v := range extra {
			p[k] = v
		}
		return p
	}
	for _, tc := range []struct {
		name   string
		params map[string]any
		err    string // "" : accepted
		period int
	}{
		{"a month in Stars", base(map[string]any{"subscription_period": 2592000}), "", 2592000},
		{"one-time", base(nil), "", 0},
		{"a week", base(map[string]any{"subscription_period": 604800}), "SUBSCRIPTION_PERIOD_INVALID", 0},
		{"a zero period", base(map[string]any{"subscription_period": 0}), "SUBSCRIPTION_PERIOD_INVALID", 0},
		{"in roubles", base(map[string]any{"subscription_period": 2592000, "currency": "RUB", "provider_token": "x"}), "SUBSCRIPTION_CURRENCY_INVALID", 0},
		{"too dear", base(map[string]any{"subscription_period": 2592000, "prices": []map[string]any{{"label": "VPN", "amount": 10001}}}), "SUBSCRIPTION_PRICE_INVALID", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := callJSON(t, s, "createInvoiceLink", tc.params)
			if tc.err != "" {
				if r.OK || r.ErrorCode != 400 || !strings.Contains(r.Description, tc.err) {
					t.Fatalf("got %s, want a 400 %s", r.Raw, tc.err)
				}
				return
			}
			var link string
			if !r.OK || json.Unmarshal(r.Result, &link) != nil {
				t.Fatalf("got %s", r.Raw)
			}
			inv, ok := s.InvoiceLink(link)
			if !ok || inv.SubscriptionPeriod != tc.period || inv.Payload != "42" || inv.Total() != 150 {
				t.Fatalf("link %q: %+v, %v", link, inv, ok)
			}
		})
	}
}

// TestStarSubscriptionCharges: paying a subscription link is its first
// recurring charge; renewals follow on demand, each a new charge one
// period later; editUserStarSubscription (only by the subscriber's id and
// one of its charges) stops them, and re-enabling lets them go on; a
// refunded charge stops them too.
func TestStarSubscriptionCharges(t *testing.T) {
	s := newServer(t)
	s.AddUser(alice)
	r := callJSON(t, s, "createInvoiceLink", map[string]any{"title": "VPN", "description": "A month", "payload": "42",
		"currency": "XTR", "prices": []map[string]any{{"label": "VPN", "amount": 150}}, "subscription_period": 2592000})
	var link string
	if err := json.Unmarshal(r.Result, &link); err != nil {
		t.Fatal(r.Raw)
	}
	if _, err := s.PayInvoiceLink(alice, link, "c1"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.RenewSubscription(alice, "c1", "c2"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.RenewSubscription(alice, "c1", "c2"); err == nil {
		t.Fatal("a charge id was used twice")
	}
	ups := callJSON(t, s, "getUpdates", map[string]any{})
	var updates []struct {
		Message struct {
			SuccessfulPayment wireSuccessfulPayment `json:"successful_payment"`
		} `json:"message"`
	}
	if err := json.Unmarshal(ups.Result, &updates); err != nil || len(updates) != 2 {
		t.Fatalf("updates: %s", ups.Raw)
	}
	first, second := updates[0].Message.SuccessfulPayment, updates[1].Message.SuccessfulPayment
	if !first.IsRecurring || !first.IsFirstRecurring || first.TelegramPaymentChargeID != "c1" || first.InvoicePayload != "42" || first.TotalAmount != 150 {
		t.Errorf("first charge: %+v", first)
	}
	if !second.IsRecurring || second.IsFirstRecurring || second.TelegramPaymentChargeID != "c2" ||
		second.SubscriptionExpirationDate-first.SubscriptionExpirationDate != 2592000 {
		t.Errorf("renewal: %+v after %+v", second, first)
	}

	edit := func(user int64, charge string, canceled bool) apiReply {
		return callJSON(t, s, "editUserStarSubscription", map[string]any{"user_id": user, "telegram_payment_charge_id": charge, "is_canceled": canceled})
	}
	if r := edit(alice.ID+1, "c1", true); r.OK {
		t.Fatal("another user cancelled alice's subscription")
	}
	if r := edit(alice.ID, "nope", true); r.OK {
		t.Fatal("an unknown charge was cancelled")
	}
	if r := edit(alice.ID, "c2", true); !r.OK || !s.SubscriptionCanceled("c1") {
		t.Fatalf("cancel: %s", r.Raw)
	}
	if _, _, err := s.RenewSubscription(alice, "c1", "c3"); !errors.Is(err, ErrSubscriptionCanceled) {
		t.Fatalf("renewed after the cancel: %v", err)
	}
	if r := edit(alice.ID, "c1", false); !r.OK || s.SubscriptionCanceled("c1") {
		t.Fatalf("re-enable: %s", r.Raw)
	}
	if _, _, err := s.RenewSubscription(alice, "c1", "c3"); err != nil {
		t.Fatal(err)
	}
	if r := callJSON(t, s, "refundStarPayment", map[string]any{"user_id": alice.ID, "telegram_payment_charge_id": "c3"}); !r.OK {
		t.Fatal(r.Raw)
	}
	if _, _, err := s.RenewSubscription(alice, "c1", "c4"); !errors.Is(err, ErrSubscriptionCanceled) {
		t.Fatalf("renewed after a refund: %v", err)
	}
}
