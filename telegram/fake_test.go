package telegram

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"wgbot"
	"wgbot/service"
)

// fakeService is the bot's Service in memory, for the tests of menus,
// texts and callbacks that need no database. It keeps users, their
// language and block state, and the claimed update ids. Flows that touch
// money or peers run on PostgreSQL through the real service (newHarness
// without fake): here they fail with an internal error, which the bot
// shows as its neutral error text.
type fakeService struct {
	plans []wgbot.Plan
	trial int

	mu      sync.Mutex
	users   map[int64]wgbot.User // by Telegram id
	lastID  int64
	claimed map[[2]int64]bool // bot id, update id
}

var _ Service = (*fakeService)(nil)

func newFakeService() *fakeService {
	return &fakeService{plans: service.DefaultPlans(), trial: 3, users: map[int64]wgbot.User{}, claimed: map[[2]int64]bool{}}
}

// errNeedsDatabase is what the fake answers for money and peers.
var errNeedsDatabase = wgbot.Errorf(wgbot.EInternal, "", "fakeService: this flow runs on PostgreSQL (newHarness without fake)")

func (f *fakeService) Register(_ context.Context, u wgbot.User, referralCode string) (wgbot.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if old, ok := f.users[u.TelegramID]; ok {
		old.Username, old.FirstName = u.Username, u.FirstName
		f.users[u.TelegramID] = old
		return old, nil
	}
	f.lastID++
	u.ID, u.CreatedAt = f.lastID, time.Now().UTC()
	for _, ref := range f.users {
		if referralCode != "" && fakeReferralCode(ref) == referralCode {
			u.ReferrerID = ref.ID
		}
	}
	f.users[u.TelegramID] = u
	return u, nil
}

func (f *fakeService) UserByTelegramID(_ context.Context, telegramID int64) (wgbot.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u, ok := f.users[telegramID]
	if !ok {
		return wgbot.User{}, wgbot.ErrUserNotFound
	}
	return u, nil
}

func (f *fakeService) UserByUsername(_ context.Context, username string) (wgbot.User, error) {
	return wgbot.User{}, wgbot.ErrUserNotFound
}

func (f *fakeService) SetLanguage(_ context.Context, user wgbot.User, lang string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, u := range f.users {
		if u.ID == user.ID {
			u.Language = lang
			f.users[id] = u
		}
	}
	return nil
}

func (f *fakeService) MarkBlocked(_ context.Context, telegramID int64, blocked bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if u, ok := f.users[telegramID]; ok {
		u.BlockedBot = blocked
		f.users[telegramID] = u
	}
	return nil
}

// ClaimTelegramUpdate claims an id once; the redelivery window's expiry
// is the store's and is tested there.
func (f *fakeService) ClaimTelegramUpdate(_ context.Context, botID, updateID int64) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := [2]int64{botID, updateID}
	if f.claimed[key] {
		return false, nil
	}
	f.claimed[key] = true
	return true, nil
}

func (f *fakeService) PruneTelegramUpdates(context.Context, time.Duration) (int64, error) {
	return 0, nil
}

func (f *fakeService) Plans() []wgbot.Plan { return f.plans }

func (f *fakeService) Plan(name string) (wgbot.Plan, error) {
	if i := slices.IndexFunc(f.plans, func(p wgbot.Plan) bool { return p.Name == name }); i >= 0 {
		return f.plans[i], nil
	}
	return wgbot.Plan{}, wgbot.Errorf(wgbot.EInvalid, wgbot.ErrUnknownPlan.Reason, "no plan named %q", name)
}

func (f *fakeService) TrialPlan() wgbot.Plan {
	return wgbot.Plan{Name: "trial", Days: f.trial, Devices: 1}
}

func (f *fakeService) Subscription(context.Context, wgbot.User) (wgbot.Subscription, error) {
	return wgbot.Subscription{}, wgbot.ErrNoSubscription
}

func (f *fakeService) Now() time.Time { return time.Now() }

func (f *fakeService) RenewRestores(wgbot.Subscription) bool { return false }

func (f *fakeService) Devices(context.Context, wgbot.User) ([]wgbot.Peer, error) { return nil, nil }

func (f *fakeService) DeviceUsage(context.Context, []wgbot.Peer) (map[int64]wgbot.Usage, error) {
	return nil, nil
}

func (f *fakeService) CreateOrder(context.Context, wgbot.User, string, string, string) (wgbot.Order, error) {
	return wgbot.Order{}, errNeedsDatabase
}

func (f *fakeService) CheckOrder(context.Context, wgbot.User, int64, string, int64) (wgbot.Order, error) {
	return wgbot.Order{}, errNeedsDatabase
}

func (f *fakeService) Checkout(context.Context, int64, time.Duration, func(wgbot.Order) (string, error)) (string, error) {
	return "", errNeedsDatabase
}

func (f *fakeService) PayOrder(context.Context, service.Payment) (service.CreditResult, error) {
	return service.CreditResult{}, errNeedsDatabase
}

func (f *fakeService) StarSubscription(context.Context, wgbot.User) (wgbot.StarSubscription, error) {
	return wgbot.StarSubscription{}, wgbot.ErrNoStarSubscription
}

func (f *fakeService) SetStarRenewal(context.Context, wgbot.User, bool, func(context.Context, string) error) (wgbot.StarSubscription, error) {
	return wgbot.StarSubscription{}, errNeedsDatabase
}

func (f *fakeService) CreateCheckoutOrder(context.Context, wgbot.User, string, string, string, bool) (wgbot.Order, error) {
	return wgbot.Order{}, errNeedsDatabase
}

func (f *fakeService) SetCheckoutConsent(context.Context, wgbot.User, bool) error {
	return errNeedsDatabase
}

func (f *fakeService) AutorenewConsent(context.Context, int64) (bool, error) { return false, nil }

func (f *fakeService) CreateGiftOrder(context.Context, wgbot.User, string, string, string) (wgbot.Order, error) {
	return wgbot.Order{}, errNeedsDatabase
}

func (f *fakeService) RedeemGift(context.Context, wgbot.User, string) (service.GiftResult, error) {
	return service.GiftResult{}, errNeedsDatabase
}

func (f *fakeService) EndStarRenewalOf(context.Context, string, string, func(context.Context, int64, string) error) (bool, error) {
	return false, errNeedsDatabase
}

func (f *fakeService) CloseGift(context.Context, string, string) error { return errNeedsDatabase }

func (f *fakeService) IssueTrial(context.Context, wgbot.User) (service.Delivery, error) {
	return service.Delivery{}, errNeedsDatabase
}

func (f *fakeService) AddDevice(context.Context, wgbot.User, string) (service.Delivery, error) {
	return service.Delivery{}, errNeedsDatabase
}

func (f *fakeService) DeviceConfig(context.Context, wgbot.User, int64) (service.Delivery, error) {
	return service.Delivery{}, errNeedsDatabase
}

func (f *fakeService) LiveDevices(context.Context, wgbot.User) (wgbot.Subscription, []service.Delivery, error) {
	return wgbot.Subscription{}, nil, wgbot.ErrNoSubscription
}

func (f *fakeService) RemoveDevice(context.Context, wgbot.User, int64) error { return errNeedsDatabase }

func (f *fakeService) Resendable(context.Context, wgbot.Peer) (bool, error) {
	return false, errNeedsDatabase
}

func (f *fakeService) SendIssued(context.Context, int64, func(context.Context) error) (bool, error) {
	return false, errNeedsDatabase
}

func (f *fakeService) Stats(context.Context) (wgbot.Stats, error) {
	return wgbot.Stats{}, errNeedsDatabase
}

func (f *fakeService) Grant(context.Context, wgbot.User, int, int) (wgbot.Subscription, *service.Delivery, error) {
	return wgbot.Subscription{}, nil, errNeedsDatabase
}

func (f *fakeService) RevokeSubscription(context.Context, wgbot.User, int64) error {
	return errNeedsDatabase
}

func (f *fakeService) Ban(context.Context, wgbot.User, int64) (bool, error) {
	return false, errNeedsDatabase
}

func (f *fakeService) Unban(context.Context, wgbot.User) error { return errNeedsDatabase }

func (f *fakeService) Refund(context.Context, string, string) (wgbot.RefundResult, error) {
	return wgbot.RefundResult{}, errNeedsDatabase
}

func (f *fakeService) RefundByHand(context.Context, string, string, string) (wgbot.RefundResult, error) {
	return wgbot.RefundResult{}, errNeedsDatabase
}

func (f *fakeService) UserRecord(context.Context, wgbot.User) (service.UserRecord, error) {
	return service.UserRecord{}, errNeedsDatabase
}

func (f *fakeService) PaymentUser(context.Context, string, string) (wgbot.User, error) {
	return wgbot.User{}, errNeedsDatabase
}

func (f *fakeService) StartRename(context.Context, wgbot.User, int64) error { return errNeedsDatabase }

func (f *fakeService) PendingRename(context.Context, wgbot.User) (int64, error) { return 0, nil }

func (f *fakeService) StopRename(context.Context, wgbot.User) error { return nil }

func (f *fakeService) RenameDevice(context.Context, wgbot.User, int64, string) (string, error) {
	return "", errNeedsDatabase
}

// fakeReferralCode is a user's referral code in the fake: derived, not
// stored, and not their Telegram id.
func fakeReferralCode(u wgbot.User) string { return fmt.Sprintf("code%06d", u.ID) }

func (f *fakeService) Referral(_ context.Context, user wgbot.User) (wgbot.ReferralStats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := wgbot.ReferralStats{Code: fakeReferralCode(user), BonusActive: true}
	for _, u := range f.users {
		if u.ReferrerID == user.ID {
			st.Invited++
		}
	}
	return st, nil
}

func (f *fakeService) ReferralBonus() wgbot.ReferralBonus {
	return wgbot.ReferralBonus{ReferrerDays: 7, InvitedDays: 3}
}

func (f *fakeService) RedeemPromo(context.Context, wgbot.User, string) (service.PromoResult, error) {
	return service.PromoResult{}, wgbot.ErrPromoNotFound
}

func (f *fakeService) SetReceiptContact(_ context.Context, _ wgbot.User, typed string) (string, error) {
	return wgbot.NormalizeReceiptContact(typed)
}

func (f *fakeService) SetAutorenew(context.Context, wgbot.User, bool) error { return errNeedsDatabase }

func (f *fakeService) PendingDiscount(context.Context, wgbot.User) (*wgbot.Discount, error) {
	return nil, nil
}

func (f *fakeService) CreatePromo(context.Context, wgbot.Promo) (wgbot.Promo, error) {
	return wgbot.Promo{}, errNeedsDatabase
}

func (f *fakeService) Promos(context.Context) ([]wgbot.Promo, error) { return nil, errNeedsDatabase }

func (f *fakeService) DisablePromo(context.Context, string) (wgbot.Promo, error) {
	return wgbot.Promo{}, errNeedsDatabase
}

// One host: no locations to choose.
func (f *fakeService) Locations(context.Context) ([]wgbot.Location, error) { return nil, nil }

func (f *fakeService) SetLocation(context.Context, wgbot.User, int64) (string, error) {
	return "", wgbot.ErrUnknownLocation
}

func (f *fakeService) MoveDevice(context.Context, wgbot.User, int64, int64) (service.Delivery, error) {
	return service.Delivery{}, errNeedsDatabase
}

func (f *fakeService) Claim(context.Context, wgbot.User, string) (service.ClaimResult, error) {
	return service.ClaimResult{}, wgbot.ErrClaimUnknown
}
