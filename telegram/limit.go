package telegram

import (
	"strconv"
	"sync"
	"time"

	"github.com/go-telegram/bot/models"
)

// userGate stands between receiving an update and handling it, so one user
// cannot slow the others (I11). Each user has a token bucket: a burst of
// updates, then a few a second. An update beyond it is dropped before it
// costs a handler, a query or a message; the user is told once per window
// (a message) or on the button (a callback query, so its spinner stops).
// Admitted updates wait in their user's own line and are handled one at a
// time, in order; handlers take users in turn, so a user with a long line
// holds at most one handler and nobody waits behind them.
// Handlers rely on it: no action of one user (a Trial, a Pay press) runs
// twice at once in a process; the service's rules cover other processes.
//
// Button answers for dropped or repeated presses skip the lines: they
// need no order, only speed, and handlers send them first. So do
// pre-checkout queries: Telegram cancels a payment whose query is not
// answered within 10 seconds, and the user's line may hold a Trial
// waiting for WireGuard; the query only reads an order the invoice's
// sender already committed.
//
// Memory is bounded by the users seen within the last window or two: a
// user with nothing waiting and nothing running is forgotten once idle
// for a window, a user's line holds at most maxQueued updates, and a user
// has at most maxAnswers answers waiting. A dropped update that needs no
// answer stores nothing.
type userGate struct {
	rate       float64       // tokens a user earns per second
	burst      float64       // the most tokens a user holds
	window     time.Duration // one "slow down" notice per user per window; idle users are forgotten after it
	maxQueued  int           // updates of one user waiting for a handler
	maxAnswers int           // button answers of one user waiting to be sent
	maxWorkers int           // handlers running at once

	mu      sync.Mutex
	users   map[int64]*userLine
	answers []task  // button answers and pre-checkout queries, first come first served
	ready   []int64 // users with a task waiting and none running, oldest turn first
	workers int     // handlers running (each takes tasks until ready is empty)
	swept   time.Time
}

// userLine is one user's state at the gate.
type userLine struct {
	tokens  float64
	at      time.Time // when tokens was last brought up to date
	seen    time.Time // last update offered
	noticed time.Time // last "slow down" notice
	tasks   []task
	updates int  // tasks in line holding an update
	answers int  // button answers of this user waiting in the gate's answers
	running bool // the user is in ready or a handler has their task
}

type taskKind int

const (
	taskUpdate      taskKind = iota // handle upd
	taskNotice                      // tell chatID in lang to slow down
	taskAnswer                      // answer the button press queryID with text
	taskPreCheckout                 // handle upd, a pre-checkout query, outside the user's line
)

// task is one piece of work at the gate: in its user's line, or an answer.
type task struct {
	kind    taskKind
	user    int64
	upd     *models.Update
	chatID  int64
	lang    string
	queryID string
	text    msg
}

func newUserGate(rate float64, burst, maxWorkers int) *userGate {
	refill := time.Duration(float64(burst) / rate * float64(time.Second))
	return &userGate{
		rate: rate, burst: float64(burst), window: max(time.Minute, 2*refill),
		maxQueued: burst, maxAnswers: 4 * burst, maxWorkers: maxWorkers,
		users: map[int64]*userLine{},
	}
}

// offer files upd in its user's line, or drops it. queued reports whether
// a task was added (at most one per offer: the update, or the answer or
// notice that replaces it); start, whether the caller must start a
// handler goroutine for it (the gate counts it as running already).
func (g *userGate) offer(upd *models.Update, now time.Time) (queued, start bool) {
	id, limited := updateUser(upd)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.sweepLocked(now)
	l := g.users[id]
	if l == nil {
		l = &userLine{tokens: g.burst, at: now}
		g.users[id] = l
	}
	l.seen = now
	t, ok := g.admitLocked(l, upd, limited, now)
	if !ok {
		return false, false
	}
	t.user = id
	switch {
	case t.kind == taskAnswer:
		l.answers++
		g.answers = append(g.answers, t)
	case t.kind == taskPreCheckout:
		g.answers = append(g.answers, t)
	case l.running:
		l.tasks = append(l.tasks, t)
		l.updates += boolInt(t.kind == taskUpdate)
		return true, false // the user's handler takes it in turn
	default:
		l.tasks = append(l.tasks, t)
		l.updates += boolInt(t.kind == taskUpdate)
		l.running = true
		g.ready = append(g.ready, id)
	}
	if g.workers < g.maxWorkers {
		g.workers++
		return true, true
	}
	return true, false // a running handler takes the user in turn
}

// admitLocked decides what upd becomes: itself, an answer or notice in its
// place, or nothing (ok false).
func (g *userGate) admitLocked(l *userLine, upd *models.Update, limited bool, now time.Time) (task, bool) {
	if upd.PreCheckoutQuery != nil {
		return task{kind: taskPreCheckout, upd: upd}, true
	}
	if !limited {
		// Payments and block changes are never dropped: money or state
		// depends on them, and Telegram sends them, not the user's thumb.
		return task{kind: taskUpdate, upd: upd}, true
	}
	l.tokens = min(g.burst, l.tokens+now.Sub(l.at).Seconds()*g.rate)
	l.at = now
	q := upd.CallbackQuery
	if l.tokens < 1 || l.updates >= g.maxQueued {
		if q != nil {
			return g.answerLocked(l, q, mSlowDownButton)
		}
		if m := upd.Message; m != nil && m.Chat.Type == models.ChatTypePrivate && now.Sub(l.noticed) >= g.window {
			l.noticed = now
			return task{kind: taskNotice, chatID: m.Chat.ID, lang: normalizeLang(m.From.LanguageCode)}, true
		}
		return task{}, false
	}
	l.tokens--
	if q != nil {
		// The same button pressed again while a press of it waits: one
		// action, and the repeat is told so on the button. A press of the
		// button whose handler runs now is not coalesced: that handler may
		// have answered already (a user presses again after reading the
		// answer), so the press waits its turn and is handled after it.
		if l.queuedPress(pressKey(q)) {
			return g.answerLocked(l, q, mBusy)
		}
	}
	return task{kind: taskUpdate, upd: upd}, true
}

func (g *userGate) answerLocked(l *userLine, q *models.CallbackQuery, text msg) (task, bool) {
	if l.answers >= g.maxAnswers {
		// The client stops the spinner by itself after a while.
		return task{}, false
	}
	return task{kind: taskAnswer, queryID: q.ID, lang: normalizeLang(q.From.LanguageCode), text: text}, true
}

func (l *userLine) queuedPress(key string) bool {
	for _, t := range l.tasks {
		if t.kind == taskUpdate && t.upd.CallbackQuery != nil && pressKey(t.upd.CallbackQuery) == key {
			return true
		}
	}
	return false
}

// pressKey identifies a button: its message and its data.
func pressKey(q *models.CallbackQuery) string {
	id := 0
	if m := q.Message.Message; m != nil {
		id = m.ID
	}
	return strconv.Itoa(id) + ":" + q.Data
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// next hands a handler the next task: a button answer or pre-checkout
// query if one waits, else
// the next user's next task, taking users in turn. ok is false when no
// task waits; the handler must then exit, and the gate no longer counts
// it. After the task the handler calls done(t).
func (g *userGate) next() (t task, ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.answers) > 0 {
		t = g.answers[0]
		g.answers[0] = task{}
		g.answers = g.answers[1:]
		if l := g.users[t.user]; l != nil && t.kind == taskAnswer {
			l.answers--
		}
		return t, true
	}
	if len(g.ready) == 0 {
		g.workers--
		return task{}, false
	}
	userID := g.ready[0]
	g.ready[0] = 0
	g.ready = g.ready[1:]
	l := g.users[userID]
	t = l.tasks[0]
	l.tasks[0] = task{}
	l.tasks = l.tasks[1:]
	if t.kind == taskUpdate {
		l.updates--
	}
	return t, true
}

// done ends a task from next: for a user's task, the user takes a new
// turn at the back if more of theirs wait.
func (g *userGate) done(t task) {
	if t.kind == taskAnswer || t.kind == taskPreCheckout {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	l := g.users[t.user]
	if len(l.tasks) > 0 {
		g.ready = append(g.ready, t.user)
		return
	}
	l.running = false
}

// sweepLocked forgets users idle for a window, at most once per window,
// so the cost is spread over many offers. Such a user's bucket is full
// again and their notice window has passed: forgetting them changes
// nothing.
func (g *userGate) sweepLocked(now time.Time) {
	if now.Sub(g.swept) < g.window {
		return
	}
	g.swept = now
	for id, l := range g.users {
		if !l.running && now.Sub(l.seen) >= g.window {
			delete(g.users, id)
		}
	}
}

// size reports the users remembered and the tasks waiting, for tests.
func (g *userGate) size() (users, tasks int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, l := range g.users {
		tasks += len(l.tasks)
	}
	return len(g.users), tasks + len(g.answers)
}

// idle reports whether no task waits or runs.
func (g *userGate) idle() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.workers == 0
}

// updateUser returns the user an update comes from, and whether it counts
// against their limit.
func updateUser(upd *models.Update) (id int64, limited bool) {
	switch {
	case upd.Message != nil:
		if upd.Message.From == nil {
			return 0, false
		}
		return upd.Message.From.ID, upd.Message.SuccessfulPayment == nil
	case upd.CallbackQuery != nil:
		return upd.CallbackQuery.From.ID, true
	case upd.PreCheckoutQuery != nil:
		return upd.PreCheckoutQuery.From.ID, false
	case upd.MyChatMember != nil:
		return upd.MyChatMember.From.ID, false
	}
	return 0, false
}
