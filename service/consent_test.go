package service_test

import (
	"context"
	"testing"

	"wgbot/postgres"
)

// TestCheckoutConsent: the checkout's box is part of the order: a ticked
// checkout gets its own order (never the open one made unticked, whose
// payment would save no card), and unticking records the choice without
// touching a card saved before; /autorenew off still cancels it.
func TestCheckoutConsent(t *testing.T) {
	ctx := context.Background()
	e := setupWith(t, "10.190.0.0/24", nil, revenueStore)
	u := e.user(t, 1)
	plain, err := e.svc.CreateCheckoutOrder(ctx, u, "month", "yookassa", "RUB", false)
	if err != nil {
		t.Fatal(err)
	}
	saving, err := e.svc.CreateCheckoutOrder(ctx, u, "month", "yookassa", "RUB", true)
	if err != nil {
		t.Fatal(err)
	}
	again, err := e.svc.CreateCheckoutOrder(ctx, u, "month", "yookassa", "RUB", true)
	if err != nil {
		t.Fatal(err)
	}
	if plain.SaveCard || !saving.SaveCard || saving.ID == plain.ID || again.ID != saving.ID {
		t.Fatalf("orders: unticked %+v, ticked %+v, ticked again %+v", plain, saving, again)
	}
	if reused, err := e.svc.CreateOrder(ctx, u, "month", "yookassa", "RUB"); err != nil || reused.ID != plain.ID {
		t.Fatalf("a plain order reused %d (%v), want the unticked %d", reused.ID, err, plain.ID)
	}
	if err := e.svc.SaveAutorenewal(ctx, postgres.Autorenewal{UserID: u.ID, Provider: "yookassa", MethodID: "pm-1", Plan: "month"}); err != nil {
		t.Fatal(err)
	}
	for _, on := range []bool{true, false} {
		if err := e.svc.SetCheckoutConsent(ctx, u, on); err != nil {
			t.Fatal(err)
		}
		if got, err := e.svc.AutorenewConsent(ctx, u.ID); err != nil || got != on {
			t.Fatalf("consent %v after setting %v (%v)", got, on, err)
		}
	}
	if _, on, err := e.store.ActiveAutorenewal(ctx, u.ID); err != nil || !on {
		t.Fatalf("unticking canceled the saved card: %v %v", on, err)
	}
	if err := e.svc.SetAutorenew(ctx, u, false); err != nil {
		t.Fatal(err)
	}
	if _, on, _ := e.store.ActiveAutorenewal(ctx, u.ID); on {
		t.Fatal("/autorenew off left the saved card on")
	}
}
