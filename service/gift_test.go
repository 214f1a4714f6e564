package service_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"wgbot"
	"wgbot/service"
)

// redeemGiftAll registers users [first, first+n) and has each open the
// gift link token from its own goroutine at start; it returns how many
// got the gift. Any refusal but "already redeemed" is an error.
func redeemGiftAll(ctx context.Context, e *env, first int64, n int, token string, start time.Time) (int, error) {
	users := make([]wgbot.User, n)
	for i := range users {
		u, err := e.svc.Register(ctx, wgbot.User{TelegramID: first + int64(i), Language: "en"}, "")
		if err != nil {
			return 0, err
		}
		users[i] = u
	}
	time.Sleep(time.Until(start))
	var won atomic.Int32
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for _, u := range users {
		wg.Go(func() {
			_, err := e.svc.RedeemGift(ctx, u, token)
			switch {
			case err == nil:
				won.Add(1)
			case !errors.Is(err, wgbot.ErrGiftRedeemed):
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	return int(won.Load()), <-errs
}

// buyGift has buyer pay a gift order for "month" in Stars and returns
// the gift.
func buyGift(t *testing.T, e *env, buyer wgbot.User, charge string) (wgbot.Order, *wgbot.Gift) {
	t.Helper()
	ctx := context.Background()
	order, err := e.svc.CreateGiftOrder(ctx, buyer, "month", "stars", "XTR")
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.svc.PayOrder(ctx, service.Payment{Provider: "stars", ProviderPaymentID: charge, OrderID: order.ID, Amount: order.Amount, Currency: "XTR"})
	if err != nil || res.Gift == nil || !wgbot.GiftTokenPattern.MatchString(res.Gift.Token) {
		t.Fatalf("gift payment: %+v, %v", res, err)
	}
	return order, res.Gift
}

// TestGiftRedeemedOnce: a paid gift gives the buyer nothing; its link
// opened by 20 users at once (10 goroutines here, 5 in each of two other
// processes) has one winner, who gets a subscription of the plan's days
// and a device, one gift row in the ledger; the payment redelivered shows
// the same gift; a redeemed gift cannot be refunded.
func TestGiftRedeemedOnce(t *testing.T) {
	ctx := context.Background()
	e := setupWith(t, "10.184.0.0/24", nil, revenueStore)
	buyer := e.user(t, 1)
	order, gift := buyGift(t, e, buyer, "charge-gift")
	if _, err := e.svc.Subscription(ctx, buyer); !errors.Is(err, wgbot.ErrNoSubscription) {
		t.Fatalf("the buyer got time from a gift: %v", err)
	}
	again, err := e.svc.PayOrder(ctx, service.Payment{Provider: "stars", ProviderPaymentID: "charge-gift", OrderID: order.ID, Amount: order.Amount, Currency: "XTR"})
	if err != nil || !again.Duplicate || again.Gift == nil || again.Gift.Token != gift.Token {
		t.Fatalf("redelivered gift payment: %+v, %v", again, err)
	}

	start := time.Now().Add(2 * time.Second)
	children := startChildren(t, 2, "gift", "CHILD_DB="+e.url, "CHILD_SUBNET=10.184.0.0/24", "CHILD_TOKEN="+gift.Token,
		"CHILD_START="+strconv.FormatInt(start.UnixNano(), 10))
	here, err := redeemGiftAll(ctx, e, 6_000_000, 10, gift.Token, start)
	if err != nil {
		t.Fatal(err)
	}
	waitAll(t, children)
	if n := count(t, e.pool, `SELECT count(*) FROM users`); n != 21 {
		t.Fatalf("want 20 users trying and the buyer, got %d", n)
	}
	if n := count(t, e.pool, `SELECT count(*) FROM payments WHERE kind = 'gift' AND days = 30 AND status = 'credited'`); n != 1 {
		t.Fatalf("want one gift in the ledger, got %d (%d winners here)", n, here)
	}
	if n := count(t, e.pool, `SELECT count(*) FROM subscriptions WHERE status = 'active' AND device_limit = 3 AND expires_at - starts_at = interval '30 days'`); n != 1 {
		t.Fatalf("want one 30-day subscription for the winner, got %d", n)
	}
	if n := count(t, e.pool, `SELECT count(*) FROM peers WHERE status = 'active'`); n != 1 {
		t.Fatalf("want the winner's one device, got %d", n)
	}
	if n := count(t, e.pool, `SELECT count(*) FROM gifts WHERE status = 'redeemed' AND redeemed_by IS NOT NULL`); n != 1 {
		t.Fatalf("the gift is not marked redeemed")
	}
	if err := e.svc.CloseGift(ctx, "stars", "charge-gift"); !errors.Is(err, wgbot.ErrGiftRedeemed) {
		t.Fatalf("closing a redeemed gift for a refund: want ErrGiftRedeemed, got %v", err)
	}
	e.checkInvariants(t)
}

// TestGiftRefundedUnredeemed: an unredeemed gift is closed and refunded;
// its link then gives nothing; a bad token is not found.
func TestGiftRefundedUnredeemed(t *testing.T) {
	ctx := context.Background()
	e := setupWith(t, "10.185.0.0/24", nil, revenueStore)
	buyer, friend := e.user(t, 1), e.user(t, 2)
	_, gift := buyGift(t, e, buyer, "charge-gift")
	if err := e.svc.CloseGift(ctx, "stars", "charge-gift"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.RedeemGift(ctx, friend, gift.Token); !errors.Is(err, wgbot.ErrGiftRefunded) {
		t.Fatalf("a closed gift: want ErrGiftRefunded, got %v", err)
	}
	res, err := e.svc.Refund(ctx, "stars", "charge-gift")
	if err != nil || res.Duplicate {
		t.Fatalf("refund: %+v, %v", res, err)
	}
	if n := count(t, e.pool, `SELECT count(*) FROM payments WHERE status = 'refunded' AND provider_payment_id = 'charge-gift'`); n != 1 {
		t.Fatal("the gift's payment is not refunded")
	}
	if _, err := e.svc.RedeemGift(ctx, friend, gift.Token); !errors.Is(err, wgbot.ErrGiftRefunded) {
		t.Fatalf("a refunded gift: want ErrGiftRefunded, got %v", err)
	}
	for _, token := range []string{"", "short", gift.Token[:21] + "!", "AAAAAAAAAAAAAAAAAAAAAA"} {
		if _, err := e.svc.RedeemGift(ctx, friend, token); !errors.Is(err, wgbot.ErrGiftNotFound) {
			t.Errorf("token %q: want ErrGiftNotFound, got %v", token, err)
		}
	}
	if n := count(t, e.pool, `SELECT count(*) FROM payments WHERE kind = 'gift'`); n != 0 {
		t.Fatalf("%d gift credits from a refunded gift", n)
	}
	if _, err := e.svc.Subscription(ctx, friend); !errors.Is(err, wgbot.ErrNoSubscription) {
		t.Fatalf("the friend got time: %v", err)
	}
}
