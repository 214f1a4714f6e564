package payment_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"wgbot"
	"wgbot/metrics"
	"wgbot/payment"
	"wgbot/payment/yookassa/yookassatest"
	"wgbot/postgres/pgtest"
)

// always makes every period due, so each call may charge the next one.
const always = 10000 * 24 * time.Hour

// firstSavedPayment pays a month with consent to renewals and delivers its
// notification; it returns the saved card's id.
func firstSavedPayment(t *testing.T, e *env, y *payment.YooKassa, emu *yookassatest.Server) string {
	t.Helper()
	ctx := context.Background()
	order, err := e.svc.CreateOrder(ctx, e.user, "month", y.Provider(), y.Currency())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := y.StartSaving(ctx, order, e.user); err != nil {
		t.Fatal(err)
	}
	ps := emu.Payments()
	id := ps[len(ps)-1].ID
	if err := emu.Succeed(id); err != nil {
		t.Fatal(err)
	}
	if code := deliver(y, yooSource, emu.NotificationBody("payment.succeeded", id), nil); code != http.StatusOK {
		t.Fatalf("notification answered %d", code)
	}
	p, _ := emu.Payment(id)
	if n := e.count(t, `SELECT count(*) FROM autorenewals WHERE canceled_at IS NULL`); n != 1 || !p.PaymentMethod.Saved {
		t.Fatalf("%d saved cards after a payment with consent (saved at YooKassa: %v)", n, p.PaymentMethod.Saved)
	}
	return p.PaymentMethod.ID
}

func (e *env) expiry(t *testing.T) time.Time {
	t.Helper()
	var at time.Time
	if err := e.pool.QueryRow(context.Background(), `SELECT expires_at FROM subscriptions WHERE status = 'active'`).Scan(&at); err != nil {
		t.Fatal(err)
	}
	return at
}

// TestSavedCardRenewal: a card saved with consent renews the subscription
// through the same ledger as any payment; a charge whose answer was lost
// is asked again with the same Idempotence-Key and charged once; a period
// not yet due is not charged; a plain payment saves no card.
func TestSavedCardRenewal(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	y, emu := newYooKassa(t, e)
	firstSavedPayment(t, e, y, emu)
	before := e.expiry(t)

	if out, err := y.RenewSaved(ctx, e.svc, e.user.ID, time.Hour); err != nil || out != payment.RenewNone {
		t.Fatalf("a month away from expiry: %s %v, want none", out, err)
	}
	emu.DropNextAnswers(1)
	if _, err := y.RenewSaved(ctx, e.svc, e.user.ID, always); err == nil {
		t.Fatal("a lost answer went unnoticed")
	}
	out, err := y.RenewSaved(ctx, e.svc, e.user.ID, always)
	if err != nil || out != payment.RenewCharged {
		t.Fatalf("retry: %s %v", out, err)
	}
	if n := len(emu.Payments()); n != 2 {
		t.Fatalf("%d YooKassa payments after a lost answer and a retry, want 2 (first + one renewal)", n)
	}
	reqs := emu.Requests()
	if a, b := reqs[len(reqs)-2].IdempotenceKey, reqs[len(reqs)-1].IdempotenceKey; a != b || a == "" {
		t.Fatalf("retry keys %q and %q", a, b)
	}
	if n := e.count(t, `SELECT count(*) FROM payments`); n != 2 {
		t.Fatalf("%d ledger rows, want 2", n)
	}
	if got := e.expiry(t); got.Sub(before) != 30*24*time.Hour {
		t.Fatalf("expiry %s -> %s", before, got)
	}
	// The renewal's own notification credits nothing more.
	renewal := emu.Payments()[1]
	if code := deliver(y, yooSource, emu.NotificationBody("payment.succeeded", renewal.ID), nil); code != http.StatusOK {
		t.Fatalf("renewal notification answered %d", code)
	}
	if n := e.count(t, `SELECT count(*) FROM payments`); n != 2 {
		t.Fatalf("%d ledger rows after the renewal's notification, want 2", n)
	}
}

// TestSavedCardChargeFails: a refused charge cancels its order once (the
// charge's own notice tells the user, with a button to pay; no "checkout
// cancelled" one, as nobody opened a checkout) and is never tried
// again for that period, however often the job runs or the notification
// comes; a card refused for good is not charged again.
func TestSavedCardChargeFails(t *testing.T) {
	e, err := build(context.Background(), pgtest.URL(t), true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.pool.Close)
	ctx := context.Background()
	y, emu := newYooKassa(t, e)
	card := firstSavedPayment(t, e, y, emu)
	if err := emu.FailMethod(card, yookassatest.ReasonInsufficientFunds); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		out, err := y.RenewSaved(ctx, e.svc, e.user.ID, always)
		want := payment.RenewDone
		if i == 0 {
			want = payment.RenewFailed
		}
		if err != nil || out != want {
			t.Fatalf("run %d: %s %v, want %s", i, out, err, want)
		}
	}
	failed := emu.Payments()[1]
	if code := deliver(y, yooSource, emu.NotificationBody("payment.canceled", failed.ID), nil); code != http.StatusOK {
		t.Fatalf("canceled notification answered %d", code)
	}
	if n := len(emu.Payments()); n != 2 {
		t.Fatalf("%d YooKassa payments, want 2: a failed charge was retried", n)
	}
	if n := e.count(t, `SELECT count(*) FROM payments`); n != 1 {
		t.Fatalf("%d ledger rows, want 1", n)
	}
	if n := e.count(t, `SELECT count(*) FROM orders WHERE status = 'canceled'`); n != 1 {
		t.Fatalf("%d canceled orders, want 1", n)
	}
	if n := e.count(t, `SELECT count(*) FROM river_job WHERE kind = 'checkout_canceled'`); n != 0 {
		t.Fatalf("%d checkout notices queued for a renewal charge, want none", n)
	}
	if n := e.count(t, `SELECT count(*) FROM river_job WHERE kind = 'renewal_failed' AND args->>'outcome' = 'declined'`); n != 1 {
		t.Fatalf("%d declined-renewal notices queued, want 1", n)
	}
	if n := e.count(t, `SELECT count(*) FROM autorenewals WHERE canceled_at IS NULL`); n != 1 {
		t.Fatal("a card short of funds once was dropped")
	}

	// A card that expired is dropped: the next period is not charged.
	e2 := setup(t)
	y2, emu2 := newYooKassa(t, e2)
	card2 := firstSavedPayment(t, e2, y2, emu2)
	if err := emu2.FailMethod(card2, yookassatest.ReasonCardExpired); err != nil {
		t.Fatal(err)
	}
	if out, err := y2.RenewSaved(ctx, e2.svc, e2.user.ID, always); err != nil || out != payment.RenewFailed {
		t.Fatalf("expired card: %s %v", out, err)
	}
	if n := e2.count(t, `SELECT count(*) FROM autorenewals WHERE canceled_at IS NULL`); n != 0 {
		t.Fatal("an expired card stays saved")
	}
}

// TestCardSavedOnlyWithConsent: with YOOKASSA_AUTORENEW on, a checkout
// asks YooKassa to save the card only for an order whose payer ticked
// "renew automatically with this card" (wgbot.Order.SaveCard); with
// /autorenew off, the saved card is never charged.
func TestCardSavedOnlyWithConsent(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	emu := yookassatest.NewServer("shop-1", "test_secret")
	t.Cleanup(emu.Close)
	y, err := payment.NewYooKassa(payment.YooKassaConfig{BaseURL: emu.URL, ShopID: "shop-1", SecretKey: "test_secret",
		ReturnURL: "https://t.me/wgbot_test_bot", Autorenew: true}, e.svc, metrics.New(nil), e.log)
	if err != nil {
		t.Fatal(err)
	}
	if !y.SavesCards() {
		t.Fatal("YOOKASSA_AUTORENEW on, yet the checkout offers no box")
	}
	pay := func(save bool) string {
		order, err := e.svc.CreateCheckoutOrder(ctx, e.user, "month", y.Provider(), y.Currency(), save)
		if err != nil || order.SaveCard != save {
			t.Fatalf("order %+v: %v", order, err)
		}
		if _, err := y.Start(ctx, order, e.user); err != nil {
			t.Fatal(err)
		}
		ps := emu.Payments()
		id := ps[len(ps)-1].ID
		if err := emu.Succeed(id); err != nil {
			t.Fatal(err)
		}
		if code := deliver(y, yooSource, emu.NotificationBody("payment.succeeded", id), nil); code != http.StatusOK {
			t.Fatalf("notification answered %d", code)
		}
		return id
	}
	// Consent recorded for the user (/autorenew on) does not save the card
	// of an order made without the tick.
	if err := e.svc.SetAutorenew(ctx, e.user, true); err != nil {
		t.Fatal(err)
	}
	first := pay(false)
	if p, _ := emu.Payment(first); p.PaymentMethod.Saved || e.count(t, `SELECT count(*) FROM autorenewals`) != 0 {
		t.Fatal("a card was saved without consent at checkout")
	}
	second := pay(true)
	if p, _ := emu.Payment(second); !p.PaymentMethod.Saved || e.count(t, `SELECT count(*) FROM autorenewals WHERE canceled_at IS NULL`) != 1 {
		t.Fatal("the card of a consenting payer was not saved")
	}
	if err := e.svc.SetAutorenew(ctx, e.user, false); err != nil {
		t.Fatal(err)
	}
	n := len(emu.Payments())
	if out, err := y.RenewSaved(ctx, e.svc, e.user.ID, always); err != nil || out != payment.RenewNone || len(emu.Payments()) != n {
		t.Fatalf("after /autorenew off: %s %v, %d payments (was %d)", out, err, len(emu.Payments()), n)
	}
}

// TestRenewalRaceChargesOnce: twenty passes at once (several processes'
// worth of connections) over one due card make one charge at YooKassa and
// one ledger row.
func TestRenewalRaceChargesOnce(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	y, emu := newYooKassa(t, e)
	firstSavedPayment(t, e, y, emu)
	results := make(chan error, 20)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			_, err := y.RenewSaved(ctx, e.svc, e.user.ID, 40*24*time.Hour)
			results <- err
		})
	}
	wg.Wait()
	close(results)
	for err := range results {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := len(emu.Payments()); n != 2 {
		t.Fatalf("%d YooKassa payments, want 2 (first + one renewal)", n)
	}
	if n := e.count(t, `SELECT count(*) FROM payments`); n != 2 {
		t.Fatalf("%d ledger rows, want 2", n)
	}
	if n := e.count(t, `SELECT count(*) FROM autorenew_charges WHERE status = 'succeeded'`); n != 1 {
		t.Fatalf("%d settled charges, want 1", n)
	}
}

// TestStaleRenewalGivenUp: a charge left unconfirmed longer than YooKassa
// keeps its Idempotence-Key is never asked again (the same key could then
// charge a second time): it is given up and the user told.
func TestStaleRenewalGivenUp(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	y, emu := newYooKassa(t, e)
	firstSavedPayment(t, e, y, emu)
	emu.DropNextAnswers(1)
	if _, err := y.RenewSaved(ctx, e.svc, e.user.ID, always); err == nil {
		t.Fatal("a lost answer went unnoticed")
	}
	if _, err := e.pool.Exec(ctx, `UPDATE autorenew_charges SET created_at = now() - interval '21 hours'`); err != nil {
		t.Fatal(err)
	}
	n := len(emu.Payments())
	if out, err := y.RenewSaved(ctx, e.svc, e.user.ID, always); err != nil || out != payment.RenewFailed || len(emu.Payments()) != n {
		t.Fatalf("stale charge: %s %v, %d payments (was %d)", out, err, len(emu.Payments()), n)
	}
	if c := e.count(t, `SELECT count(*) FROM autorenew_charges WHERE status = 'failed' AND reason = 'unconfirmed'`); c != 1 {
		t.Fatal("the stale charge was not recorded as given up")
	}
}

// TestRenewalFailureOutcomes: each way a charge fails queues one notice
// naming that way: declined at once, a card gone for good, a charge the
// bank held pending and then canceled, and one left pending past its key's
// lifetime (given up; a payment known by id is asked for instead).
func TestRenewalFailureOutcomes(t *testing.T) {
	ctx := context.Background()
	outcome := func(t *testing.T, e *env) string {
		t.Helper()
		var got string
		if err := e.pool.QueryRow(ctx, `SELECT string_agg(args->>'outcome', ',') FROM river_job WHERE kind = 'renewal_failed'`).Scan(&got); err != nil {
			t.Fatal(err)
		}
		return got
	}
	withJobs := func(t *testing.T) *env {
		e, err := build(ctx, pgtest.URL(t), true)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(e.pool.Close)
		return e
	}
	t.Run("card gone", func(t *testing.T) {
		e := withJobs(t)
		y, emu := newYooKassa(t, e)
		card := firstSavedPayment(t, e, y, emu)
		if err := emu.FailMethod(card, yookassatest.ReasonPermissionRevoked); err != nil {
			t.Fatal(err)
		}
		if out, err := y.RenewSaved(ctx, e.svc, e.user.ID, always); err != nil || out != payment.RenewFailed {
			t.Fatalf("%s %v", out, err)
		}
		if got := outcome(t, e); got != string(wgbot.RenewalCardGone) {
			t.Fatalf("outcome %q", got)
		}
	})
	t.Run("held, then canceled", func(t *testing.T) {
		e := withJobs(t)
		y, emu := newYooKassa(t, e)
		card := firstSavedPayment(t, e, y, emu)
		if err := emu.HoldMethod(card, true); err != nil {
			t.Fatal(err)
		}
		if out, err := y.RenewSaved(ctx, e.svc, e.user.ID, always); err != nil || out != payment.RenewPending {
			t.Fatalf("first run: %s %v", out, err)
		}
		charge := emu.Payments()[1]
		if err := emu.Cancel(charge.ID); err != nil {
			t.Fatal(err)
		}
		// The notification's cancel of the order tells nobody; the next
		// run, asking with the same key, records the charge and tells.
		if code := deliver(y, yooSource, emu.NotificationBody("payment.canceled", charge.ID), nil); code != http.StatusOK {
			t.Fatalf("canceled notification answered %d", code)
		}
		if out, err := y.RenewSaved(ctx, e.svc, e.user.ID, always); err != nil || out != payment.RenewFailed {
			t.Fatalf("second run: %s %v", out, err)
		}
		if got := outcome(t, e); got != string(wgbot.RenewalReleased) {
			t.Fatalf("outcome %q", got)
		}
		if n := e.count(t, `SELECT count(*) FROM river_job WHERE kind = 'checkout_canceled'`); n != 0 {
			t.Fatalf("%d checkout notices for a renewal", n)
		}
	})
	t.Run("pending past the key's lifetime, then canceled", func(t *testing.T) {
		e := withJobs(t)
		y, emu := newYooKassa(t, e)
		card := firstSavedPayment(t, e, y, emu)
		if err := emu.HoldMethod(card, true); err != nil {
			t.Fatal(err)
		}
		if out, err := y.RenewSaved(ctx, e.svc, e.user.ID, always); err != nil || out != payment.RenewPending {
			t.Fatalf("first run: %s %v", out, err)
		}
		if err := emu.Cancel(emu.Payments()[1].ID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.pool.Exec(ctx, `UPDATE autorenew_charges SET created_at = now() - interval '21 hours'`); err != nil {
			t.Fatal(err)
		}
		n := len(emu.Requests())
		if out, err := y.RenewSaved(ctx, e.svc, e.user.ID, always); err != nil || out != payment.RenewFailed {
			t.Fatalf("stale run: %s %v", out, err)
		}
		for _, r := range emu.Requests()[n:] {
			if r.Method == http.MethodPost {
				t.Fatalf("a stale charge was sent again: %+v", r)
			}
		}
		if got := outcome(t, e); got != string(wgbot.RenewalReleased) {
			t.Fatalf("outcome %q", got)
		}
	})
	t.Run("unconfirmed", func(t *testing.T) {
		e := withJobs(t)
		y, emu := newYooKassa(t, e)
		firstSavedPayment(t, e, y, emu)
		emu.DropNextAnswers(1)
		if _, err := y.RenewSaved(ctx, e.svc, e.user.ID, always); err == nil {
			t.Fatal("a lost answer went unnoticed")
		}
		if _, err := e.pool.Exec(ctx, `UPDATE autorenew_charges SET created_at = now() - interval '21 hours'`); err != nil {
			t.Fatal(err)
		}
		if out, err := y.RenewSaved(ctx, e.svc, e.user.ID, always); err != nil || out != payment.RenewFailed {
			t.Fatalf("%s %v", out, err)
		}
		if got := outcome(t, e); got != string(wgbot.RenewalUnconfirmed) {
			t.Fatalf("outcome %q", got)
		}
	})
}
