package telegram

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-telegram/bot/models"

	"wgbot"
	"wgbot/service"
)

// errCheckoutStart marks a checkout that failed for reasons of its own
// (not a wgbot error): the user is told the payment page did not open.
var errCheckoutStart = &wgbot.Error{Code: wgbot.EUnavailable, Reason: "checkout_failed", Message: "the payment page could not be created"}

// method is one way to pay for a plan: Stars or a checkout.
type method struct {
	provider string
	currency string
	checkout Checkout // nil for Stars
}

// methods lists the ways to pay, Stars first: Telegram requires Stars for
// digital goods sold in bots, the others are the operator's extras.
func (b *Bot) methods() []method {
	ms := []method{{provider: providerStars, currency: currencyStars}}
	for _, co := range b.checkouts {
		ms = append(ms, method{provider: co.Provider(), currency: co.Currency(), checkout: co})
	}
	return ms
}

// showPlans lists the plans with duration, devices and prices.
func (b *Bot) showPlans(ctx context.Context, r *request) {
	var lines []string
	var rows [][]models.InlineKeyboardButton
	for _, p := range b.svc.Plans() {
		if p.IsTopUp() {
			continue // offered with the quota's notices, to those with a quota
		}
		var prices []string
		for _, m := range b.methods() {
			if amount, ok := p.Prices[m.currency]; ok {
				prices = append(prices, formatAmount(amount, m.currency))
			}
		}
		if len(prices) == 0 {
			continue // nothing enabled can take this plan's money
		}
		days, devices := b.t.days(r.lang, p.Days), b.t.upToDevices(r.lang, p.Devices)
		title := b.planTitle(r.lang, p)
		lines = append(lines, b.t.get(r.lang, mPlanLine, title, days, devices, strings.Join(dedupe(prices), " / ")))
		rows = append(rows, row(button(b.t.get(r.lang, mPlanButton, title, prices[0]), callback{act: actPlan, plan: p.Name})))
	}
	if b.locations(ctx, r) != nil {
		rows = append(rows, row(button(b.t.get(r.lang, mBtnChooseLocation), callback{act: actLocations})))
	}
	rows = append(rows, row(button(b.t.get(r.lang, mBtnBack), callback{act: actMenu})))
	b.show(ctx, r, b.t.get(r.lang, mPlans, strings.Join(lines, "\n")), keyboard(rows...))
}

func dedupe(list []string) []string {
	var out []string
	for _, s := range list {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// showMethods offers the ways to pay for one plan.
func (b *Bot) showMethods(ctx context.Context, r *request, planName string) {
	plan, err := b.svc.Plan(planName)
	if err != nil {
		b.notFound(ctx, r, "choose plan", err)
		return
	}
	if plan.IsTopUp() {
		b.showTopUp(ctx, r, plan)
		return
	}
	var rows, extras [][]models.InlineKeyboardButton
	for _, m := range b.methods() {
		if _, ok := plan.Prices[m.currency]; !ok {
			continue
		}
		// The price the order will have: a waiting discount is off it.
		amount, _ := b.discounted(ctx, r, plan, m.currency)
		price := formatAmount(amount, m.currency)
		label := b.t.get(r.lang, mMethodStars, price)
		if m.checkout != nil {
			label = b.t.get(r.lang, mMethodButton, m.checkout.Title(r.lang), price)
		}
		rows = append(rows, row(button(label, callback{act: actPay, provider: m.provider, plan: plan.Name})))
		// Stars also sell the plan renewing by itself, and as a gift:
		// offered below the ways to pay once.
		if m.checkout == nil && wgbot.Renewable(plan) {
			extras = append(extras, row(button(b.t.get(r.lang, mMethodStarsMonthly, price), callback{act: actSubscribe, plan: plan.Name})))
		}
		if m.checkout == nil {
			extras = append(extras, row(button(b.t.get(r.lang, mBtnGift, price), callback{act: actGift, plan: plan.Name})))
		}
	}
	rows = append(rows, extras...)
	rows = append(rows, row(button(b.t.get(r.lang, mBtnBack), callback{act: actBuy})))
	text := b.t.get(r.lang, mChooseMethod, b.planTitle(r.lang, plan), b.t.days(r.lang, plan.Days), b.t.upToDevices(r.lang, plan.Devices))
	b.show(ctx, r, text, keyboard(rows...))
}

// checkoutWait bounds how long a Pay press waits for another process
// creating the same order's checkout.
const checkoutWait = 10 * time.Second

// startPayment opens the order (the user's open one for this plan and
// provider, if any) and sends a Stars invoice (the order id is the payload
// Telegram hands back) or the checkout's payment link.
func (b *Bot) startPayment(ctx context.Context, r *request, provider, planName string) {
	b.openPayment(ctx, r, provider, planName, false)
}

// cardSaver is a Checkout that can keep the card paid with for renewals
// (YooKassa with YOOKASSA_AUTORENEW): its checkout screen carries the
// payer's checkbox.
type cardSaver interface {
	SavesCards() bool
}

func savesCards(co Checkout) bool {
	s, ok := co.(cardSaver)
	return ok && s.SavesCards()
}

// toggleSaveCard is a press on the checkout's "renew automatically with
// this card" box: the choice is recorded and the checkout screen is shown
// again in place, with the payment link of an order made with that
// choice (the consent belongs to the order whose card is saved).
func (b *Bot) toggleSaveCard(ctx context.Context, r *request, provider, planName string, on bool) {
	m, ok := b.method(provider)
	if !ok || m.checkout == nil || !savesCards(m.checkout) {
		b.answer(ctx, r, b.t.get(r.lang, mOutdated), true)
		return
	}
	if err := b.svc.SetCheckoutConsent(ctx, r.user, on); err != nil {
		b.answer(ctx, r, "", false)
		b.fail(ctx, r, "set checkout consent", err, b.buyKeyboard(r.lang))
		return
	}
	b.openPayment(ctx, r, provider, planName, true)
}

// method is the way to pay named provider.
func (b *Bot) method(provider string) (method, bool) {
	for _, m := range b.methods() {
		if m.provider == provider {
			return m, true
		}
	}
	return method{}, false
}

// openPayment is startPayment; inPlace shows a checkout's screen in place
// of the pressed message (a press on its checkbox) instead of a new one.
func (b *Bot) openPayment(ctx context.Context, r *request, provider, planName string, inPlace bool) {
	m, ok := b.method(provider)
	if !ok {
		b.answer(ctx, r, b.t.get(r.lang, mOutdated), true)
		return
	}
	b.answer(ctx, r, "", false)
	plan, err := b.svc.Plan(planName)
	if err != nil {
		b.fail(ctx, r, "choose plan", err, b.buyKeyboard(r.lang))
		return
	}
	if m.checkout != nil {
		b.openCheckout(ctx, r, m, plan, inPlace)
		return
	}
	order, err := b.svc.CreateOrder(ctx, r.user, plan.Name, m.provider, m.currency)
	if err != nil {
		b.fail(ctx, r, "create order", err, b.buyKeyboard(r.lang))
		return
	}
	if plan.IsTopUp() {
		title, description := b.topUpInvoice(r.lang, plan)
		_ = b.sendStarsInvoice(ctx, r.chatID, title, description, strconv.FormatInt(order.ID, 10), int(order.Amount))
		return
	}
	title := truncateRunes(b.t.get(r.lang, mInvoiceTitle, b.t.days(r.lang, plan.Days)), 32)
	description := b.t.get(r.lang, mInvoiceDescription, b.t.days(r.lang, plan.Days), b.t.upToDevices(r.lang, plan.Devices))
	if ext := b.extension(ctx, r, plan); ext != "" {
		description += " " + ext
	}
	description = truncateRunes(description, 255)
	_ = b.sendStarsInvoice(ctx, r.chatID, title, description, strconv.FormatInt(order.ID, 10), int(order.Amount))
}

// openCheckout shows a checkout's screen: its payment link and, when the
// checkout can save the card, the payer's box for renewals from it. The
// box starts as the user last left it (unticked until they tick it or
// send /autorenew on), and its state is the order's: ticked, the order
// saves the card.
func (b *Bot) openCheckout(ctx context.Context, r *request, m method, plan wgbot.Plan, inPlace bool) {
	saving := savesCards(m.checkout) && !plan.IsTopUp() // a top-up renews nothing
	save := false
	if saving {
		var err error
		if save, err = b.svc.AutorenewConsent(ctx, r.user.ID); err != nil {
			b.fail(ctx, r, "read checkout consent", err, b.buyKeyboard(r.lang))
			return
		}
	}
	order, err := b.svc.CreateCheckoutOrder(ctx, r.user, plan.Name, m.provider, m.currency, save)
	if err != nil {
		b.fail(ctx, r, "create order", err, b.buyKeyboard(r.lang))
		return
	}
	// An open order's checkout is shown again, never made twice.
	payURL, err := b.svc.Checkout(ctx, order.ID, checkoutWait, func(o wgbot.Order) (string, error) {
		return m.checkout.Start(ctx, o, r.user)
	})
	if err != nil {
		if wgbot.ErrorCode(err) == wgbot.EInternal {
			err = fmt.Errorf("%w: %w", errCheckoutStart, err)
		}
		b.fail(ctx, r, "start "+m.provider+" checkout", err, b.buyKeyboard(r.lang))
		return
	}
	price := formatAmount(order.Amount, order.Currency)
	text := b.payLinkText(ctx, r, plan, price, m.checkout)
	rows := [][]models.InlineKeyboardButton{row(linkButton(b.t.get(r.lang, mBtnPay, price), payURL))}
	if saving {
		box := mBtnSaveCardOff
		if save {
			box = mBtnSaveCardOn
			text = joinText(text, b.t.get(r.lang, mSaveCardTerms))
		}
		rows = append(rows, row(button(b.t.get(r.lang, box), callback{act: actSaveCard, provider: m.provider, plan: plan.Name, on: !save})))
	}
	rows = append(rows, row(button(b.t.get(r.lang, mBtnBack), callback{act: actMenu})))
	if inPlace {
		b.show(ctx, r, text, keyboard(rows...))
		return
	}
	_ = b.sendText(ctx, r.chatID, text, keyboard(rows...))
}

// titledVia is a Checkout that also names itself for the middle of a
// sentence, where Russian declines the name ("через банковскую карту");
// Title stays the nominative of its button. Without it the sentence names
// the method after a colon, where the nominative is right.
type titledVia interface {
	TitleVia(lang string) string
}

// payLinkText explains a payment link: for a live subscription, that the
// days are added to its current expiry; else, that access starts once the
// payment is confirmed.
func (b *Bot) payLinkText(ctx context.Context, r *request, plan wgbot.Plan, price string, co Checkout) string {
	head := b.t.get(r.lang, mPayLinkMethod, price, co.Title(r.lang))
	if v, ok := co.(titledVia); ok {
		head = b.t.get(r.lang, mPayLink, price, v.TitleVia(r.lang))
	}
	ext := b.extension(ctx, r, plan)
	if ext == "" {
		ext = b.t.get(r.lang, mPayStarts)
	}
	return joinText(head, ext)
}

// extension says, for a live subscription, that plan's days are added to
// its current expiry and until when it then runs; "" for anyone else.
func (b *Bot) extension(ctx context.Context, r *request, plan wgbot.Plan) string {
	st := b.standingOf(ctx, r)
	if !st.live() {
		return ""
	}
	renewed := wgbot.Renew(st.sub, plan, b.svc.Now(), 0)
	return b.t.get(r.lang, mPayExtends, b.t.days(r.lang, plan.Days), formatDate(renewed.ExpiresAt))
}

func truncateRunes(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n])
	}
	return s
}

// preCheckoutBudget bounds the order check: Telegram cancels the payment
// if the bot has not answered within 10 seconds.
const preCheckoutBudget = 6 * time.Second

// onPreCheckout answers Telegram's last question before taking the
// Stars: ok only for a pending order of this user at exactly this price.
// It always answers, in time, whatever fails.
func (b *Bot) onPreCheckout(ctx context.Context, q *models.PreCheckoutQuery) {
	lang := langEN
	if q.From != nil {
		lang = normalizeLang(q.From.LanguageCode)
	}
	user, order, err := b.checkPreCheckout(ctx, q)
	if user.ID != 0 {
		lang = normalizeLang(user.Language) // the user's choice, not the app's
	}
	if err != nil {
		from := int64(0)
		if q.From != nil {
			from = q.From.ID
		}
		b.logFailure(ctx, "pre-checkout of order "+strconv.Quote(q.InvoicePayload), from, err)
		if errors.Is(err, wgbot.ErrOrderClosed) && q.From != nil {
			// Say so in the chat too; Telegram's own notice closes with its
			// window. A paid invoice pressed again was not cancelled: it is
			// paid. An old or cancelled one gets the way to a new one.
			if order.Status == wgbot.OrderPaid || order.Status == wgbot.OrderRefunded {
				_ = b.answerPreCheckout(ctx, q.ID, false, b.t.get(lang, mInvoicePaid))
				_ = b.sendText(ctx, q.From.ID, b.t.get(lang, mInvoicePaid), b.backTo(lang, actMenu))
				return
			}
			_ = b.answerPreCheckout(ctx, q.ID, false, b.t.get(lang, userError(err)))
			_ = b.sendText(ctx, q.From.ID, b.t.get(lang, mInvoiceClosed), b.tryAgain(lang))
			return
		}
		_ = b.answerPreCheckout(ctx, q.ID, false, b.t.get(lang, userError(err)))
		return
	}
	_ = b.answerPreCheckout(ctx, q.ID, true, "")
}

// errNotOurInvoice is a pre-checkout or payment for an invoice this bot
// did not send: its payload is not an order id, or it is not in Stars.
var errNotOurInvoice = &wgbot.Error{Code: wgbot.EInvalid, Reason: "not_our_invoice", Message: "not an invoice of this bot"}

// checkPreCheckout checks the query's order, returning the user (zero if
// unknown) and the order as far as they were read.
func (b *Bot) checkPreCheckout(ctx context.Context, q *models.PreCheckoutQuery) (wgbot.User, wgbot.Order, error) {
	ctx, cancel := context.WithTimeout(ctx, preCheckoutBudget)
	defer cancel()
	orderID, valid := parseID(q.InvoicePayload)
	if q.From == nil || !valid || q.Currency != currencyStars {
		return wgbot.User{}, wgbot.Order{}, fmt.Errorf("payload %q, currency %s: %w", q.InvoicePayload, q.Currency, errNotOurInvoice)
	}
	user, err := b.svc.UserByTelegramID(ctx, q.From.ID)
	if err != nil {
		return wgbot.User{}, wgbot.Order{}, err
	}
	order, err := b.svc.CheckOrder(ctx, user, orderID, q.Currency, int64(q.TotalAmount))
	return user, order, err
}

// onSuccessfulPayment credits a Stars payment. Only this message credits:
// the pre-checkout query is a question, not money. The service records
// the charge id once, so a redelivered message changes nothing and, being
// a duplicate, is not answered twice.
func (b *Bot) onSuccessfulPayment(ctx context.Context, m *models.Message) {
	sp := m.SuccessfulPayment
	lang := normalizeLang(m.From.LanguageCode)
	problem := func(op string, err error) {
		b.log.Error("telegram: a Stars payment was not credited; an operator must look", "op", op, "user", m.From.ID,
			"charge", sp.TelegramPaymentChargeID, "payload", sp.InvoicePayload, "amount", sp.TotalAmount, "currency", sp.Currency, "err", err)
		_ = b.sendText(ctx, m.Chat.ID, b.t.get(lang, mPaymentProblem, b.support(lang), sp.TelegramPaymentChargeID), nil)
	}
	user, err := b.userFor(ctx, m.From)
	if err != nil {
		problem("identify user", err)
		return
	}
	lang = normalizeLang(user.Language)
	orderID, ok := parseID(sp.InvoicePayload)
	if !ok || sp.Currency != currencyStars || sp.TelegramPaymentChargeID == "" {
		problem("read payment", errNotOurInvoice)
		return
	}
	raw, err := json.Marshal(sp)
	if err != nil {
		raw = nil
	}
	res, err := b.payOrder(ctx, service.Payment{
		Provider: providerStars, ProviderPaymentID: sp.TelegramPaymentChargeID, OrderID: orderID,
		PayerUserID: user.ID, Amount: int64(sp.TotalAmount), Currency: sp.Currency, Raw: raw,
		Recurring: recurring(sp),
	})
	if err != nil {
		problem("credit", err)
		return
	}
	if res.Gift != nil {
		// The buyer gets the link from the gift_ready job queued in the
		// crediting transaction: it survives a crash right here, and a
		// redelivered payment queues nothing more.
		return
	}
	if res.Duplicate {
		b.log.Info("telegram: Stars payment already credited", "charge", sp.TelegramPaymentChargeID)
	}
	// The user is told by the payment_credited job queued in the crediting
	// transaction (an outbox): it waits for WireGuard and survives a crash
	// right here, and it is the only sender, so nobody is told twice.
}

// payOrder credits p, trying again while the database is unreachable:
// the money is already taken, and crediting is idempotent.
func (b *Bot) payOrder(ctx context.Context, p service.Payment) (service.CreditResult, error) {
	var err error
	for attempt := range 4 {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return service.CreditResult{}, err
			case <-time.After(time.Second << (attempt - 1)):
			}
		}
		var res service.CreditResult
		res, err = b.svc.PayOrder(ctx, p)
		if code := wgbot.ErrorCode(err); err == nil || (code != wgbot.EInternal && code != wgbot.EUnavailable) {
			return res, err
		}
		b.log.Warn("telegram: crediting a payment failed; retrying", "charge", p.ProviderPaymentID, "attempt", attempt+1, "err", err)
	}
	return service.CreditResult{}, err
}

// confirmPayment tells the user what a credited payment did: the new
// device's config, or the new expiry date.
func (b *Bot) confirmPayment(ctx context.Context, chatID int64, lang string, res service.CreditResult) error {
	if res.TopUp > 0 {
		return b.sendText(ctx, chatID, b.t.get(lang, mTopUpCredited, b.t.traffic(lang, res.TopUp)), b.afterDelivery(lang))
	}
	until := b.until(lang, res.Subscription.ExpiresAt)
	if res.Delivery != nil {
		return b.deliver(ctx, chatID, lang, *res.Delivery, b.t.get(lang, mPaidNew, until), res.Pending)
	}
	text := b.t.get(lang, mPaidExtended, until)
	if res.Pending {
		text += "\n\n" + b.t.get(lang, mApplyPending)
	}
	return b.sendText(ctx, chatID, text, b.afterDelivery(lang))
}
