// Package service holds wgbot's business rules: registration, the free
// trial, purchases and renewals, devices, revocation and expiry. It knows
// nothing of Telegram or HTTP; the bot, the webhooks and the operator CLI
// all call it, so every path obeys the same rules.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"wgbot"
	"wgbot/metrics"
	"wgbot/postgres"
	"wgbot/secret"
	"wgbot/wireguard"
)

// Provisioner makes committed changes real: it wakes the reconciler and
// waits, bounded by ctx, until a reconcile that includes the change has been
// applied to wg0.conf and the device.
type Provisioner interface {
	Apply(ctx context.Context, ch wgbot.Change) error
}

// Config is the rules' settings.
type Config struct {
	Server       wgbot.Server // the row EnsureServer returned
	Plans        []wgbot.Plan
	TrialDays    int
	ClientRoutes []netip.Prefix // AllowedIPs in client configs
	Keepalive    int
	ApplyWait    time.Duration // how long a request waits for the reconciler
	// DeliveryLease bounds how long one sender holds a new device's
	// delivery (default 45s): a sender killed mid-send delays the
	// delivery job by at most this.
	DeliveryLease time.Duration
	Metrics       *metrics.Metrics
	// PickServers spreads new devices over several hosts, each run by a
	// `wgbot node`: every new device goes to the least-loaded active
	// server with room whose node reported within NodeDownAfter. Without
	// it every device goes to Server.
	PickServers   bool
	NodeDownAfter time.Duration
	// OutageCreditAfter: a server's node gone at least this long gives
	// its devices' subscriptions the downtime back (0: off).
	OutageCreditAfter time.Duration
	// MoveGrace is how long a device moved to another location keeps its
	// old peer, unless the user removes it sooner (default 24h).
	MoveGrace time.Duration
}

// Service applies the rules. Create it with New.
type Service struct {
	store *postgres.Store
	keys  *secret.Keyring
	apply Provisioner
	cfg   Config
	now   func() time.Time
	log   *slog.Logger

	mu      sync.Mutex
	servers map[int64]wgbot.Server // by id, for the configs of their peers
}

// New returns a Service; now is the clock (tests move it).
func New(store *postgres.Store, keys *secret.Keyring, apply Provisioner, cfg Config, now func() time.Time, log *slog.Logger) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: store, keys: keys, apply: apply, cfg: cfg, now: now, log: log,
		servers: map[int64]wgbot.Server{cfg.Server.ID: cfg.Server}}
}

// pick is the server a new device of userID goes to (Config.PickServers):
// in the location of server `in`, or with 0 in the one the user chose, or
// anywhere.
func (s *Service) pick(ctx context.Context, userID, in int64) (wgbot.Server, error) {
	if !s.cfg.PickServers {
		return s.cfg.Server, nil
	}
	srv, err := s.store.PickServer(ctx, s.cfg.NodeDownAfter, userID, in)
	if err != nil {
		return srv, err
	}
	s.mu.Lock()
	s.servers[srv.ID] = srv
	s.mu.Unlock()
	return srv, nil
}

// serverOf is the server a peer is on, for its config.
func (s *Service) serverOf(ctx context.Context, id int64) (wgbot.Server, error) {
	s.mu.Lock()
	srv, ok := s.servers[id]
	s.mu.Unlock()
	if ok && srv.PublicKey != "" {
		return srv, nil
	}
	srv, err := s.store.Server(ctx, id)
	if err != nil {
		return srv, err
	}
	s.mu.Lock()
	s.servers[id] = srv
	s.mu.Unlock()
	return srv, nil
}

// observe records an issuance's latency and, on failure, its error kind;
// refusals by the rules (trial used, limit reached) count as their kind.
func (s *Service) observe(operation string, start time.Time, err *error) {
	kind := wgbot.ErrorReason(*err)
	if kind == "" {
		kind = wgbot.ErrorCode(*err)
	}
	s.cfg.Metrics.ObserveIssuance(operation, start, kind)
	if errors.Is(*err, wgbot.ErrNoFreeAddress) {
		s.log.Error("no free addresses on the server: widen WG_SUBNET or revoke peers", "server", s.cfg.Server.Name, "subnet", s.cfg.Server.Subnet.String())
	}
}

// Now is the service's clock (tests move it), for anything stated
// relative to the times the service computes: "in 3 days".
func (s *Service) Now() time.Time { return s.clock() }

// clock is now at the database's precision, so times the service computes
// equal the times it reads back.
func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// Delivery is what a user receives for one device.
type Delivery struct {
	Peer         wgbot.Peer
	Subscription wgbot.Subscription
	Config       []byte    // the client .conf; nil when KeyUnknown
	DeliveredAt  time.Time // when the config last reached the user, where known
	// KeyUnknown: an imported device whose private key only its client
	// has; there is no config to show, and the one it has keeps working.
	KeyUnknown bool
}

// Plans lists what can be bought.
func (s *Service) Plans() []wgbot.Plan { return s.cfg.Plans }

// Plan finds a plan by name.
func (s *Service) Plan(name string) (wgbot.Plan, error) {
	for _, p := range s.cfg.Plans {
		if p.Name == name {
			return p, nil
		}
	}
	return wgbot.Plan{}, wgbot.Errorf(wgbot.EInvalid, wgbot.ErrUnknownPlan.Reason, "no plan named %q", name)
}

// TrialPlan is the free trial as a plan: TRIAL_DAYS, one device.
func (s *Service) TrialPlan() wgbot.Plan {
	return wgbot.TrialPlan(s.cfg.TrialDays)
}

// Register records a user on first contact; repeated calls are harmless.
// referralCode is the code of the link the user came by ("": none): its
// holder becomes the user's referrer, on first contact only.
func (s *Service) Register(ctx context.Context, u wgbot.User, referralCode string) (wgbot.User, error) {
	user, _, err := s.store.RegisterUser(ctx, u, referralCode)
	return user, err
}

// IssueTrial gives the user their one free trial and its first device. If
// the VPN server cannot be updated, the peer is taken back and the trial is
// not burned: the user may press the button again. The caller sends the
// config through SendIssued; the device's job sends it if the caller does
// not (a crash), as for AddDevice and Grant.
func (s *Service) IssueTrial(ctx context.Context, user wgbot.User) (d Delivery, err error) {
	defer s.observe("trial", time.Now(), &err)
	if user.Banned {
		return Delivery{}, wgbot.ErrBanned
	}
	if s.cfg.TrialDays <= 0 {
		return Delivery{}, wgbot.ErrTrialDisabled
	}
	peer, priv, psk, err := s.newPeer("")
	if err != nil {
		return Delivery{}, err
	}
	srv, err := s.pick(ctx, user.ID, 0)
	if err != nil {
		return Delivery{}, err
	}
	sub, p, ch, err := s.store.IssueTrial(ctx, user.ID, srv.ID, s.TrialPlan(), peer, s.clock())
	if err != nil {
		return Delivery{}, err
	}
	if err := s.provision(ctx, ch); err != nil {
		s.takeBack(p, true)
		return Delivery{}, err
	}
	return s.delivery(ctx, p, sub, priv, psk)
}

// AddDevice issues one more device within the plan's limit. An empty name
// numbers it device-N by the user's own counter, as every other new device.
func (s *Service) AddDevice(ctx context.Context, user wgbot.User, name string) (d Delivery, err error) {
	defer s.observe("add_device", time.Now(), &err)
	if user.Banned {
		return Delivery{}, wgbot.ErrBanned
	}
	peer, priv, psk, err := s.newPeer(name)
	if err != nil {
		return Delivery{}, err
	}
	srv, err := s.pick(ctx, user.ID, 0)
	if err != nil {
		return Delivery{}, err
	}
	p, ch, err := s.store.AddPeer(ctx, user.ID, srv.ID, peer)
	if err != nil {
		return Delivery{}, err
	}
	if err := s.provision(ctx, ch); err != nil {
		s.takeBack(p, false)
		return Delivery{}, err
	}
	sub, err := s.store.ActiveSubscription(ctx, user.ID)
	if err != nil {
		return Delivery{}, err
	}
	return s.delivery(ctx, p, sub, priv, psk)
}

// RemoveDevice revokes one of the user's own devices.
func (s *Service) RemoveDevice(ctx context.Context, user wgbot.User, peerID int64) error {
	ch, err := s.store.RemovePeer(ctx, user.ID, peerID)
	if err != nil {
		return err
	}
	// The removal is committed; if the device lags, the reconciler retries.
	s.provisionLater(ctx, ch)
	return nil
}

// renameWait is how long the bot waits for a device's new name.
const renameWait = 10 * time.Minute

// StartRename makes the user's next plain message the new name of their
// device peerID, for a while.
func (s *Service) StartRename(ctx context.Context, user wgbot.User, peerID int64) error {
	return s.store.StartRename(ctx, user.ID, peerID, s.clock().Add(renameWait))
}

// PendingRename is the device whose new name the user's next message is,
// or 0.
func (s *Service) PendingRename(ctx context.Context, user wgbot.User) (int64, error) {
	return s.store.PendingRename(ctx, user.ID, s.clock())
}

// StopRename stops waiting for a device name.
func (s *Service) StopRename(ctx context.Context, user wgbot.User) error {
	return s.store.StopRename(ctx, user.ID)
}

// RenameDevice gives one of the user's devices the name they chose
// (wgbot.DeviceName), and returns it as stored.
func (s *Service) RenameDevice(ctx context.Context, user wgbot.User, peerID int64, name string) (string, error) {
	name, err := wgbot.DeviceName(name)
	if err != nil {
		return "", err
	}
	return name, s.store.RenamePeer(ctx, user.ID, peerID, name)
}

// DeviceConfig re-renders one of the user's own devices' config.
func (s *Service) DeviceConfig(ctx context.Context, user wgbot.User, peerID int64) (Delivery, error) {
	p, err := s.store.UserPeer(ctx, user.ID, peerID)
	if err != nil {
		return Delivery{}, err
	}
	priv, psk, err := s.keys.OpenPeer(p.Secrets)
	if err != nil {
		return Delivery{}, err
	}
	sub, err := s.store.LatestSubscription(ctx, user.ID)
	if err != nil {
		return Delivery{}, err
	}
	return s.delivery(ctx, p.Peer, sub, priv, psk)
}

// Devices lists the user's devices.
func (s *Service) Devices(ctx context.Context, user wgbot.User) ([]wgbot.Peer, error) {
	return s.store.UserPeers(ctx, user.ID)
}

// DeviceUsage is each device's traffic this month and when it last
// connected, by peer id; a device no collection has seen yet (its server
// does not collect, or it was issued a moment ago) is absent.
func (s *Service) DeviceUsage(ctx context.Context, peers []wgbot.Peer) (map[int64]wgbot.Usage, error) {
	ids := make([]int64, len(peers))
	for i, p := range peers {
		ids[i] = p.ID
	}
	return s.store.PeerUsage(ctx, s.clock(), ids)
}

// RenewRestores says whether renewing sub now brings its devices back
// (wgbot.Renew's rule, with the store's renewal grace): an expired
// subscription within the grace. A revoked one (a revoke, a ban, a
// refund) never comes back: a renewal starts a new subscription.
func (s *Service) RenewRestores(sub wgbot.Subscription) bool {
	if sub.Status != wgbot.SubscriptionExpired {
		return false
	}
	return wgbot.Renew(sub, wgbot.Plan{}, s.clock(), s.store.RenewalGrace()).Restore
}

// Subscription returns the user's current (or last) subscription.
func (s *Service) Subscription(ctx context.Context, user wgbot.User) (wgbot.Subscription, error) {
	return s.store.LatestSubscription(ctx, user.ID)
}

// CreditResult is what a verified payment did for the user.
type CreditResult struct {
	wgbot.CreditResult
	Delivery *Delivery // the new device's config, when the payment issued one
	Pending  bool      // committed, but the VPN server has not caught up yet
}

// Credit applies a verified payment exactly once. It never fails because of
// WireGuard: the money and the time are recorded first; if the server lags,
// the reconciler keeps retrying and Pending tells the caller to deliver the
// config later.
func (s *Service) Credit(ctx context.Context, c wgbot.Credit) (CreditResult, error) {
	var err error
	if c.GiftToken, err = newGiftToken(); err != nil {
		return CreditResult{}, err
	}
	peer, priv, psk, err := s.newPeer("")
	if err != nil {
		return CreditResult{}, err
	}
	peer.Overfill = true // paid or given by an operator: never refused for capacity
	// A payment is never refused for want of a server: with none healthy
	// its device goes to this process's own, and waits for its node.
	srv, err := s.pick(ctx, c.UserID, 0)
	if errors.Is(err, wgbot.ErrLocationDown) {
		srv, err = s.pick(ctx, 0, 0)
	}
	if errors.Is(err, wgbot.ErrNoServer) {
		srv, err = s.cfg.Server, nil
	}
	if err != nil {
		return CreditResult{}, err
	}
	// The referrer's bonus issues a device if they have no live
	// subscription; its config goes by its delivery job.
	referrerPeer, _, _, err := s.newPeer("")
	if err != nil {
		return CreditResult{}, err
	}
	referrerPeer.Overfill = true
	res, err := s.store.CreditPayment(ctx, c, srv.ID, peer, referrerPeer, s.clock())
	if err != nil || res.Duplicate || res.Gift != nil {
		return CreditResult{CreditResult: res}, err
	}
	return s.afterCredit(ctx, res, priv, psk, "payment credited", "provider", c.Provider, "payment", c.ProviderPaymentID)
}

// afterCredit waits for WireGuard to take what a committed credit changed
// (Pending if it lags: the reconciler retries) and makes the config of the
// device it issued, if any, with the keys it was issued with. what and
// attrs name the credit in the log.
func (s *Service) afterCredit(ctx context.Context, res wgbot.CreditResult, priv, psk wgtypes.Key, what string, attrs ...any) (CreditResult, error) {
	out := CreditResult{CreditResult: res}
	if err := s.provision(ctx, res.Change); err != nil {
		s.log.WarnContext(ctx, what+", VPN server not updated yet; the reconciler retries", append(attrs, "err", err)...)
		out.Pending = true
	}
	if res.NewPeer != nil {
		d, err := s.delivery(ctx, *res.NewPeer, res.Subscription, priv, psk)
		if err != nil {
			return out, err
		}
		out.Delivery = &d
	}
	return out, nil
}

// Grant adds days to a user's subscription without payment (admin command).
func (s *Service) Grant(ctx context.Context, user wgbot.User, days, devices int) (wgbot.Subscription, *Delivery, error) {
	plan, err := wgbot.GrantPlan(days, devices)
	if err != nil {
		return wgbot.Subscription{}, nil, err
	}
	peer, priv, psk, err := s.newPeer("")
	if err != nil {
		return wgbot.Subscription{}, nil, err
	}
	peer.Overfill = true // paid or given by an operator: never refused for capacity
	srv, err := s.pick(ctx, user.ID, 0)
	if err != nil {
		return wgbot.Subscription{}, nil, err
	}
	sub, p, ch, err := s.store.Grant(ctx, user.ID, plan, srv.ID, peer, s.clock())
	if err != nil {
		return sub, nil, err
	}
	s.provisionLater(ctx, ch)
	if p == nil {
		return sub, nil, nil
	}
	d, err := s.delivery(ctx, *p, sub, priv, psk)
	return sub, &d, err
}

// Revoke ends the user's access now.
func (s *Service) Revoke(ctx context.Context, user wgbot.User) error {
	changes, err := s.store.Revoke(ctx, user.ID)
	for _, ch := range changes {
		s.provisionLater(ctx, ch)
	}
	return err
}

// RevokeSubscription is Revoke confirmed for the live subscription subID:
// if the user has another live one now, nothing is revoked
// (wgbot.ErrConfirmStale).
func (s *Service) RevokeSubscription(ctx context.Context, user wgbot.User, subID int64) error {
	changes, err := s.store.RevokeSubscription(ctx, user.ID, subID)
	for _, ch := range changes {
		s.provisionLater(ctx, ch)
	}
	return err
}

// Ban bars the user from every issuance and ends their access now, in one
// transaction. changed is false when the user was already banned and had
// nothing left to revoke (a second press): nobody need be told again.
// subID is the live subscription the admin confirmed the ban for (0:
// none); another live one fails with wgbot.ErrConfirmStale.
func (s *Service) Ban(ctx context.Context, user wgbot.User, subID int64) (changed bool, err error) {
	changed, changes, err := s.store.Ban(ctx, user.ID, subID)
	for _, ch := range changes {
		s.provisionLater(ctx, ch)
	}
	return changed, err
}

// Unban lets a banned user buy again; nothing is given back.
func (s *Service) Unban(ctx context.Context, user wgbot.User) error {
	return s.store.SetBanned(ctx, user.ID, false)
}

// ExpireDue ends subscriptions whose time is up (I7) and returns them, for
// the log. Their users are told by the notice jobs the store inserts in
// the expiring transaction.
func (s *Service) ExpireDue(ctx context.Context) ([]wgbot.Expired, error) {
	var all []wgbot.Expired
	for {
		expired, changes, err := s.store.ExpireDue(ctx, s.clock(), 500)
		if err != nil {
			return all, err
		}
		all = append(all, expired...)
		for _, ch := range changes {
			s.provisionLater(ctx, ch)
		}
		if len(expired) < 500 {
			return all, nil
		}
	}
}

// provision waits for the change to reach WireGuard, bounded by ApplyWait.
func (s *Service) provision(ctx context.Context, ch wgbot.Change) error {
	if s.apply == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.applyWait())
	defer cancel()
	if err := s.apply.Apply(ctx, ch); err != nil {
		s.log.ErrorContext(ctx, "apply to WireGuard failed", "server", ch.ServerID, "revision", ch.Revision, "err", err)
		return fmt.Errorf("%w: %v", wgbot.ErrApplyFailed, err)
	}
	return nil
}

// provisionLater wakes the reconciler without making the caller wait: the
// change is committed and the reconciler converges on its own.
func (s *Service) provisionLater(ctx context.Context, ch wgbot.Change) {
	if s.apply == nil {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ApplyWait+time.Second)
		defer cancel()
		if err := s.apply.Apply(ctx, ch); err != nil {
			s.log.WarnContext(ctx, "WireGuard lags behind the database; the reconciler retries", "server", ch.ServerID, "err", err)
		}
	}()
}

// takeBack deletes a peer whose first apply failed, before the user ever saw
// it, so its address and (for a trial) the trial are free again. It must
// not depend on the caller's context, which may be the one that timed out.
func (s *Service) takeBack(p wgbot.Peer, trial bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ch, err := s.store.DeletePeer(ctx, p.ID, trial)
	if err != nil && !errors.Is(err, wgbot.ErrPeerNotFound) {
		s.log.Error("could not take back an undelivered peer; it stays issued", "peer", p.ID, "err", err)
		return
	}
	s.provisionLater(ctx, ch)
}

func (s *Service) newPeer(name string) (postgres.NewPeer, wgtypes.Key, wgtypes.Key, error) {
	priv, err := wgtypes.GeneratePrivateKey()
	if err != nil {
		return postgres.NewPeer{}, priv, priv, err
	}
	psk, err := wgtypes.GenerateKey()
	if err != nil {
		return postgres.NewPeer{}, priv, psk, err
	}
	pub := priv.PublicKey().String()
	sealedPriv, keyID, err := s.keys.Seal(priv[:], []byte(pub))
	if err != nil {
		return postgres.NewPeer{}, priv, psk, err
	}
	sealedPSK, _, err := s.keys.Seal(psk[:], []byte(pub))
	if err != nil {
		return postgres.NewPeer{}, priv, psk, err
	}
	return postgres.NewPeer{Name: name, Secrets: wgbot.PeerSecrets{
		PublicKey: pub, PrivateKeySealed: sealedPriv, PresharedSealed: sealedPSK, KeyID: keyID,
	}, DeliverAfter: s.applyWait() + issuerMargin, SealForNode: func(nodeKey string) ([]byte, error) {
		return secret.SealToNode(nodeKey, pub, psk)
	}}, priv, psk, nil
}

// delivery renders p's config with its own server's endpoint and key.
func (s *Service) delivery(ctx context.Context, p wgbot.Peer, sub wgbot.Subscription, priv, psk wgtypes.Key) (Delivery, error) {
	srv, err := s.serverOf(ctx, p.ServerID)
	if err != nil {
		return Delivery{}, err
	}
	return Delivery{Peer: p, Subscription: sub, Config: s.clientConfig(srv, p, priv, psk)}, nil
}

func (s *Service) clientConfig(srv wgbot.Server, p wgbot.Peer, priv, psk wgtypes.Key) []byte {
	addrs := []netip.Prefix{netip.PrefixFrom(p.IP, 32)}
	if p.IP6.IsValid() {
		addrs = append(addrs, netip.PrefixFrom(p.IP6, 128))
	}
	return wireguard.ClientConfig{
		PrivateKey: priv, Addresses: addrs, DNS: srv.DNS, MTU: srv.MTU,
		ServerPublicKey: srv.PublicKey, PresharedKey: psk, Endpoint: srv.Endpoint,
		AllowedIPs: s.cfg.ClientRoutes, Keepalive: s.cfg.Keepalive,
	}.Render()
}

// Notifier tells users what happened without them asking: payments,
// expiry, reminders. The Telegram bot implements it. It returns an error
// matching wgbot.ErrUserBlocked when the user blocked the bot, so the job is
// not retried.
type Notifier interface {
	PaymentCredited(ctx context.Context, user wgbot.User, sub wgbot.Subscription, d *Delivery) error
	SubscriptionExpired(ctx context.Context, user wgbot.User, sub wgbot.Subscription) error
	ExpiryReminder(ctx context.Context, user wgbot.User, sub wgbot.Subscription, daysLeft int) error
}

// PaymentNotice returns what to tell the user about a credited payment,
// after waiting until WireGuard has everything committed so far, so a
// delivered config works the moment it arrives. Nil, nil: nothing to say
// (the payment was refunded meanwhile).
func (s *Service) PaymentNotice(ctx context.Context, paymentID int64) (*PaymentNotice, error) {
	n, err := s.store.PaymentNotice(ctx, paymentID)
	if err != nil || n.Refunded {
		return nil, err
	}
	out := &PaymentNotice{User: n.User, Subscription: n.Subscription, TopUp: n.TopUp}
	if n.Kind != "" && n.Kind != wgbot.LedgerPayment {
		out.Bonus = &Bonus{Kind: n.Kind, Invited: strings.HasPrefix(n.Key, "invited:"), Days: n.Days}
	}
	if n.Peer != nil {
		ch, err := s.store.Revision(ctx, n.Peer.ServerID)
		if err != nil {
			return nil, err
		}
		if err := s.provision(ctx, ch); err != nil {
			return nil, err
		}
		priv, psk, err := s.keys.OpenPeer(n.Peer.Secrets)
		if err != nil {
			return nil, err
		}
		d, err := s.delivery(ctx, n.Peer.Peer, n.Subscription, priv, psk)
		if err != nil {
			return nil, err
		}
		out.Delivery = &d
	}
	return out, nil
}

// PaymentNotice is what a user is told about a credited payment.
type PaymentNotice struct {
	User         wgbot.User
	Subscription wgbot.Subscription
	Delivery     *Delivery // the device this payment issued, if any
	Bonus        *Bonus    // set when the credit was no payment but a bonus
	TopUp        int64     // bytes a top-up payment added to this month's traffic
}

// SubscriptionNotice loads a subscription and its user.
func (s *Service) SubscriptionNotice(ctx context.Context, subID int64) (wgbot.User, wgbot.Subscription, error) {
	return s.store.SubscriptionNotice(ctx, subID)
}

// PurgeExpired revokes the peers whose subscription expired more than
// retention ago, freeing their addresses.
func (s *Service) PurgeExpired(ctx context.Context, retention time.Duration) (int, error) {
	return s.store.PurgeDisabled(ctx, s.clock().Add(-retention))
}

// QueueReminders queues the reminders that are due now.
func (s *Service) QueueReminders(ctx context.Context) (int, error) {
	return s.store.QueueDueReminders(ctx, s.clock())
}

// QueueConnectionChecks queues the connection tip for every delivered
// device that has not connected wgbot.ConnectionCheckAfter after delivery,
// once per device (the store's rule).
func (s *Service) QueueConnectionChecks(ctx context.Context) (int, error) {
	return s.store.QueueConnectionChecks(ctx, s.clock(), wgbot.ConnectionCheckAfter)
}

// SettleOutages settles the outages the servers' nodes recorded, once
// each: those of at least OutageCreditAfter give the affected
// subscriptions the downtime back (wgbot.OutageCredit), with a message.
func (s *Service) SettleOutages(ctx context.Context) (int, error) {
	return s.store.SettleOutages(ctx, s.cfg.OutageCreditAfter, s.clock())
}

// ConnectionTipNotice is the device a connection tip is about, its user,
// and whether it has connected meanwhile (then no tip is due).
func (s *Service) ConnectionTipNotice(ctx context.Context, peerID int64) (wgbot.User, wgbot.Peer, bool, error) {
	return s.store.ConnectionTipState(ctx, peerID)
}

// Rekey re-seals every peer's private and preshared keys with the current
// master key, so the keys in MASTER_KEY_OLD can be retired.
func (s *Service) Rekey(ctx context.Context) (int, error) {
	return s.store.ResealPeers(ctx, s.keys.CurrentID(), func(p postgres.SealedPeer) (wgbot.PeerSecrets, error) {
		// Each key on its own: an imported peer may lack its private or
		// preshared key (empty sealed bytes), which stays empty.
		keyID := s.keys.CurrentID()
		reseal := func(sealed []byte) ([]byte, error) {
			if len(sealed) == 0 {
				return []byte{}, nil // not nil: that would be NULL
			}
			plain, err := s.keys.Open(sealed, p.Secrets.KeyID, []byte(p.PublicKey))
			if err != nil {
				return nil, err
			}
			out, id, err := s.keys.Seal(plain, []byte(p.PublicKey))
			keyID = id
			return out, err
		}
		sealedPriv, err := reseal(p.Secrets.PrivateKeySealed)
		if err != nil {
			return wgbot.PeerSecrets{}, err
		}
		sealedPSK, err := reseal(p.Secrets.PresharedSealed)
		return wgbot.PeerSecrets{PublicKey: p.PublicKey, PrivateKeySealed: sealedPriv, PresharedSealed: sealedPSK, KeyID: keyID}, err
	})
}
