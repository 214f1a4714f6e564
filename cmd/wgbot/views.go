package main

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"text/tabwriter"
	"time"

	"wgbot"
	"wgbot/config"
	"wgbot/postgres"
	"wgbot/reconcile"
)

// The operator commands' output: the JSON shapes (--json) and the
// helpers of their text tables.

func (op *operatorCmd) writeJSON(v any) error {
	enc := json.NewEncoder(op.out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0) }

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func at(username string) string {
	if username == "" {
		return "-"
	}
	return "@" + username
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// who names a user for messages: Telegram id and, if known, @username.
func who(u wgbot.User) string {
	if u.Username != "" {
		return fmt.Sprintf("Telegram user %d (@%s)", u.TelegramID, u.Username)
	}
	return fmt.Sprintf("Telegram user %d", u.TelegramID)
}

// The JSON shapes below are the scripts' interface: snake_case names,
// times in RFC 3339, amounts in minor units. The domain types stay free of
// presentation tags.

type userView struct {
	ID         int64     `json:"id"`
	TelegramID int64     `json:"telegram_id"`
	Username   string    `json:"username"`
	FirstName  string    `json:"first_name"`
	Language   string    `json:"language"`
	Banned     bool      `json:"banned"`
	BlockedBot bool      `json:"blocked_bot"`
	CreatedAt  time.Time `json:"created_at"`
}

func viewUser(u wgbot.User) userView {
	return userView{ID: u.ID, TelegramID: u.TelegramID, Username: u.Username, FirstName: u.FirstName, Language: u.Language,
		Banned: u.Banned, BlockedBot: u.BlockedBot, CreatedAt: u.CreatedAt}
}

type subscriptionView struct {
	ID          int64     `json:"id"`
	Plan        string    `json:"plan"`
	Trial       bool      `json:"trial"`
	Status      string    `json:"status"`
	DeviceLimit int       `json:"device_limit"`
	StartsAt    time.Time `json:"starts_at"`
	ExpiresAt   time.Time `json:"expires_at"`
}

func (s subscriptionView) label() string {
	if s.Trial {
		return s.Status + " (trial)"
	}
	return s.Status
}

func viewSubscription(s wgbot.Subscription) subscriptionView {
	return subscriptionView{ID: s.ID, Plan: s.Plan, Trial: s.IsTrial, Status: s.Status, DeviceLimit: s.DeviceLimit,
		StartsAt: s.StartsAt, ExpiresAt: s.ExpiresAt}
}

func viewSubscriptionPtr(s *wgbot.Subscription) *subscriptionView {
	if s == nil {
		return nil
	}
	v := viewSubscription(*s)
	return &v
}

type userRow struct {
	userView
	Subscription *subscriptionView `json:"subscription"` // null: never subscribed
	Devices      int               `json:"devices"`      // not revoked
}

type peerView struct {
	ID         int64     `json:"id"`
	Name       string    `json:"name"`
	Server     string    `json:"server"`
	TelegramID int64     `json:"telegram_id"`
	Username   string    `json:"username"`
	IP         string    `json:"ip"`
	IP6        string    `json:"ip6,omitempty"`
	PublicKey  string    `json:"public_key"`
	Status     string    `json:"status"`
	CreatedAt  time.Time `json:"created_at"`
	// Usage is null when no traffic collection has seen the peer.
	Usage *usageView `json:"usage,omitempty"`
}

// usageView is a peer's traffic this month (UTC) as its server counts it.
type usageView struct {
	LastHandshake *time.Time `json:"last_handshake"` // null: never connected
	Received      int64      `json:"received_bytes"`
	Transmitted   int64      `json:"transmitted_bytes"`
}

func viewUsage(u *wgbot.Usage) *usageView {
	if u == nil {
		return nil
	}
	v := &usageView{Received: u.Received, Transmitted: u.Transmitted}
	if !u.LastSeen.IsZero() {
		t := u.LastSeen.UTC()
		v.LastHandshake = &t
	}
	return v
}

// handshakeText is a peer's last handshake for a table: "-" when nothing
// collected it, "never" when it never connected.
func (v *usageView) handshakeText() string {
	switch {
	case v == nil:
		return "-"
	case v.LastHandshake == nil:
		return "never"
	}
	return fmtTime(*v.LastHandshake)
}

// trafficText is a peer's traffic this month for a table.
func (v *usageView) trafficText() string {
	if v == nil {
		return "-"
	}
	return wgbot.HumanBytes(v.Received + v.Transmitted)
}

func viewPeer(p postgres.PeerListing) peerView {
	v := peerView{ID: p.ID, Name: p.Name, Server: p.Server, TelegramID: p.TelegramID, Username: p.Username,
		IP: p.IP.String(), PublicKey: p.PublicKey, Status: p.Status, CreatedAt: p.CreatedAt, Usage: viewUsage(p.Usage)}
	if p.IP6.IsValid() {
		v.IP6 = p.IP6.String()
	}
	return v
}

func viewPeerOf(p wgbot.Peer, server string, u wgbot.User) peerView {
	return viewPeer(postgres.PeerListing{Peer: p, Server: server, TelegramID: u.TelegramID, Username: u.Username})
}

type paymentView struct {
	ID                int64      `json:"id"`
	Provider          string     `json:"provider"`
	ProviderPaymentID string     `json:"provider_payment_id"`
	OrderID           int64      `json:"order_id,omitempty"`
	Amount            int64      `json:"amount"` // minor units
	Currency          string     `json:"currency"`
	Status            string     `json:"status"`
	Days              int        `json:"days"`
	Flagged           string     `json:"flagged,omitempty"`
	AppliedAt         time.Time  `json:"applied_at"`
	RefundedAt        *time.Time `json:"refunded_at,omitempty"`
}

func viewPayment(p postgres.PaymentRecord) paymentView {
	return paymentView{ID: p.ID, Provider: p.Provider, ProviderPaymentID: p.ProviderPaymentID, OrderID: p.OrderID,
		Amount: p.Amount, Currency: p.Currency, Status: p.Status, Days: p.Days, Flagged: p.Flagged,
		AppliedAt: p.AppliedAt, RefundedAt: p.RefundedAt}
}

type userDetail struct {
	User          userView           `json:"user"`
	Subscriptions []subscriptionView `json:"subscriptions"` // newest first
	Devices       []peerView         `json:"devices"`       // every status
	Payments      []paymentView      `json:"payments"`
}

// applyView is what the in-process reconcile did.
type applyView struct {
	Mode        string `json:"mode"`
	Revision    int64  `json:"revision"`
	FileChanged bool   `json:"file_changed"`
	Added       int    `json:"device_added"`
	Updated     int    `json:"device_updated"`
	Removed     int    `json:"device_removed"`
	Unchanged   int    `json:"device_unchanged"`
	Error       string `json:"error,omitempty"`
	file        string // the config file's name, for text
}

func viewApply(s config.Settings, res reconcile.Result, err error) applyView {
	v := applyView{Mode: s.WGApplyMode, file: filepath.Base(s.WGConfigPath), Revision: res.Revision, FileChanged: res.FileChanged,
		Added: res.Device.Added, Updated: res.Device.Updated, Removed: res.Device.Removed, Unchanged: res.Device.Unchanged}
	if err != nil {
		v.Error = err.Error()
	}
	return v
}

func (v applyView) summary() string {
	file := v.file + " unchanged"
	if v.FileChanged {
		file = v.file + " rewritten"
	}
	switch v.Mode {
	case reconcile.ModeNode:
		return "committed; the servers' nodes apply it within moments (`wgbot servers list` shows their lag)"
	case reconcile.ModeDevice:
	default:
		return file + " (WG_APPLY_MODE=" + v.Mode + ": the device is left to your tooling)"
	}
	return fmt.Sprintf("%s; device: added %d, updated %d, removed %d, unchanged %d", file, v.Added, v.Updated, v.Removed, v.Unchanged)
}

type grantView struct {
	User         userView         `json:"user"`
	Days         int              `json:"days"`
	Subscription subscriptionView `json:"subscription"`
	NewDevice    *peerView        `json:"new_device"` // null: the user's devices were kept
	Reconcile    *applyView       `json:"reconcile"`
}

type revokeView struct {
	User           userView   `json:"user"`
	RevokedDevices []peerView `json:"revoked_devices"`
	Reconcile      *applyView `json:"reconcile"`
}

type issueView struct {
	User         userView         `json:"user"`
	NewUser      bool             `json:"new_user"` // registered by this command
	Subscription subscriptionView `json:"subscription"`
	Device       peerView         `json:"device"`
	Config       string           `json:"config,omitempty"` // the client .conf; omitted with --out
	Out          string           `json:"out,omitempty"`
	Reconcile    *applyView       `json:"reconcile"`
}
