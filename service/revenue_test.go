package service_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"wgbot"
	"wgbot/postgres"
	"wgbot/secret"
	"wgbot/service"
)

// The referral bonus the tests run with: a week for the referrer, three
// days for the friend they invited.
var testBonus = wgbot.ReferralBonus{ReferrerDays: 7, InvitedDays: 3}

// revenueStore is the store setup of every env in these tests, in the
// test process and in its children alike.
var revenueStore = storeSetup{opts: postgres.Options{Referral: testBonus}}

// revenueChildren are this file's child roles: each builds its own env on
// CHILD_DB, waits for CHILD_START (so every process goes at once), and
// fails on any error but the expected refusals.
var revenueChildren = map[string]func(context.Context, *env, int) error{
	"redeem": func(ctx context.Context, e *env, index int) error {
		per, _ := strconv.Atoi(os.Getenv("CHILD_USERS"))
		first := int64(5_000_000 + index*1000)
		_, err := redeemAll(ctx, e, first, per, os.Getenv("CHILD_CODE"), childStart())
		return err
	},
	"pay": func(ctx context.Context, e *env, _ int) error {
		orderID, _ := strconv.ParseInt(os.Getenv("CHILD_ORDER"), 10, 64)
		amount, _ := strconv.ParseInt(os.Getenv("CHILD_AMOUNT"), 10, 64)
		_, err := payAll(ctx, e, 2, orderID, amount, childStart())
		return err
	},
	"gift": func(ctx context.Context, e *env, index int) error {
		_, err := redeemGiftAll(ctx, e, int64(7_000_000+1000*index), 5, os.Getenv("CHILD_TOKEN"), childStart())
		return err
	},
	"renew": func(ctx context.Context, e *env, _ int) error {
		orderID, _ := strconv.ParseInt(os.Getenv("CHILD_ORDER"), 10, 64)
		amount, _ := strconv.ParseInt(os.Getenv("CHILD_AMOUNT"), 10, 64)
		until, _ := strconv.ParseInt(os.Getenv("CHILD_UNTIL"), 10, 64)
		_, err := chargeAll(ctx, e, 2, orderID, amount, "charge-renewal", time.Unix(until, 0), childStart())
		return err
	},
}

func runRevenueChild(ctx context.Context, role string, index int) (bool, error) {
	run, ok := revenueChildren[role]
	if !ok {
		return false, nil
	}
	e, err := newEnv(ctx, os.Getenv("CHILD_DB"), os.Getenv("CHILD_SUBNET"), nil, revenueStore)
	if err != nil {
		return true, err
	}
	defer e.pool.Close()
	return true, run(ctx, e, index)
}

func childStart() time.Time {
	n, _ := strconv.ParseInt(os.Getenv("CHILD_START"), 10, 64)
	return time.Unix(0, n)
}

// redeemAll registers users [first, first+n) and has each redeem code
// from its own goroutine at start; it returns how many succeeded. Any
// refusal but "used up" is an error.
func redeemAll(ctx context.Context, e *env, first int64, n int, code string, start time.Time) (int, error) {
	users := make([]wgbot.User, n)
	for i := range users {
		u, err := e.svc.Register(ctx, wgbot.User{TelegramID: first + int64(i)}, "")
		if err != nil {
			return 0, err
		}
		users[i] = u
	}
	time.Sleep(time.Until(start))
	var ok atomic.Int32
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for _, u := range users {
		wg.Go(func() {
			_, err := e.svc.RedeemPromo(ctx, u, code)
			switch {
			case err == nil:
				ok.Add(1)
			case !errors.Is(err, wgbot.ErrPromoUsedUp):
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	return int(ok.Load()), <-errs
}

// payAll delivers one Stars payment for orderID n times at once from
// goroutines; it returns how many credited it (not duplicates).
func payAll(ctx context.Context, e *env, n int, orderID, amount int64, start time.Time) (int, error) {
	time.Sleep(time.Until(start))
	var credited atomic.Int32
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			res, err := e.svc.PayOrder(ctx, service.Payment{Provider: "stars", ProviderPaymentID: "charge-first",
				OrderID: orderID, Amount: amount, Currency: "XTR"})
			switch {
			case err != nil:
				errs <- err
			case !res.Duplicate:
				credited.Add(1)
			}
		})
	}
	wg.Wait()
	close(errs)
	return int(credited.Load()), <-errs
}

// TestPromoRedeemedExactlyItsUses: 50 users redeem a code with 10 uses at
// the same moment, from goroutines in this process and two others: exactly
// 10 redemptions, 10 ledger rows of free days, the code's count at 10, and
// every other user refused as used up with nothing given.
func TestPromoRedeemedExactlyItsUses(t *testing.T) {
	ctx := context.Background()
	e := setupWith(t, "10.180.0.0/22", nil, revenueStore)
	if _, err := e.svc.CreatePromo(ctx, wgbot.Promo{Code: "spring10", Kind: wgbot.PromoDays, Value: 5, MaxUses: 10}); err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(2 * time.Second)
	children := startChildren(t, 2, "redeem", "CHILD_DB="+e.url, "CHILD_SUBNET=10.180.0.0/22", "CHILD_USERS=15",
		"CHILD_CODE=SPRING10", "CHILD_START="+strconv.FormatInt(start.UnixNano(), 10))
	here, err := redeemAll(ctx, e, 4_000_000, 20, "Spring10", start)
	if err != nil {
		t.Fatal(err)
	}
	waitAll(t, children)
	if n := count(t, e.pool, `SELECT count(*) FROM users`); n != 50 {
		t.Fatalf("want 50 users trying, got %d", n)
	}
	if n := count(t, e.pool, `SELECT count(*) FROM promo_redemptions`); n != 10 {
		t.Fatalf("want exactly 10 redemptions of a 10-use code by 50 users, got %d (%d in this process)", n, here)
	}
	if n := count(t, e.pool, `SELECT uses FROM promo_codes WHERE code = 'SPRING10'`); n != 10 {
		t.Fatalf("the code counts %d uses, want 10", n)
	}
	if n := count(t, e.pool, `SELECT count(*) FROM payments WHERE kind = 'promo' AND days = 5 AND status = 'credited'`); n != 10 {
		t.Fatalf("want 10 ledger rows of 5 free days, got %d", n)
	}
	if n := count(t, e.pool, `SELECT count(*) FROM subscriptions WHERE status = 'active'`); n != 10 {
		t.Fatalf("want the 10 redeemers with access and nobody else, got %d subscriptions", n)
	}
	e.checkInvariants(t)
}

// TestReferralBonusOnce: a friend's first payment delivered five times at
// once (three goroutines here, two in another process, as a provider
// retrying would) gives one bonus on each side, under their own ledger
// keys, in the crediting transaction.
func TestReferralBonusOnce(t *testing.T) {
	ctx := context.Background()
	e := setupWith(t, "10.181.0.0/24", nil, revenueStore)
	referrer, friend, order := referral(t, e)
	trialEnd := e.subscription(t, referrer).ExpiresAt
	start := time.Now().Add(2 * time.Second)
	children := startChildren(t, 1, "pay", "CHILD_DB="+e.url, "CHILD_SUBNET=10.181.0.0/24",
		"CHILD_ORDER="+strconv.FormatInt(order.ID, 10), "CHILD_AMOUNT="+strconv.FormatInt(order.Amount, 10),
		"CHILD_START="+strconv.FormatInt(start.UnixNano(), 10))
	here, err := payAll(ctx, e, 3, order.ID, order.Amount, start)
	if err != nil {
		t.Fatal(err)
	}
	waitAll(t, children)
	if here > 1 {
		t.Fatalf("%d deliveries here credited the one payment", here)
	}
	if n := count(t, e.pool, `SELECT count(*) FROM payments WHERE kind = 'payment'`); n != 1 {
		t.Fatalf("want one payment, got %d", n)
	}
	if n := count(t, e.pool, `SELECT count(*) FROM payments WHERE kind = 'referral' AND user_id = $1 AND days = 7`, referrer.ID); n != 1 {
		t.Fatalf("want one bonus of 7 days for the referrer, got %d", n)
	}
	if n := count(t, e.pool, `SELECT count(*) FROM payments WHERE kind = 'referral' AND user_id = $1 AND days = 3`, friend.ID); n != 1 {
		t.Fatalf("want one bonus of 3 days for the friend, got %d", n)
	}
	if got := e.subscription(t, referrer).ExpiresAt; !got.Equal(trialEnd.AddDate(0, 0, 7)) {
		t.Fatalf("the referrer's live trial should run 7 days longer, to %s; it ends %s", trialEnd.AddDate(0, 0, 7), got)
	}
	sub := e.subscription(t, friend)
	if d := sub.ExpiresAt.Sub(sub.StartsAt); d != 33*24*time.Hour {
		t.Fatalf("the friend should have 30 paid days and 3 bonus days, got %v", d)
	}
	st, err := e.svc.Referral(ctx, referrer)
	if err != nil {
		t.Fatal(err)
	}
	if st.Invited != 1 || st.Paid != 1 || st.DaysEarned != 7 {
		t.Fatalf("referral stats: %+v, want 1 invited, 1 paid, 7 days", st)
	}
	// A second payment of the friend earns nothing more.
	o2, err := e.svc.CreateOrder(ctx, friend, "month", "stars", "XTR")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.PayOrder(ctx, service.Payment{Provider: "stars", ProviderPaymentID: "charge-second", OrderID: o2.ID,
		Amount: o2.Amount, Currency: "XTR"}); err != nil {
		t.Fatal(err)
	}
	if n := count(t, e.pool, `SELECT count(*) FROM payments WHERE kind = 'referral'`); n != 2 {
		t.Fatalf("a second payment gave another bonus: %d bonus rows", n)
	}
	e.checkInvariants(t)
}

// TestRefundTakesBackReferralBonus: refunding the payment that earned the
// bonuses takes back each bonus's unused days; the referrer's trial ends
// when it would have without the bonus.
func TestRefundTakesBackReferralBonus(t *testing.T) {
	ctx := context.Background()
	e := setupWith(t, "10.182.0.0/24", nil, revenueStore)
	referrer, friend, order := referral(t, e)
	trialEnd := e.subscription(t, referrer).ExpiresAt
	if _, err := e.svc.PayOrder(ctx, service.Payment{Provider: "stars", ProviderPaymentID: "charge-r", OrderID: order.ID,
		Amount: order.Amount, Currency: "XTR"}); err != nil {
		t.Fatal(err)
	}
	res, err := e.svc.Refund(ctx, "stars", "charge-r")
	if err != nil {
		t.Fatal(err)
	}
	if res.BonusDays != 10 || !res.Revoked {
		t.Fatalf("refund: %+v; want 10 bonus days taken back and the friend's access ended", res)
	}
	if n := count(t, e.pool, `SELECT count(*) FROM payments WHERE kind = 'referral' AND status = 'refunded'`); n != 2 {
		t.Fatalf("want both bonuses refunded, got %d", n)
	}
	if got := e.subscription(t, referrer).ExpiresAt; !got.Equal(trialEnd) {
		t.Fatalf("the referrer's trial should end at %s again, ends %s", trialEnd, got)
	}
	if got := e.subscription(t, friend).Status; got != wgbot.SubscriptionRevoked {
		t.Fatalf("the friend's subscription is %s, want revoked", got)
	}
	st, err := e.svc.Referral(ctx, referrer)
	if err != nil {
		t.Fatal(err)
	}
	if st.DaysEarned != 0 {
		t.Fatalf("days earned after the refund: %d, want 0", st.DaysEarned)
	}
	// Refunding again changes nothing.
	again, err := e.svc.Refund(ctx, "stars", "charge-r")
	if err != nil || !again.Duplicate {
		t.Fatalf("second refund: %+v, %v; want a duplicate", again, err)
	}
}

// TestReferralBonusPartlyUsed: a bonus whose days were partly used loses
// only the rest: here the referrer had no subscription, the bonus gave
// them 7 days and a device, and 5 of those days passed before the refund.
func TestReferralBonusPartlyUsed(t *testing.T) {
	ctx := context.Background()
	var clock atomic.Int64
	clock.Store(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	e := setupWith(t, "10.183.0.0/24", nil, revenueStore)
	e.svc = service.New(e.store, keyring(t), nil, service.Config{Server: serverOf(t, e), Plans: service.DefaultPlans(), TrialDays: 3},
		func() time.Time { return time.Unix(0, clock.Load()) }, discard())
	referrer := e.user(t, 10)
	st, err := e.svc.Referral(ctx, referrer)
	if err != nil {
		t.Fatal(err)
	}
	friend, err := e.svc.Register(ctx, wgbot.User{TelegramID: 11}, st.Code)
	if err != nil {
		t.Fatal(err)
	}
	order, err := e.svc.CreateOrder(ctx, friend, "month", "stars", "XTR")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.PayOrder(ctx, service.Payment{Provider: "stars", ProviderPaymentID: "c", OrderID: order.ID, Amount: order.Amount, Currency: "XTR"}); err != nil {
		t.Fatal(err)
	}
	sub := e.subscription(t, referrer)
	if sub.Plan != wgbot.GrantPlanName || sub.ExpiresAt.Sub(sub.StartsAt) != 7*24*time.Hour {
		t.Fatalf("the referrer without access should get 7 days as a gift: %+v", sub)
	}
	if n := count(t, e.pool, `SELECT count(*) FROM peers p JOIN subscriptions s ON s.id = p.subscription_id WHERE s.user_id = $1`, referrer.ID); n != 1 {
		t.Fatalf("the referrer's bonus should issue one device, got %d", n)
	}
	// The referrer pays for a month on top of the bonus; 5 days pass.
	if _, err := e.svc.Credit(ctx, wgbot.Credit{Provider: "stars", ProviderPaymentID: "own", UserID: referrer.ID, Amount: 150, Currency: "XTR",
		Plan: wgbot.Plan{Name: "month", Days: 30, Devices: 1}}); err != nil {
		t.Fatal(err)
	}
	paidUntil := sub.ExpiresAt.AddDate(0, 0, 30)
	clock.Add(int64(5 * 24 * time.Hour))
	res, err := e.svc.Refund(ctx, "stars", "c")
	if err != nil {
		t.Fatal(err)
	}
	// The friend used 5 of their 30 paid days: 25 go, and their 3 bonus
	// days, which come after, all go. The referrer's bonus had 2 days
	// left: only those go, the month they paid for stays.
	if res.Days != 25 || res.BonusDays != 3+2 {
		t.Fatalf("refund: %+v; want 25 paid days and 5 bonus days taken back", res)
	}
	if got, want := e.subscription(t, referrer).ExpiresAt, paidUntil.AddDate(0, 0, -2); !got.Equal(want) {
		t.Fatalf("after the refund the referrer keeps the 5 used bonus days and their month: want expiry %s, got %s", want, got)
	}
}

// TestReferralRules: no self-referral, no referrer given to a user who
// exists already, and a code that is nobody's refers nobody.
func TestReferralRules(t *testing.T) {
	ctx := context.Background()
	e := setupWith(t, "10.184.0.0/24", nil, revenueStore)
	a := e.user(t, 20)
	st, err := e.svc.Referral(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	again, err := e.svc.Referral(ctx, a)
	if err != nil || again.Code != st.Code || !wgbot.ReferralCodePattern.MatchString(st.Code) || st.Code == "20" {
		t.Fatalf("codes %q then %q (%v): want one stable code, not the Telegram id", st.Code, again.Code, err)
	}
	self, err := e.svc.Register(ctx, wgbot.User{TelegramID: 20}, st.Code)
	if err != nil || self.ReferrerID != 0 {
		t.Fatalf("self-referral: %+v, %v", self, err)
	}
	b := e.user(t, 21)
	b2, err := e.svc.Register(ctx, wgbot.User{TelegramID: 21}, st.Code)
	if err != nil || b2.ReferrerID != 0 || b2.ID != b.ID {
		t.Fatalf("an existing user got a referrer: %+v, %v", b2, err)
	}
	c, err := e.svc.Register(ctx, wgbot.User{TelegramID: 22}, "nobodyscode")
	if err != nil || c.ReferrerID != 0 {
		t.Fatalf("unknown code: %+v, %v", c, err)
	}
	d, err := e.svc.Register(ctx, wgbot.User{TelegramID: 23}, st.Code)
	if err != nil || d.ReferrerID != a.ID {
		t.Fatalf("a new user by the link: %+v, %v; want referrer %d", d, err, a.ID)
	}
	if _, err := e.pool.Exec(ctx, `UPDATE users SET referrer_id = id WHERE id = $1`, a.ID); err == nil {
		t.Fatal("the database accepted a user referring themself")
	}
}

// TestPromoRefusals: a code that is unknown, disabled, expired, used by
// the user already, for new users only, or a second discount while one
// waits is refused with its reason, and changes nothing.
func TestPromoRefusals(t *testing.T) {
	ctx := context.Background()
	var clock atomic.Int64
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock.Store(now.UnixNano())
	e := setupWith(t, "10.185.0.0/24", nil, revenueStore)
	e.svc = service.New(e.store, keyring(t), nil, service.Config{Server: serverOf(t, e), Plans: service.DefaultPlans(), TrialDays: 3},
		func() time.Time { return time.Unix(0, clock.Load()) }, discard())
	for _, p := range []wgbot.Promo{
		{Code: "OFF", Kind: wgbot.PromoDays, Value: 3},
		{Code: "OLD", Kind: wgbot.PromoDays, Value: 3, Expires: now.Add(time.Hour)},
		{Code: "ONCE", Kind: wgbot.PromoDays, Value: 3},
		{Code: "NEWBIE", Kind: wgbot.PromoPercent, Value: 50, NewUsers: true},
		{Code: "TEN", Kind: wgbot.PromoPercent, Value: 10},
		{Code: "FIVE", Kind: wgbot.PromoFixed, Value: 5, Currency: "XTR"},
	} {
		if _, err := e.svc.CreatePromo(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.svc.DisablePromo(ctx, "off"); err != nil {
		t.Fatal(err)
	}
	clock.Add(int64(2 * time.Hour))
	u := e.user(t, 30)
	if _, err := e.svc.RedeemPromo(ctx, u, "once"); err != nil {
		t.Fatal(err)
	}
	payer := e.user(t, 31)
	if _, err := e.svc.Credit(ctx, wgbot.Credit{Provider: "stars", ProviderPaymentID: "p31", UserID: payer.ID, Amount: 150, Currency: "XTR",
		Plan: wgbot.Plan{Name: "month", Days: 30, Devices: 1}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.RedeemPromo(ctx, u, "TEN"); err != nil {
		t.Fatal(err)
	}
	before := count(t, e.pool, `SELECT count(*) FROM promo_redemptions`) + count(t, e.pool, `SELECT sum(uses) FROM promo_codes`)
	for _, tc := range []struct {
		user wgbot.User
		code string
		want error
	}{
		{u, "NOPE", wgbot.ErrPromoNotFound},
		{u, "x", wgbot.ErrPromoNotFound},
		{u, "OFF", wgbot.ErrPromoDisabled},
		{u, "OLD", wgbot.ErrPromoExpired},
		{u, "ONCE", wgbot.ErrPromoRepeated},
		{payer, "NEWBIE", wgbot.ErrPromoNewOnly},
		{u, "FIVE", wgbot.ErrPromoPending},
	} {
		if _, err := e.svc.RedeemPromo(ctx, tc.user, tc.code); !errors.Is(err, tc.want) {
			t.Errorf("redeem %s: %v, want %v", tc.code, err, tc.want)
		}
	}
	if after := count(t, e.pool, `SELECT count(*) FROM promo_redemptions`) + count(t, e.pool, `SELECT sum(uses) FROM promo_codes`); after != before {
		t.Fatalf("refused redemptions changed the counts: %d, then %d", before, after)
	}
	for _, p := range []wgbot.Promo{
		{Code: "ab", Kind: wgbot.PromoDays, Value: 3},
		{Code: "FULL", Kind: wgbot.PromoPercent, Value: 100},
		{Code: "NOCUR", Kind: wgbot.PromoFixed, Value: 100},
		{Code: "PLAN", Kind: wgbot.PromoPercent, Value: 10, Plans: []string{"lifetime"}},
		{Code: "ONCE", Kind: wgbot.PromoDays, Value: 3},
	} {
		if _, err := e.svc.CreatePromo(ctx, p); err == nil {
			t.Errorf("promo %+v was accepted", p)
		}
	}
}

// TestDiscountedOrder: a percent discount prices the user's next order
// (the amount the provider is asked for, Stars included) and is used by
// its payment; the order after is at full price. /stats counts revenue
// as charged and the discount apart.
func TestDiscountedOrder(t *testing.T) {
	ctx := context.Background()
	e := setupWith(t, "10.186.0.0/24", nil, revenueStore)
	if _, err := e.svc.CreatePromo(ctx, wgbot.Promo{Code: "YEAR20", Kind: wgbot.PromoPercent, Value: 20, Plans: []string{"year"}}); err != nil {
		t.Fatal(err)
	}
	u := e.user(t, 40)
	res, err := e.svc.RedeemPromo(ctx, u, "year20")
	if err != nil || res.Discount == nil {
		t.Fatalf("redeem: %+v, %v", res, err)
	}
	month, err := e.svc.CreateOrder(ctx, u, "month", "stars", "XTR")
	if err != nil || month.Amount != 150 || month.Discount != 0 {
		t.Fatalf("a plan the code is not for: %+v, %v", month, err)
	}
	year, err := e.svc.CreateOrder(ctx, u, "year", "stars", "XTR")
	if err != nil || year.Amount != 1120 || year.Discount != 280 {
		t.Fatalf("discounted order: %+v, %v; want 1120 XTR, 280 off", year, err)
	}
	rub, err := e.svc.CreateOrder(ctx, u, "year", "yookassa", "RUB")
	if err != nil || rub.Amount != 143920 {
		t.Fatalf("discounted RUB order: %+v, %v; want 143920", rub, err)
	}
	if _, err := e.svc.CheckOrder(ctx, u, year.ID, "XTR", 1400); !errors.Is(err, wgbot.ErrPaymentMismatch) {
		t.Fatalf("the full price for a discounted order: %v", err)
	}
	if _, err := e.svc.PayOrder(ctx, service.Payment{Provider: "stars", ProviderPaymentID: "y", OrderID: year.ID, Amount: 1120, Currency: "XTR"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.CheckOrder(ctx, u, rub.ID, "RUB", 143920); !errors.Is(err, wgbot.ErrOrderClosed) {
		t.Fatalf("another order priced with the used discount stays payable: %v", err)
	}
	if d, err := e.svc.PendingDiscount(ctx, u); err != nil || d != nil {
		t.Fatalf("the discount is still pending after its payment: %+v, %v", d, err)
	}
	next, err := e.svc.CreateOrder(ctx, u, "year", "stars", "XTR")
	if err != nil || next.Amount != 1400 {
		t.Fatalf("the order after: %+v, %v; want the full 1400", next, err)
	}
	st, err := e.svc.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w := st.Windows[0]
	if fmt.Sprint(w.Revenue) != "[{stars XTR 1120}]" || fmt.Sprint(w.Discounts) != "[{stars XTR 280}]" || w.PromoRedemptions != 1 || st.PromoCodes != 1 {
		t.Fatalf("stats: revenue %v, discounts %v, redemptions %d, codes %d", w.Revenue, w.Discounts, w.PromoRedemptions, st.PromoCodes)
	}
	// The provider's checkout of that other order was left open and is
	// paid anyway: credited, as money always is, and flagged, since the
	// discount it was priced with had been used.
	if _, err := e.svc.PayOrder(ctx, service.Payment{Provider: "yookassa", ProviderPaymentID: "r", OrderID: rub.ID, Amount: 143920, Currency: "RUB"}); err != nil {
		t.Fatal(err)
	}
	var flagged string
	if err := e.pool.QueryRow(ctx, `SELECT flagged FROM payments WHERE provider_payment_id = 'r'`).Scan(&flagged); err != nil || flagged == "" {
		t.Errorf("a second payment at one discount's price is not flagged (%q, %v)", flagged, err)
	}
}

// referral registers a referrer with a live trial and a friend by their
// link, and opens the friend's order for a month in Stars.
func referral(t *testing.T, e *env) (referrer, friend wgbot.User, order wgbot.Order) {
	t.Helper()
	ctx := context.Background()
	referrer = e.user(t, 1)
	if _, err := e.svc.IssueTrial(ctx, referrer); err != nil {
		t.Fatal(err)
	}
	st, err := e.svc.Referral(ctx, referrer)
	if err != nil {
		t.Fatal(err)
	}
	friend, err = e.svc.Register(ctx, wgbot.User{TelegramID: 2}, st.Code)
	if err != nil || friend.ReferrerID != referrer.ID {
		t.Fatalf("friend: %+v, %v", friend, err)
	}
	order, err = e.svc.CreateOrder(ctx, friend, "month", "stars", "XTR")
	if err != nil {
		t.Fatal(err)
	}
	return referrer, friend, order
}

func (e *env) subscription(t *testing.T, u wgbot.User) wgbot.Subscription {
	t.Helper()
	sub, err := e.svc.Subscription(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	return sub
}

func keyring(t *testing.T) *secret.Keyring {
	t.Helper()
	keys, err := secret.NewKeyring(testKey)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func serverOf(t *testing.T, e *env) wgbot.Server {
	t.Helper()
	srv, err := e.store.ServerByName(context.Background(), "main")
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestOneUserRedeemingAtOnce: one user sending a code with one use per
// user 20 times at once gets it once; two discount codes at once leave
// one discount waiting, and the other code's use is not spent.
func TestOneUserRedeemingAtOnce(t *testing.T) {
	ctx := context.Background()
	e := setupWith(t, "10.187.0.0/24", nil, revenueStore)
	for _, p := range []wgbot.Promo{
		{Code: "DAYS", Kind: wgbot.PromoDays, Value: 2},
		{Code: "PCT", Kind: wgbot.PromoPercent, Value: 10},
		{Code: "FIX", Kind: wgbot.PromoFixed, Value: 10, Currency: "XTR"},
	} {
		if _, err := e.svc.CreatePromo(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	u := e.user(t, 50)
	var wg sync.WaitGroup
	var ok, repeated, pending atomic.Int32
	for i := range 22 {
		code := "DAYS"
		switch i {
		case 20:
			code = "PCT"
		case 21:
			code = "FIX"
		}
		wg.Go(func() {
			_, err := e.svc.RedeemPromo(ctx, u, code)
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, wgbot.ErrPromoRepeated):
				repeated.Add(1)
			case errors.Is(err, wgbot.ErrPromoPending):
				pending.Add(1)
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 2 || repeated.Load() != 19 || pending.Load() != 1 {
		t.Fatalf("%d redeemed, %d refused as repeated, %d as pending; want 2, 19, 1", ok.Load(), repeated.Load(), pending.Load())
	}
	if n := count(t, e.pool, `SELECT sum(uses) FROM promo_codes`); n != 2 {
		t.Fatalf("%d uses counted, want 2", n)
	}
	sub := e.subscription(t, u)
	if d := sub.ExpiresAt.Sub(sub.StartsAt); d != 2*24*time.Hour {
		t.Fatalf("free days given %v, want 2 days once", d)
	}
}
