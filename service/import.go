package service

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"wgbot"
	"wgbot/importer"
	"wgbot/postgres"
)

// NoExpiry is the expiry an imported client gets under the operator's
// no-expiry choice: far enough never to come, and an ordinary date for
// every query and rule.
var NoExpiry = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

// ImportOptions are the operator's choices for `wgbot import`.
type ImportOptions struct {
	ServerID int64 // the server the clients are on
	Apply    bool  // false: a dry run, nothing written
	Days     int   // expiry of clients the source gave none: now + Days
	NoExpiry bool  // or: such clients never expire
}

// ImportResult is what an import did, or would do.
type ImportResult struct {
	postgres.ImportReport
	Skipped []importer.Skipped
	// Claims holds the claim token of each created device (in
	// Created's order), known only here: the database keeps its hash.
	Claims []string
}

// ClaimPrefix starts a claim link's /start payload: t.me/<bot>?start=claim_<token>.
const ClaimPrefix = "claim_"

// Import takes the clients of an old server over (see postgres.Store.Import):
// their keys are sealed like every other peer's, each new one gets a claim
// token, and an applied import wakes the reconciler, which finds the
// device already holding them.
func (s *Service) Import(ctx context.Context, l importer.List, o ImportOptions) (ImportResult, error) {
	if o.Days < 0 || o.Days > wgbot.MaxGrantDays {
		return ImportResult{}, wgbot.Errorf(wgbot.EInvalid, "bad_days", "--days: want 1 to %d, got %d", wgbot.MaxGrantDays, o.Days)
	}
	if o.Days > 0 && o.NoExpiry {
		return ImportResult{}, wgbot.Errorf(wgbot.EInvalid, "bad_days", "--days and --no-expiry exclude each other")
	}
	now := s.clock()
	res := ImportResult{Skipped: l.Skipped}
	peers := make([]postgres.ImportPeer, 0, len(l.Clients))
	tokens := make(map[string]string, len(l.Clients)) // public key → token
	for _, c := range l.Clients {
		p, token, err := s.importPeer(c, o, now)
		if err != nil {
			return res, fmt.Errorf("%s %q: %w", c.Ref, c.Name, err)
		}
		tokens[p.Secrets.PublicKey] = token
		peers = append(peers, p)
	}
	rep, err := s.store.Import(ctx, o.ServerID, l.Source, peers, o.Apply, now)
	res.ImportReport = rep
	for _, p := range rep.Created {
		res.Claims = append(res.Claims, tokens[p.Secrets.PublicKey])
	}
	if err != nil || !o.Apply || len(rep.Created) == 0 {
		return res, err
	}
	// Committed: the reconciler is woken and converges on its own (the
	// operator's command also reconciles in-process); no one waits here.
	s.provisionLater(ctx, rep.Change)
	return res, nil
}

// importPeer seals the client's keys and makes its claim token.
func (s *Service) importPeer(c importer.Client, o ImportOptions, now time.Time) (postgres.ImportPeer, string, error) {
	p := postgres.ImportPeer{Ref: c.Ref, Name: c.Name, Note: c.Note, IP: c.IPv4, IP6: c.IPv6, Keepalive: c.Keepalive, Enabled: c.Enabled}
	if p.Name == "" {
		p.Name = "imported-" + c.IPv4.String()
	}
	switch {
	case c.ExpiresAt != nil:
		p.ExpiresAt = *c.ExpiresAt
	case o.NoExpiry:
		p.ExpiresAt = NoExpiry
	case o.Days > 0:
		p.ExpiresAt = now.AddDate(0, 0, o.Days)
	}
	p.Secrets = wgbot.PeerSecrets{PublicKey: c.PublicKey, KeyID: s.keys.CurrentID(), PrivateKeySealed: []byte{}, PresharedSealed: []byte{}}
	for _, k := range []struct {
		text string
		out  *[]byte
	}{{c.PrivateKey, &p.Secrets.PrivateKeySealed}, {c.PresharedKey, &p.Secrets.PresharedSealed}} {
		if k.text == "" {
			continue
		}
		key, err := wgtypes.ParseKey(k.text)
		if err != nil {
			return p, "", err
		}
		sealed, keyID, err := s.keys.Seal(key[:], []byte(c.PublicKey))
		if err != nil {
			return p, "", err
		}
		*k.out, p.Secrets.KeyID = sealed, keyID
	}
	token, hash, err := newClaimToken()
	p.ClaimHash = hash
	return p, token, err
}

// newClaimToken returns a random token for a claim link (128 bits, in the
// characters a /start payload allows) and the hash the database keeps.
func newClaimToken() (string, []byte, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", nil, err
	}
	token := base64.RawURLEncoding.EncodeToString(b[:])
	return token, claimHash(token), nil
}

func claimHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// ClaimResult is the device a claim gave its user.
type ClaimResult struct {
	Peer         wgbot.Peer
	Subscription wgbot.Subscription
	// Delivery is the device's config, when its private key is known;
	// nil when only its client ever had the key (its config keeps working).
	Delivery *Delivery
}

// Claim gives the user who opened a claim link the device and its
// subscription: wgbot.ErrClaimUnknown for a token no import made,
// wgbot.ErrClaimUsed when someone opened it first.
func (s *Service) Claim(ctx context.Context, u wgbot.User, token string) (ClaimResult, error) {
	if u.Banned {
		return ClaimResult{}, wgbot.ErrBanned // like every other way to access
	}
	token = strings.TrimPrefix(token, ClaimPrefix)
	if token == "" || len(token) > 64 {
		return ClaimResult{}, wgbot.ErrClaimUnknown
	}
	sp, sub, err := s.store.Claim(ctx, u.ID, claimHash(token), s.clock())
	if err != nil {
		return ClaimResult{}, err
	}
	res := ClaimResult{Peer: sp.Peer, Subscription: sub}
	priv, psk, err := s.keys.OpenPeer(sp.Secrets)
	if errors.Is(err, wgbot.ErrNoClientKey) {
		return res, nil
	}
	if err != nil {
		return res, err
	}
	d, err := s.delivery(ctx, sp.Peer, sub, priv, psk)
	if err != nil {
		return res, err
	}
	res.Delivery = &d
	return res, nil
}
