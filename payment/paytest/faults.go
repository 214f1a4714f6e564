// Package paytest holds what the payment providers' emulators share: the
// faults a remote API shows (errors, an unreachable server, lost answers),
// injected by tests.
package paytest

import "sync"

// Faults is embedded in an emulator; its methods become the emulator's.
// The zero value injects nothing; it is safe for concurrent use.
type Faults struct {
	mu          sync.Mutex
	failNext    int
	failStatus  int
	dropNext    int
	dropAnswers int
}

// FailNext makes the next n API requests fail with the given HTTP status
// (500, 503, 429, ...) without being processed.
func (f *Faults) FailNext(n, status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failNext, f.failStatus = n, status
}

// DropNext makes the next n API requests see the connection closed without
// an answer and without being processed: the provider unreachable. Go's
// HTTP transport silently retries a GET once when a reused keep-alive
// connection closes, so to make a GET fail, drop two requests.
func (f *Faults) DropNext(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dropNext = n
}

// DropNextAnswers makes the next n API requests be processed but lose their
// answer: the client cannot know whether its request took effect, which is
// what idempotence keys are for (and what a provider without them gets
// wrong).
func (f *Faults) DropNextAnswers(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dropAnswers = n
}

// Fault is what one request meets.
type Fault struct {
	Drop       bool // close the connection, process nothing
	FailStatus int  // answer this status, process nothing; 0: no failure
	DropAnswer bool // process, then close the connection unanswered
}

// Take consumes the next injected fault, if any.
func (f *Faults) Take() Fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.dropNext > 0:
		f.dropNext--
		return Fault{Drop: true}
	case f.failNext > 0:
		f.failNext--
		return Fault{FailStatus: f.failStatus}
	case f.dropAnswers > 0:
		f.dropAnswers--
		return Fault{DropAnswer: true}
	}
	return Fault{}
}
