package panel

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"wgbot"
	"wgbot/postgres"
)

// Broadcasts from the panel go through the store's QueueBroadcastTo, as
// the bot's /broadcast: chunk jobs send them, and the report comes to the
// admin's Telegram chat when the last one is sent.

type audienceChoice struct {
	Audience wgbot.Audience
	Key      string // its text in the catalogue
	Size     int
}

type broadcastData struct {
	Audiences []audienceChoice
	Key       int64 // the form's one-time key
	Recent    []postgres.Broadcast
}

// recentBroadcasts is how many of the newest broadcasts the page shows
// with their progress.
const recentBroadcasts = 10

// The form's key is unique per form shown and goes where the bot puts its
// preview message's id: the store queues one broadcast per (admin chat,
// key), so a double click or a resent form queues it once. Keys start at
// 2^40, above any Telegram message id, so they never meet the bot's.
const minBroadcastKey = 1 << 40

func newBroadcastKey() int64 {
	var b [8]byte
	rand.Read(b[:])
	return minBroadcastKey + int64(binary.BigEndian.Uint64(b[:])%(1<<61))
}

var audienceKeys = map[wgbot.Audience]string{wgbot.AudienceAll: "audience_all", wgbot.AudienceActive: "audience_active",
	wgbot.AudienceExpired: "audience_expired", wgbot.AudienceNeverPaid: "audience_never_paid"}

func (p *Panel) broadcastPage(w http.ResponseWriter, r *http.Request, s *session) {
	p.showBroadcast(w, r, s, http.StatusOK, flashText(s.Lang, r.URL.Query()), "")
}

func (p *Panel) showBroadcast(w http.ResponseWriter, r *http.Request, s *session, status int, flash, errText string) {
	sizes, err := p.store.AudienceSizes(r.Context())
	if err != nil {
		p.fail(w, r, s.Lang, "audience sizes", err)
		return
	}
	recent, err := p.store.RecentBroadcasts(r.Context(), recentBroadcasts)
	if err != nil {
		p.fail(w, r, s.Lang, "broadcasts", err)
		return
	}
	data := broadcastData{Key: newBroadcastKey(), Recent: recent}
	for _, a := range wgbot.Audiences() {
		data.Audiences = append(data.Audiences, audienceChoice{Audience: a, Key: audienceKeys[a], Size: sizes[a]})
	}
	pg := s.page("broadcast", "broadcast")
	pg.Flash, pg.Error, pg.Data = flash, errText, data
	p.render(w, r, status, "broadcast", pg)
}

func (p *Panel) broadcast(w http.ResponseWriter, r *http.Request, s *session) {
	text := strings.TrimSpace(r.PostFormValue("text"))
	audience := wgbot.Audience(r.PostFormValue("audience"))
	key, err := strconv.ParseInt(r.PostFormValue("key"), 10, 64)
	if err != nil || key < minBroadcastKey {
		p.showBroadcast(w, r, s, http.StatusBadRequest, "", tr(s.Lang, "bad_form"))
		return
	}
	if text == "" || len([]rune(text)) > 4096 {
		p.showBroadcast(w, r, s, http.StatusBadRequest, "", tr(s.Lang, "bad_text"))
		return
	}
	n, err := p.store.QueueBroadcastTo(r.Context(), text, s.AdminID, int(key), s.Lang, audience)
	if errors.Is(err, wgbot.ErrBroadcastSent) {
		http.Redirect(w, r, "/panel/broadcast?"+url.Values{"done": {"broadcast_again"}}.Encode(), http.StatusSeeOther)
		return
	}
	if err != nil {
		p.showBroadcast(w, r, s, http.StatusConflict, "", p.actionError(r, s.Lang, "broadcast", err))
		return
	}
	p.audit(r, s, "broadcast", 0, nil, map[string]any{"audience": string(audience), "recipients": n, "text": text})
	p.log.InfoContext(r.Context(), "panel broadcast", "admin", s.AdminID, "audience", audience, "recipients", n)
	http.Redirect(w, r, "/panel/broadcast?"+url.Values{"done": {"broadcast"}, "n": {strconv.Itoa(n)}}.Encode(), http.StatusSeeOther)
}
