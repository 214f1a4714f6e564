// Package config reads wgbot's settings once from the environment (and an
// optional .env file) into a typed struct. Every problem is reported at once,
// so an operator fixes a broken deployment in one round trip.
package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/joho/godotenv"
)

// Settings is every knob wgbot has. Fields are filled by Load and never
// changed afterwards; they are passed down explicitly.
type Settings struct {
	DatabaseURL      string
	DBConnectTimeout time.Duration
	DBWait           bool // serve waits for the database instead of failing
	DBPoolMin        int32
	DBPoolMax        int32
	DBIPAllocLockID  int32
	MigrateOnStart   bool

	WGInterface         string
	WGConfigPath        string
	WGConfigLockPath    string
	WGLockTimeout       time.Duration
	WGSubnet            netip.Prefix
	WGSubnet6           netip.Prefix // optional IPv6 prefix for dual stack
	WGEndpoint          string       // host:port clients dial
	WGDNS               []string
	WGMTU               int
	WGServerPublicKey   string // empty: read from the interface or wg0.conf
	WGClientAllowedIPs  []netip.Prefix
	WGKeepalive         int
	WGApplyMode         string
	WGResyncInterval    time.Duration
	WGAddressQuarantine time.Duration
	WGReconcileWait     time.Duration

	NodeServer    string        // the server row `wgbot node` runs (and serve waits for in node mode); empty: WG_INTERFACE
	NodeHeartbeat time.Duration // how often a node reports
	NodeDownAfter time.Duration // a node silent this long is down: its server gets no new peers
	// NodeKeyFile holds a node's own private key (created 0600 on first
	// start); serve seals its peers' preshared keys to the public half.
	NodeKeyFile string

	UsageInterval time.Duration // how often the device's traffic counters are collected; 0: never

	// OutageCreditAfter: a server's node gone this long (a restart gap)
	// gives every subscription with a device there the downtime back; 0: off.
	OutageCreditAfter time.Duration

	MasterKey     []byte // 32 bytes; empty means MasterKeyFile
	MasterKeyFile string
	MasterKeysOld [][]byte // earlier keys, still accepted to open values while rotating

	BotToken        string
	TelegramAPIURL  string
	TelegramWebhook string // public URL; empty means long polling
	TelegramSecret  string
	AdminIDs        []int64
	SupportContact  string
	UserBurst       int // updates one Telegram user may send at once before the limit
	UserRate        int // updates a second one Telegram user may send after the burst
	TrialDays       int
	PlansFile       string
	ReminderDays    []int         // remind this many days before expiry
	RenewalGrace    time.Duration // a renewal this soon after expiry restores the same peers
	Retention       time.Duration // expired peers are revoked this long after expiry

	BotUsername          string // for referral links; empty: asked of Telegram
	ReferralBonusDays    int    // days the referrer gets for a friend's first payment; 0: none
	ReferralBonusInvited int    // days the friend gets with it; defaults to ReferralBonusDays

	YooKassaShopID      string
	YooKassaSecretKey   string
	YooKassaAPIURL      string
	YooKassaReturnURL   string
	YooKassaAllowedIPs  []string
	YooKassaProxyHeader string
	// 54-FZ receipts: YOOKASSA_RECEIPTS=on sends one with every payment.
	YooKassaReceipts      bool
	YooKassaReceiptItem   string
	YooKassaVATCode       int
	YooKassaTaxSystemCode int
	// YOOKASSA_AUTORENEW=on charges saved cards a day before expiry.
	YooKassaAutorenew bool

	CryptoPayToken  string
	CryptoPayAPIURL string
	CryptoPayFiat   string

	HTTPAddr     string // the published listener: webhooks, /healthz, a terse /readyz
	MetricsAddr  string // the operator's listener: /metrics, detailed /readyz; HTTPAddr (one listener) unless set
	HTTPMaxConns int    // connections open at once, per listener
	// PanelURL is the web panel's public base URL put into sign-in links
	// (empty: no panel); PanelAddr its listener, HTTPAddr unless set.
	PanelURL  string
	PanelAddr string
	LogFormat string
	LogLevel  string
}

// Getenv looks up one variable; os.Getenv has this shape, tests pass a map.
type Getenv func(string) string

// Load reads every setting. envFile may be empty: then ".env" in the working
// directory is used if it exists. Variables from the real environment win
// over the file, so a systemd Environment= line overrides a shipped file.
func Load(getenv Getenv, envFile string) (Settings, error) {
	lookup, err := withEnvFile(getenv, envFile)
	if err != nil {
		return Settings{}, err
	}
	r := reader{get: lookup}
	s := Settings{
		DatabaseURL:      r.str("DATABASE_URL", ""),
		DBConnectTimeout: r.duration("DB_CONNECT_TIMEOUT", 5*time.Second),
		DBWait:           r.boolean("DB_WAIT", false),
		DBPoolMin:        int32(r.intRange("DB_POOL_MIN", 2, 0, 1000)),
		DBPoolMax:        int32(r.intRange("DB_POOL_MAX", 10, 1, 1000)),
		DBIPAllocLockID:  int32(r.intRange("DB_IP_ALLOC_LOCK_ID", 720301, -1<<31, 1<<31-1)),
		MigrateOnStart:   r.boolean("DB_MIGRATE_ON_START", true),

		WGInterface:         r.str("WG_INTERFACE", "wg0"),
		WGConfigPath:        r.str("WG_CONFIG_PATH", ""),
		WGConfigLockPath:    r.str("WG_CONFIG_LOCK_PATH", ""),
		WGLockTimeout:       r.duration("WG_LOCK_TIMEOUT", 10*time.Second),
		WGSubnet:            r.prefix("WG_SUBNET", "10.8.0.0/24", false),
		WGSubnet6:           r.prefix("WG_SUBNET6", "", true),
		WGEndpoint:          r.str("WG_ENDPOINT", ""),
		WGDNS:               r.list("WG_DNS", "1.1.1.1, 1.0.0.1"),
		WGMTU:               r.intRange("WG_MTU", 1420, 0, 9000),
		WGServerPublicKey:   r.str("WG_SERVER_PUBLIC_KEY", ""),
		WGClientAllowedIPs:  r.prefixes("WG_CLIENT_ALLOWED_IPS", "0.0.0.0/0, ::/0"),
		WGKeepalive:         r.intRange("WG_PERSISTENT_KEEPALIVE", 25, 0, 65535),
		WGApplyMode:         r.oneOf("WG_APPLY_MODE", "device", "device", "file", "none", "node"), // reconcile.ModeDevice, ModeFile, ModeNone, ModeNode
		WGResyncInterval:    r.duration("WG_RESYNC_INTERVAL", 30*time.Second),
		WGAddressQuarantine: r.duration("WG_ADDRESS_QUARANTINE", 24*time.Hour),
		WGReconcileWait:     r.duration("WG_RECONCILE_WAIT", 5*time.Second),

		NodeServer:    r.str("NODE_SERVER", ""),
		NodeHeartbeat: r.duration("NODE_HEARTBEAT", 5*time.Second),
		NodeDownAfter: r.duration("NODE_DOWN_AFTER", 30*time.Second),
		NodeKeyFile:   r.str("NODE_KEY_FILE", "/var/lib/wgbot/node.key"),

		UsageInterval: r.duration("USAGE_INTERVAL", time.Minute),

		OutageCreditAfter: r.durationOrOff("OUTAGE_CREDIT_AFTER", 30*time.Minute),

		MasterKey:     r.key32("MASTER_KEY"),
		MasterKeyFile: r.str("MASTER_KEY_FILE", "/var/lib/wgbot/master.key"),
		MasterKeysOld: r.keys32("MASTER_KEY_OLD"),

		BotToken:        r.str("BOT_TOKEN", ""),
		TelegramAPIURL:  r.url("TELEGRAM_API_URL", "https://api.telegram.org"),
		TelegramWebhook: r.str("TELEGRAM_WEBHOOK_URL", ""),
		TelegramSecret:  r.str("TELEGRAM_WEBHOOK_SECRET", ""),
		AdminIDs:        r.int64s("ADMIN_IDS"),
		SupportContact:  r.str("SUPPORT_CONTACT", ""),
		UserBurst:       r.intRange("USER_BURST", 10, 1, 1000),
		UserRate:        r.intRange("USER_RATE", 2, 1, 100),
		TrialDays:       r.intRange("TRIAL_DAYS", 3, 0, 3650),
		PlansFile:       r.str("PLANS_FILE", ""),
		ReminderDays:    r.ints("REMINDER_DAYS", "3, 1"),
		RenewalGrace:    r.duration("RENEWAL_GRACE", 30*24*time.Hour),
		Retention:       r.duration("EXPIRED_RETENTION", 30*24*time.Hour),

		BotUsername:       strings.TrimPrefix(r.str("BOT_USERNAME", ""), "@"),
		ReferralBonusDays: r.intRange("REFERRAL_BONUS_DAYS", 0, 0, 365),

		YooKassaShopID:      r.str("YOOKASSA_SHOP_ID", ""),
		YooKassaSecretKey:   r.str("YOOKASSA_SECRET_KEY", ""),
		YooKassaAPIURL:      r.url("YOOKASSA_API_URL", "https://api.yookassa.ru"),
		YooKassaReturnURL:   r.str("YOOKASSA_RETURN_URL", ""),
		YooKassaAllowedIPs:  r.list("YOOKASSA_ALLOWED_IPS", ""),
		YooKassaProxyHeader: r.str("YOOKASSA_TRUST_PROXY_HEADER", ""),

		YooKassaReceipts:      r.onOff("YOOKASSA_RECEIPTS", false),
		YooKassaReceiptItem:   r.str("YOOKASSA_RECEIPT_ITEM", ""),
		YooKassaVATCode:       r.intRange("YOOKASSA_VAT_CODE", 1, 1, 12),
		YooKassaTaxSystemCode: r.intRange("YOOKASSA_TAX_SYSTEM_CODE", 0, 0, 6),
		YooKassaAutorenew:     r.onOff("YOOKASSA_AUTORENEW", false),

		CryptoPayToken:  r.str("CRYPTOPAY_TOKEN", ""),
		CryptoPayAPIURL: r.url("CRYPTOPAY_API_URL", "https://pay.crypt.bot/api"),
		CryptoPayFiat:   r.str("CRYPTOPAY_FIAT", "USD"),

		HTTPAddr:     r.hostPort("HTTP_ADDR", "127.0.0.1:8080"),
		MetricsAddr:  r.hostPort("METRICS_ADDR", ""), // empty: HTTPAddr, below
		HTTPMaxConns: r.intRange("HTTP_MAX_CONNECTIONS", 512, 1, 1<<20),
		PanelURL:     r.optionalURL("PANEL_URL"),
		PanelAddr:    r.hostPort("PANEL_ADDR", ""), // empty: HTTPAddr, below
		LogFormat:    r.oneOf("LOG_FORMAT", "text", "text", "json"),
		LogLevel:     r.oneOf("LOG_LEVEL", "info", "debug", "info", "warn", "error"),
	}
	if s.WGConfigPath == "" {
		s.WGConfigPath = "/etc/wireguard/" + s.WGInterface + ".conf"
	}
	if s.MetricsAddr == "" {
		// One listener unless the operator separates them: a port of its
		// own by default would be taken by every serve on the host (and
		// 9090 by Prometheus itself).
		s.MetricsAddr = s.HTTPAddr
	}
	if s.PanelAddr == "" {
		s.PanelAddr = s.HTTPAddr
	}
	if s.WGConfigLockPath == "" {
		// Next to the config, not in world-writable /tmp: see README.
		s.WGConfigLockPath = s.WGConfigPath + ".lock"
	}
	if len(r.problems) == 0 && s.DBPoolMin > s.DBPoolMax {
		r.fail("DB_POOL_MIN", "must not exceed DB_POOL_MAX (%d > %d)", s.DBPoolMin, s.DBPoolMax)
	}
	if s.DatabaseURL != "" {
		if _, err := url.Parse(s.DatabaseURL); err != nil || !strings.HasPrefix(s.DatabaseURL, "postgres") {
			r.fail("DATABASE_URL", "want a URL like postgres://user:password@host:5432/dbname")
		}
	}
	if s.WGSubnet.IsValid() && !s.WGSubnet.Addr().Is4() {
		r.fail("WG_SUBNET", "want an IPv4 prefix such as 10.8.0.0/24 (use WG_SUBNET6 for IPv6)")
	} else if s.WGSubnet.IsValid() && s.WGSubnet.Bits() > 30 {
		r.fail("WG_SUBNET", "prefix /%d leaves no room for clients; use /30 or shorter", s.WGSubnet.Bits())
	}
	if s.WGSubnet6.IsValid() && (s.WGSubnet6.Addr().Is4() || s.WGSubnet6.Bits() > 120) {
		r.fail("WG_SUBNET6", "want an IPv6 prefix of /120 or shorter, such as fd42:42:42::/64")
	} else if s.WGSubnet6.IsValid() && s.WGSubnet.IsValid() && 128-s.WGSubnet6.Bits() < 32-s.WGSubnet.Bits() {
		// A client's IPv6 address carries its IPv4 host number.
		r.fail("WG_SUBNET6", "/%d has fewer host bits than WG_SUBNET /%d; use /%d or shorter",
			s.WGSubnet6.Bits(), s.WGSubnet.Bits(), 96+s.WGSubnet.Bits())
	}
	if (s.YooKassaShopID == "") != (s.YooKassaSecretKey == "") {
		r.fail("YOOKASSA_SHOP_ID", "set both YOOKASSA_SHOP_ID and YOOKASSA_SECRET_KEY to accept YooKassa, or neither")
	}
	if s.YooKassaShopID != "" || s.YooKassaReturnURL != "" {
		// YooKassa refuses a redirect checkout without it: every payment would fail.
		if u, err := url.Parse(s.YooKassaReturnURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			r.fail("YOOKASSA_RETURN_URL", "YooKassa needs the http(s) URL the payer returns to, such as https://t.me/your_bot; got %q", s.YooKassaReturnURL)
		}
	}
	// Each side of a referral may differ; the friend's side follows the
	// referrer's unless set.
	s.ReferralBonusInvited = r.intRange("REFERRAL_BONUS_DAYS_INVITED", s.ReferralBonusDays, 0, 365)
	if s.BotUsername != "" && !botUsername.MatchString(s.BotUsername) {
		r.fail("BOT_USERNAME", "want the bot's username from @BotFather, 5-32 characters of A-Z, a-z, 0-9 and _ ending in bot; got %q", s.BotUsername)
	}
	if s.Retention < s.RenewalGrace {
		r.fail("EXPIRED_RETENTION", "must be at least RENEWAL_GRACE (%s): peers must outlive the window in which they can come back", s.RenewalGrace)
	}
	if s.WGEndpoint != "" {
		if _, port, err := net.SplitHostPort(s.WGEndpoint); err != nil || port == "" {
			r.fail("WG_ENDPOINT", "want host:port that clients dial, such as vpn.example.com:51820")
		}
	}
	return s, r.err()
}

// botUsername is what Telegram allows as a bot's username.
var botUsername = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{3,30}[Bb][Oo][Tt]$`)

// RequireDatabase reports the settings every database command needs.
func (s Settings) RequireDatabase() error {
	if s.DatabaseURL == "" {
		return &Error{Problems: []string{"DATABASE_URL: missing; want a URL like postgres://user:password@host:5432/dbname"}}
	}
	return nil
}

// RequireServe reports what `serve` needs on top of the database, all at once.
// ServerName is the server row this process runs or serves: NODE_SERVER,
// else WG_INTERFACE (the single-host default).
func (s Settings) ServerName() string {
	if s.NodeServer != "" {
		return s.NodeServer
	}
	return s.WGInterface
}

func (s Settings) RequireServe() error {
	var e Error
	if s.DatabaseURL == "" {
		e.Problems = append(e.Problems, "DATABASE_URL: missing; want a URL like postgres://user:password@host:5432/dbname")
	}
	if s.WGEndpoint == "" {
		e.Problems = append(e.Problems, "WG_ENDPOINT: missing; want host:port that clients dial, such as vpn.example.com:51820")
	}
	if s.BotToken == "" {
		e.Problems = append(e.Problems, "BOT_TOKEN: missing; get one from @BotFather (or run `wgbot sandbox` to try wgbot without one)")
	}
	if len(e.Problems) > 0 {
		return &e
	}
	return nil
}

// Warnings are settings that let wgbot run but that an operator must fix.
func (s Settings) Warnings() []string {
	var w []string
	if s.SupportContact == "" {
		// The bot always takes Telegram Stars.
		w = append(w, "SUPPORT_CONTACT is empty: the bot takes Telegram Stars, and Telegram requires a bot that takes payments to answer /paysupport with a way to reach you; set it to an @username or a URL")
	}
	return w
}

// Error lists every invalid or missing setting.
type Error struct{ Problems []string }

func (e *Error) Error() string {
	return "invalid settings:\n  " + strings.Join(e.Problems, "\n  ")
}

// Redacted returns the settings as name=value lines for `wgbot check`, with
// every secret replaced so the output can be pasted into a bug report.
func (s Settings) Redacted() []string {
	set := func(v string) string {
		if v == "" {
			return "(not set)"
		}
		return "(set, hidden)"
	}
	masterKey := "(from " + s.MasterKeyFile + ")"
	if len(s.MasterKey) > 0 {
		masterKey = "(set, hidden)"
	}
	lines := []string{
		"DATABASE_URL=" + RedactURL(s.DatabaseURL),
		fmt.Sprintf("DB_POOL_MIN=%d", s.DBPoolMin),
		fmt.Sprintf("DB_POOL_MAX=%d", s.DBPoolMax),
		fmt.Sprintf("DB_IP_ALLOC_LOCK_ID=%d", s.DBIPAllocLockID),
		"DB_CONNECT_TIMEOUT=" + s.DBConnectTimeout.String(),
		"WG_INTERFACE=" + s.WGInterface,
		"WG_CONFIG_PATH=" + s.WGConfigPath,
		"WG_CONFIG_LOCK_PATH=" + s.WGConfigLockPath,
		"WG_SUBNET=" + s.WGSubnet.String(),
		"WG_ENDPOINT=" + s.WGEndpoint,
		"WG_APPLY_MODE=" + s.WGApplyMode,
		"NODE_SERVER=" + s.ServerName(),
		"NODE_KEY_FILE=" + s.NodeKeyFile,
		"MASTER_KEY=" + masterKey,
		"BOT_TOKEN=" + set(s.BotToken),
		"TELEGRAM_API_URL=" + s.TelegramAPIURL,
		"TELEGRAM_WEBHOOK_SECRET=" + set(s.TelegramSecret),
		"YOOKASSA_SHOP_ID=" + s.YooKassaShopID,
		"YOOKASSA_SECRET_KEY=" + set(s.YooKassaSecretKey),
		fmt.Sprintf("YOOKASSA_RECEIPTS=%t", s.YooKassaReceipts),
		fmt.Sprintf("YOOKASSA_AUTORENEW=%t", s.YooKassaAutorenew),
		"CRYPTOPAY_TOKEN=" + set(s.CryptoPayToken),
		"HTTP_ADDR=" + s.HTTPAddr,
		"METRICS_ADDR=" + s.MetricsAddr,
		"PANEL_URL=" + s.PanelURL,
		"PANEL_ADDR=" + s.PanelAddr,
		fmt.Sprintf("HTTP_MAX_CONNECTIONS=%d", s.HTTPMaxConns),
	}
	return lines
}

// RedactURL hides the password of a connection URL.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable, hidden)"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

func withEnvFile(getenv Getenv, envFile string) (Getenv, error) {
	path := envFile
	if path == "" {
		if _, err := os.Stat(".env"); err != nil {
			return getenv, nil
		}
		path = ".env"
	}
	file, err := godotenv.Read(path)
	if err != nil {
		return nil, fmt.Errorf("read env file %s: %w", path, err)
	}
	return func(name string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return file[name]
	}, nil
}

// reader parses variables and collects every problem instead of stopping
// at the first.
type reader struct {
	get      Getenv
	problems []string
}

func (r *reader) fail(name, format string, args ...any) {
	r.problems = append(r.problems, name+": "+fmt.Sprintf(format, args...))
}

func (r *reader) err() error {
	if len(r.problems) == 0 {
		return nil
	}
	sort.Strings(r.problems)
	return &Error{Problems: r.problems}
}

func (r *reader) str(name, def string) string {
	if v := strings.TrimSpace(r.get(name)); v != "" {
		return v
	}
	return def
}

func (r *reader) intRange(name string, def, min, max int) int {
	n := parsed(r, name, def, strconv.Atoi, "an integer")
	if n < min || n > max {
		r.fail(name, "want an integer from %d to %d, got %d", min, max, n)
		return def
	}
	return n
}

func (r *reader) duration(name string, def time.Duration) time.Duration {
	return parsed(r, name, def, func(raw string) (time.Duration, error) {
		d, err := time.ParseDuration(raw)
		if err == nil && d < 0 {
			err = errors.New("negative")
		}
		return d, err
	}, "a duration such as 5s, 10m or 24h")
}

// durationOrOff is duration where "off" (or 0) turns the feature off.
func (r *reader) durationOrOff(name string, def time.Duration) time.Duration {
	if v := strings.ToLower(r.str(name, "")); v == "off" || v == "no" {
		return 0
	}
	return r.duration(name, def)
}

// onOff reads a switch written on/off (or true/false, 1/0).
func (r *reader) onOff(name string, def bool) bool {
	return parsed(r, name, def, func(v string) (bool, error) {
		switch strings.ToLower(v) {
		case "on", "yes":
			return true, nil
		case "off", "no":
			return false, nil
		}
		return strconv.ParseBool(v)
	}, "on or off")
}

func (r *reader) boolean(name string, def bool) bool {
	return parsed(r, name, def, strconv.ParseBool, "true or false")
}

// parsed is setting name read by parse, or def when it is unset. A value
// parse refuses is reported (want is what a good one looks like) and def
// is used.
func parsed[T any](r *reader, name string, def T, parse func(string) (T, error), want string) T {
	raw := r.str(name, "")
	if raw == "" {
		return def
	}
	v, err := parse(raw)
	if err != nil {
		r.fail(name, "want %s, got %q", want, raw)
		return def
	}
	return v
}

func (r *reader) oneOf(name, def string, allowed ...string) string {
	v := r.str(name, def)
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	r.fail(name, "want one of %s, got %q", strings.Join(allowed, ", "), v)
	return def
}

func (r *reader) prefix(name, def string, optional bool) netip.Prefix {
	raw := r.str(name, def)
	if raw == "" && optional {
		return netip.Prefix{}
	}
	p, err := netip.ParsePrefix(raw)
	if err != nil {
		r.fail(name, "want a network in CIDR form such as 10.8.0.0/24, got %q", raw)
		return netip.Prefix{}
	}
	if p.Masked() != p {
		r.fail(name, "%s has host bits set; did you mean %s?", p, p.Masked())
	}
	return p.Masked()
}

func (r *reader) prefixes(name, def string) []netip.Prefix {
	var out []netip.Prefix
	for _, raw := range r.list(name, def) {
		p, err := netip.ParsePrefix(raw)
		if err != nil {
			r.fail(name, "want a comma-separated list of networks such as 0.0.0.0/0, ::/0; %q is not one", raw)
			continue
		}
		out = append(out, p)
	}
	return out
}

func (r *reader) list(name, def string) []string {
	var out []string
	for _, item := range strings.Split(r.str(name, def), ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

func (r *reader) ints(name, def string) []int {
	var out []int
	for _, raw := range r.list(name, def) {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > 365 {
			r.fail(name, "want a comma-separated list of days from 1 to 365, %q is not one", raw)
			continue
		}
		out = append(out, n)
	}
	return out
}

func (r *reader) int64s(name string) []int64 {
	var out []int64
	for _, raw := range r.list(name, "") {
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			r.fail(name, "want a comma-separated list of Telegram user ids, %q is not one", raw)
			continue
		}
		out = append(out, n)
	}
	return out
}

func (r *reader) url(name, def string) string {
	raw := r.str(name, def)
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		r.fail(name, "want an http(s) URL, got %q", raw)
		return def
	}
	return strings.TrimRight(raw, "/")
}

// optionalURL reads an http(s) URL that may be unset ("").
func (r *reader) optionalURL(name string) string {
	if r.str(name, "") == "" {
		return ""
	}
	return r.url(name, "")
}

// hostPort reads host:port; with an empty def an unset value is "".
func (r *reader) hostPort(name, def string) string {
	raw := r.str(name, def)
	if raw == "" && def == "" {
		return ""
	}
	if _, _, err := net.SplitHostPort(raw); err != nil {
		r.fail(name, "want host:port such as 127.0.0.1:8080, got %q", raw)
		return def
	}
	return raw
}

func (r *reader) key32(name string) []byte {
	raw := r.str(name, "")
	if raw == "" {
		return nil
	}
	key, err := base64.StdEncoding.DecodeString(raw)
	if err != nil || len(key) != 32 {
		// Never echo the value: it is a secret.
		r.fail(name, "want 32 random bytes in base64 (openssl rand -base64 32)")
		return nil
	}
	return key
}

func (r *reader) keys32(name string) [][]byte {
	var out [][]byte
	for _, raw := range r.list(name, "") {
		key, err := base64.StdEncoding.DecodeString(raw)
		if err != nil || len(key) != 32 {
			r.fail(name, "want a comma-separated list of 32-byte keys in base64")
			return nil
		}
		out = append(out, key)
	}
	return out
}

// IsConfigError reports whether err lists invalid settings.
func IsConfigError(err error) bool {
	var e *Error
	return errors.As(err, &e)
}
