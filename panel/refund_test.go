package panel_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"wgbot"
	"wgbot/metrics"
	"wgbot/payment"
	"wgbot/payment/cryptopay/cryptopaytest"
	"wgbot/payment/yookassa/yookassatest"
	"wgbot/telegram"
	"wgbot/telegram/tgtest"
)

const cryptoPayToken = "12345:AAcryptopaytesttoken"

// providerEnv is the panel with YooKassa and Crypto Pay on, each against
// its emulator.
type providerEnv struct {
	*env
	yoo    *payment.YooKassa
	yooEmu *yookassatest.Server
	cp     *payment.CryptoPay
	cpEmu  *cryptopaytest.Server
}

func newProviderEnv(t *testing.T) *providerEnv {
	t.Helper()
	pe := &providerEnv{yooEmu: yookassatest.NewServer("shop-1", "test_secret"), cpEmu: cryptopaytest.NewServer(cryptoPayToken)}
	t.Cleanup(pe.yooEmu.Close)
	t.Cleanup(pe.cpEmu.Close)
	pe.env = newEnvCheckouts(t, false, func(e *env, log *slog.Logger) []telegram.Checkout {
		var err error
		pe.yoo, err = payment.NewYooKassa(payment.YooKassaConfig{BaseURL: pe.yooEmu.URL, ShopID: "shop-1", SecretKey: "test_secret",
			ReturnURL: "https://t.me/wgbot_test_bot"}, e.stack.Service, metrics.New(nil), log)
		if err != nil {
			t.Fatal(err)
		}
		pe.cp, err = payment.NewCryptoPay(payment.CryptoPayConfig{BaseURL: pe.cpEmu.BaseURL(), Token: cryptoPayToken, Fiat: "USD"},
			e.stack.Service, metrics.New(nil), log)
		if err != nil {
			t.Fatal(err)
		}
		return []telegram.Checkout{pe.yoo, pe.cp}
	})
	return pe
}

// webhook delivers a provider's notice to its handler, from inside
// YooKassa's published ranges (Crypto Pay's is signed instead).
func webhook(t *testing.T, h http.Handler, body []byte, header map[string]string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/webhooks/provider", strings.NewReader(string(body)))
	req.RemoteAddr = "185.71.76.10:443"
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("webhook answered %d: %s", rec.Code, rec.Body)
	}
}

// registerChat is register of a user who has a chat with the bot, so
// the bot's notices reach them.
func (pe *providerEnv) registerChat(telegramID int64, username, name string) wgbot.User {
	pe.tg.AddUser(tgtest.User{ID: telegramID, Username: username, FirstName: name, LanguageCode: "en"})
	return pe.register(telegramID, username, name)
}

// buyYooKassa pays the month plan by card and returns the payment id once
// it is credited.
func (pe *providerEnv) buyYooKassa(u wgbot.User) string {
	pe.t.Helper()
	t := pe.t.(*testing.T)
	o, err := pe.stack.Service.CreateOrder(pe.ctx, u, "month", pe.yoo.Provider(), pe.yoo.Currency())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pe.yoo.Start(pe.ctx, o, u); err != nil {
		t.Fatal(err)
	}
	ps := pe.yooEmu.Payments()
	id := ps[len(ps)-1].ID
	if err := pe.yooEmu.Succeed(id); err != nil {
		t.Fatal(err)
	}
	webhook(t, pe.yoo, pe.yooEmu.NotificationBody("payment.succeeded", id), nil)
	pe.waitCredited(id)
	return id
}

// buyCryptoPay pays the month plan in crypto and returns the invoice id
// once it is credited.
func (pe *providerEnv) buyCryptoPay(u wgbot.User) string {
	pe.t.Helper()
	t := pe.t.(*testing.T)
	o, err := pe.stack.Service.CreateOrder(pe.ctx, u, "month", pe.cp.Provider(), pe.cp.Currency())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pe.cp.Start(pe.ctx, o, u); err != nil {
		t.Fatal(err)
	}
	invs := pe.cpEmu.Invoices()
	inv := invs[len(invs)-1].InvoiceID
	if err := pe.cpEmu.Pay(inv); err != nil {
		t.Fatal(err)
	}
	body, sig := pe.cpEmu.SignedBody(inv)
	webhook(t, pe.cp, body, map[string]string{"crypto-pay-api-signature": sig})
	id := strconv.FormatInt(inv, 10)
	pe.waitCredited(id)
	return id
}

func (pe *providerEnv) waitCredited(id string) {
	pe.t.Helper()
	pe.waitFor("payment "+id+" credited", func() bool { return pe.paymentStatus(id) == "credited" })
}

func (pe *providerEnv) paymentStatus(id string) (status string) {
	pe.stack.Pool.QueryRow(pe.ctx, `SELECT status FROM payments WHERE provider_payment_id = $1`, id).Scan(&status)
	return status
}

func (pe *providerEnv) refundAudits(id string) (n int) {
	pe.stack.Pool.QueryRow(pe.ctx, `SELECT count(*) FROM audit_log WHERE action = 'refund' AND after->>'payment' = $1`, id).Scan(&n)
	return n
}

// refundKey is the one-time key of the refund button the user page shows
// for the payment.
func refundKey(t *testing.T, c *client, telegramID int64, charge string) string {
	t.Helper()
	_, body := c.get("/panel/users/" + itoa(telegramID))
	m := regexp.MustCompile(`name="form" value="([0-9a-f]{32})"><input type="hidden" name="provider" value="[a-z]+"><input type="hidden" name="charge" value="` +
		regexp.QuoteMeta(charge) + `"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no refund button for %s on the user page:\n%s", charge, body)
	}
	return m[1]
}

// TestRefundYooKassa: a refund from the panel returns the money through
// YooKassa's API (one refund of the whole payment, however often it is
// pressed) and reverses the ledger once; YooKassa's own refund notice,
// arriving after, changes nothing.
func TestRefundYooKassa(t *testing.T) {
	pe := newProviderEnv(t)
	u := pe.registerChat(6000007, "yana", "Yana")
	id := pe.buyYooKassa(u)
	paid, _ := pe.yooEmu.Payment(id)
	c, csrf := pe.signIn()
	form := func(key string) url.Values {
		return url.Values{"csrf": {csrf}, "form": {key}, "provider": {"yookassa"}, "charge": {id}, "user": {itoa(u.TelegramID)}}
	}

	// YooKassa down: refused, nothing changed.
	pe.yooEmu.FailNext(1, http.StatusInternalServerError)
	resp := c.post("/panel/refund", form(refundKey(t, c, u.TelegramID, id)))
	if resp.StatusCode != http.StatusConflict || pe.paymentStatus(id) != "credited" || len(pe.yooEmu.Refunds(id)) != 0 || pe.refundAudits(id) != 0 {
		t.Fatalf("with YooKassa down: answered %d, payment %s, %d refunds, %d audit rows", resp.StatusCode, pe.paymentStatus(id),
			len(pe.yooEmu.Refunds(id)), pe.refundAudits(id))
	}

	// A double click: two posts of one form at once; then another tab's
	// form.
	told := len(pe.tg.Messages(u.TelegramID))
	key, otherTab := refundKey(t, c, u.TelegramID, id), refundKey(t, c, u.TelegramID, id)
	var wg sync.WaitGroup
	locations := make([]string, 2)
	for i := range locations {
		wg.Add(1)
		go func() {
			defer wg.Done()
			locations[i] = c.post("/panel/refund", form(key)).Header.Get("Location")
		}()
	}
	wg.Wait()
	again := c.post("/panel/refund", form(otherTab)).Header.Get("Location")
	t.Logf("a double click went to %v, another tab to %s", locations, again)
	if !strings.Contains(strings.Join(locations, " "), "done=refunded") || !strings.Contains(again, "done=again") {
		t.Errorf("the refunds went to %v and %s: want one refunded, the rest again", locations, again)
	}
	refunds := pe.yooEmu.Refunds(id)
	if len(refunds) != 1 || refunds[0].Amount != paid.Amount || refunds[0].Status != "succeeded" {
		t.Fatalf("YooKassa holds %d refunds (%+v), want one of %v", len(refunds), refunds, paid.Amount)
	}
	if p, _ := pe.yooEmu.Payment(id); p.RefundedAmount == nil || *p.RefundedAmount != paid.Amount {
		t.Errorf("YooKassa shows %v refunded of %v", p.RefundedAmount, paid.Amount)
	}
	if pe.paymentStatus(id) != "refunded" || pe.refundAudits(id) != 1 {
		t.Errorf("payment %s, %d audit rows; want refunded, 1", pe.paymentStatus(id), pe.refundAudits(id))
	}
	// The payment bought all of the user's time: taken back, access ends.
	var live int
	pe.stack.Pool.QueryRow(pe.ctx, `SELECT count(*) FROM subscriptions WHERE user_id = $1 AND status = 'active'`, u.ID).Scan(&live)
	if live != 0 {
		t.Errorf("after the refund of all the user's days %d subscriptions are live", live)
	}
	if _, err := pe.tg.WaitMessages(pe.ctx, u.TelegramID, told+1); err != nil {
		t.Fatal(err)
	}

	// YooKassa's refund notice comes after: a duplicate.
	webhook(t, pe.yoo, pe.yooEmu.NotificationBody("refund.succeeded", id), nil)
	var rows int
	pe.stack.Pool.QueryRow(pe.ctx, `SELECT count(*) FROM payments WHERE provider_payment_id = $1`, id).Scan(&rows)
	if rows != 1 || pe.paymentStatus(id) != "refunded" || pe.refundAudits(id) != 1 {
		t.Errorf("after the notice: %d rows, %s, %d audit rows", rows, pe.paymentStatus(id), pe.refundAudits(id))
	}
	if got := len(pe.tg.Messages(u.TelegramID)); got != told+1 {
		t.Errorf("the user was told %d times, want once", got-told)
	}
}

// TestRefundCryptoPay: Crypto Pay has no refunds, so the panel records the
// refund in the ledger once and tells the admin to send the money back by
// hand; the payment stays flagged with what to send.
func TestRefundCryptoPay(t *testing.T) {
	pe := newProviderEnv(t)
	u := pe.registerChat(6000008, "kim", "Kim")
	id := pe.buyCryptoPay(u)
	c, csrf := pe.signIn()
	form := func(key string) url.Values {
		return url.Values{"csrf": {csrf}, "form": {key}, "provider": {"cryptopay"}, "charge": {id}, "user": {itoa(u.TelegramID)}}
	}
	key, otherTab := refundKey(t, c, u.TelegramID, id), refundKey(t, c, u.TelegramID, id)
	loc := c.post("/panel/refund", form(key)).Header.Get("Location")
	if !strings.Contains(loc, "done=refunded_by_hand") {
		t.Fatalf("the refund went to %q", loc)
	}
	_, page := c.get(strings.TrimPrefix(loc, pe.srv.URL))
	if !strings.Contains(page, "send it back by hand") {
		t.Errorf("the page after the refund does not say to send the money by hand")
	}
	var flagged string
	pe.stack.Pool.QueryRow(pe.ctx, `SELECT flagged FROM payments WHERE provider_payment_id = $1`, id).Scan(&flagged)
	inv, _ := pe.cpEmu.Invoice(mustInt(t, id))
	if !strings.Contains(flagged, "by hand") || !strings.Contains(flagged, inv.PaidAmount+" "+inv.PaidAsset) {
		t.Errorf("the payment is flagged %q, want what to send back (%s %s)", flagged, inv.PaidAmount, inv.PaidAsset)
	}
	if !strings.Contains(page, inv.PaidAmount+" "+inv.PaidAsset) {
		t.Errorf("the user page does not show what to send back")
	}
	again := c.post("/panel/refund", form(otherTab)).Header.Get("Location")
	if pe.paymentStatus(id) != "refunded" || pe.refundAudits(id) != 1 || !strings.Contains(again, "done=again") {
		t.Errorf("payment %s, %d audit rows, a second refund went to %q", pe.paymentStatus(id), pe.refundAudits(id), again)
	}
}

// A refund for a provider that is not on, or without its form's key, is
// refused and changes nothing.
func TestRefundRefused(t *testing.T) {
	e := newEnv(t)
	u := e.register(6000009, "lee", "Lee")
	e.buyStars(u, "stxLEE-1")
	c, csrf := e.signIn()
	for name, form := range map[string]url.Values{
		"unknown provider": {"provider": {"paypal"}, "charge": {"stxLEE-1"}, "form": {strings.Repeat("a", 32)}},
		"no form key":      {"provider": {"stars"}, "charge": {"stxLEE-1"}},
	} {
		form.Set("csrf", csrf)
		if code := c.post("/panel/refund", form).StatusCode; code < 400 {
			t.Errorf("%s: answered %d", name, code)
		}
	}
	var status string
	e.stack.Pool.QueryRow(e.ctx, `SELECT status FROM payments WHERE provider_payment_id = 'stxLEE-1'`).Scan(&status)
	if status != "credited" || e.tg.Refunded("stxLEE-1") {
		t.Fatalf("a refused refund changed the payment: %s, Stars back %v", status, e.tg.Refunded("stxLEE-1"))
	}
}

func mustInt(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
