package telegram

import (
	"context"
	"time"

	"wgbot"
	"wgbot/service"
)

// The bot's view of the service, split by concern so a test can fake the
// part it exercises. *service.Service implements them all.

// Users is who talks to the bot: registration, language, whether they
// blocked it, and the dedupe of the updates they send.
type Users interface {
	Register(ctx context.Context, u wgbot.User, referralCode string) (wgbot.User, error)
	UserByTelegramID(ctx context.Context, telegramID int64) (wgbot.User, error)
	SetLanguage(ctx context.Context, user wgbot.User, lang string) error
	MarkBlocked(ctx context.Context, telegramID int64, blocked bool) error
	ClaimTelegramUpdate(ctx context.Context, botID, updateID int64) (bool, error)
	PruneTelegramUpdates(ctx context.Context, retention time.Duration) (int64, error)
}

// Orders is what can be bought and the buying of it: the plans, the
// user's subscription, orders and their payments.
type Orders interface {
	Plans() []wgbot.Plan
	Plan(name string) (wgbot.Plan, error)
	TrialPlan() wgbot.Plan
	Subscription(ctx context.Context, user wgbot.User) (wgbot.Subscription, error)
	// Now is the service's clock, against which its expiries count.
	Now() time.Time
	// RenewRestores says whether renewing sub now brings its devices back.
	RenewRestores(sub wgbot.Subscription) bool
	CreateOrder(ctx context.Context, user wgbot.User, planName, provider, currency string) (wgbot.Order, error)
	// CreateCheckoutOrder is CreateOrder for a card checkout, saveCard
	// being the payer's consent to renewals from the card.
	CreateCheckoutOrder(ctx context.Context, user wgbot.User, planName, provider, currency string, saveCard bool) (wgbot.Order, error)
	CheckOrder(ctx context.Context, user wgbot.User, orderID int64, currency string, amount int64) (wgbot.Order, error)
	Checkout(ctx context.Context, orderID int64, wait time.Duration, start func(wgbot.Order) (string, error)) (string, error)
	PayOrder(ctx context.Context, p service.Payment) (service.CreditResult, error)
	// StarSubscription is the user's live auto-renewing Stars subscription.
	StarSubscription(ctx context.Context, user wgbot.User) (wgbot.StarSubscription, error)
	SetStarRenewal(ctx context.Context, user wgbot.User, canceled bool, edit func(ctx context.Context, chargeID string) error) (wgbot.StarSubscription, error)
}

// Devices is the user's peers: the trial, new devices, their configs and
// the once-only delivery of a new one.
type Devices interface {
	IssueTrial(ctx context.Context, user wgbot.User) (service.Delivery, error)
	AddDevice(ctx context.Context, user wgbot.User, name string) (service.Delivery, error)
	Devices(ctx context.Context, user wgbot.User) ([]wgbot.Peer, error)
	// DeviceUsage is each device's traffic this month and last
	// connection, by peer id; a device no collection has seen is absent.
	DeviceUsage(ctx context.Context, peers []wgbot.Peer) (map[int64]wgbot.Usage, error)
	DeviceConfig(ctx context.Context, user wgbot.User, peerID int64) (service.Delivery, error)
	LiveDevices(ctx context.Context, user wgbot.User) (wgbot.Subscription, []service.Delivery, error)
	RemoveDevice(ctx context.Context, user wgbot.User, peerID int64) error
	Resendable(ctx context.Context, p wgbot.Peer) (bool, error)
	SendIssued(ctx context.Context, peerID int64, send func(context.Context) error) (sent bool, err error)
	StartRename(ctx context.Context, user wgbot.User, peerID int64) error
	PendingRename(ctx context.Context, user wgbot.User) (peerID int64, err error)
	StopRename(ctx context.Context, user wgbot.User) error
	RenameDevice(ctx context.Context, user wgbot.User, peerID int64, name string) (string, error)
	// Claim gives the user an imported device through its claim link.
	Claim(ctx context.Context, user wgbot.User, token string) (service.ClaimResult, error)
}

// Locations is where devices may go when there are several hosts; with
// one, Locations is empty and the bot asks nothing.
type Locations interface {
	Locations(ctx context.Context) ([]wgbot.Location, error)
	// SetLocation makes server serverID's location the user's (0: any)
	// and returns its name.
	SetLocation(ctx context.Context, user wgbot.User, serverID int64) (string, error)
	MoveDevice(ctx context.Context, user wgbot.User, peerID, serverID int64) (service.Delivery, error)
}

// Admin is the operators' commands in the chat.
type Admin interface {
	Stats(ctx context.Context) (wgbot.Stats, error)
	UserByUsername(ctx context.Context, username string) (wgbot.User, error)
	Grant(ctx context.Context, user wgbot.User, days, devices int) (wgbot.Subscription, *service.Delivery, error)
	// RevokeSubscription and Ban act for the live subscription subID the
	// admin confirmed (0: none) and fail with wgbot.ErrConfirmStale when
	// the user has another one now. Ban reports whether anything changed:
	// a repeated ban changes nothing.
	RevokeSubscription(ctx context.Context, user wgbot.User, subID int64) error
	Ban(ctx context.Context, user wgbot.User, subID int64) (changed bool, err error)
	Unban(ctx context.Context, user wgbot.User) error
	Refund(ctx context.Context, provider, providerPaymentID string) (wgbot.RefundResult, error)
	RefundByHand(ctx context.Context, provider, providerPaymentID, note string) (wgbot.RefundResult, error)
	PaymentUser(ctx context.Context, provider, providerPaymentID string) (wgbot.User, error)
	UserRecord(ctx context.Context, user wgbot.User) (service.UserRecord, error)
}

// Revenue is referrals and promo codes: a user's link and what it
// earned, codes users redeem and the discount waiting for their next
// order, the operators' management of codes, and the contact fiscal
// receipts go to.
type Revenue interface {
	Referral(ctx context.Context, user wgbot.User) (wgbot.ReferralStats, error)
	ReferralBonus() wgbot.ReferralBonus
	RedeemPromo(ctx context.Context, user wgbot.User, code string) (service.PromoResult, error)
	// SetReceiptContact stores the email or phone for fiscal receipts.
	SetReceiptContact(ctx context.Context, user wgbot.User, typed string) (string, error)
	// SetAutorenew is the user's consent to card auto-renewal, or its Cancel.
	SetAutorenew(ctx context.Context, user wgbot.User, on bool) error
	// SetCheckoutConsent is the checkout screen's "renew automatically
	// with this card", ticked or not; AutorenewConsent is its state.
	SetCheckoutConsent(ctx context.Context, user wgbot.User, on bool) error
	AutorenewConsent(ctx context.Context, userID int64) (bool, error)
	PendingDiscount(ctx context.Context, user wgbot.User) (*wgbot.Discount, error)
	CreatePromo(ctx context.Context, p wgbot.Promo) (wgbot.Promo, error)
	Promos(ctx context.Context) ([]wgbot.Promo, error)
	DisablePromo(ctx context.Context, code string) (wgbot.Promo, error)
	CreateGiftOrder(ctx context.Context, user wgbot.User, planName, provider, currency string) (wgbot.Order, error)
	RedeemGift(ctx context.Context, user wgbot.User, token string) (service.GiftResult, error)
	CloseGift(ctx context.Context, provider, providerPaymentID string) error
	// EndStarRenewalOf stops the renewal of the Stars subscription a
	// refunded charge belongs to; edit gets the subscriber's user id.
	EndStarRenewalOf(ctx context.Context, provider, chargeID string, edit func(ctx context.Context, userID int64, chargeID string) error) (bool, error)
}

// Service is everything the bot asks of the service.
type Service interface {
	Users
	Orders
	Devices
	Locations
	Admin
	Revenue
}

var _ Service = (*service.Service)(nil)
