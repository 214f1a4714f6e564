package panel

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"slices"
	"strings"
	"time"

	"wgbot"
)

// Defaults of LinkConfig.
const (
	DefaultLinkTTL     = 5 * time.Minute
	DefaultIdleTimeout = 12 * time.Hour
)

// LinkStore keeps login links (postgres.Store).
type LinkStore interface {
	CreatePanelLink(ctx context.Context, tokenHash []byte, adminID int64, expires, now time.Time, idle time.Duration) error
}

// LinkConfig is what a login link needs.
type LinkConfig struct {
	BaseURL     string  // PANEL_URL: the links point here
	AdminIDs    []int64 // only these may have a link
	LinkTTL     time.Duration
	IdleTimeout time.Duration
	Now         func() time.Time
}

func (c *LinkConfig) setDefaults() {
	if c.LinkTTL <= 0 {
		c.LinkTTL = DefaultLinkTTL
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
}

// Links issues the one-time sign-in links the bot's /panel and `wgbot
// panel-link` hand an admin. It is apart from the panel's handler so the
// bot can be built with it before the panel, which uses the bot.
type Links struct {
	cfg   LinkConfig
	store LinkStore
}

// NewLinks checks the base URL and returns the issuer.
func NewLinks(store LinkStore, cfg LinkConfig) (*Links, error) {
	cfg.setDefaults()
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, wgbot.Errorf(wgbot.EInvalid, "panel_url", "PANEL_URL: want the panel's public http(s) URL, got %q", cfg.BaseURL)
	}
	return &Links{cfg: cfg, store: store}, nil
}

// IsAdmin reports whether id is one of ADMIN_IDS.
func (l *Links) IsAdmin(id int64) bool { return slices.Contains(l.cfg.AdminIDs, id) }

// PanelLink returns a new sign-in link for the admin: usable once, within
// LinkTTL. Only the token's hash is stored.
func (l *Links) PanelLink(ctx context.Context, adminID int64) (string, error) {
	if !l.IsAdmin(adminID) {
		return "", wgbot.Errorf(wgbot.EInvalid, "not_admin", "%d is not in ADMIN_IDS", adminID)
	}
	token := randomToken()
	now := l.cfg.Now()
	if err := l.store.CreatePanelLink(ctx, hashToken(token), adminID, now.Add(l.cfg.LinkTTL), now, l.cfg.IdleTimeout); err != nil {
		return "", err
	}
	return l.cfg.BaseURL + "/panel/login?token=" + token, nil
}

// randomToken is 32 random bytes, URL-safe.
func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashToken(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}
