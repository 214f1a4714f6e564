package yookassa

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Notification events wgbot understands.
const (
	EventPaymentSucceeded         = "payment.succeeded"
	EventPaymentWaitingForCapture = "payment.waiting_for_capture"
	EventPaymentCanceled          = "payment.canceled"
	EventRefundSucceeded          = "refund.succeeded"
)

// ErrUnsupportedEvent marks a well-formed notification about an event wgbot
// does not handle (payouts, deals, ...). The webhook should answer 200 to it:
// YooKassa keeps redelivering anything else for a day.
var ErrUnsupportedEvent = errors.New("unsupported yookassa notification event")

// Notification is a parsed webhook body. Its content is a claim, not a fact:
// anyone can POST this JSON, so act only on what GetPayment returns.
type Notification struct {
	Event   string
	Payment *Payment // set for payment.* events
	Refund  *Refund  // set for refund.succeeded
}

// ObjectID returns the id of the payment or refund the notification is about.
func (n Notification) ObjectID() string {
	switch {
	case n.Payment != nil:
		return n.Payment.ID
	case n.Refund != nil:
		return n.Refund.ID
	}
	return ""
}

// paymentEventStatus returns the payment status a payment event implies; a
// body that contradicts its own event is malformed.
func paymentEventStatus(event string) (string, bool) {
	switch event {
	case EventPaymentSucceeded:
		return StatusSucceeded, true
	case EventPaymentWaitingForCapture:
		return StatusWaitingForCapture, true
	case EventPaymentCanceled:
		return StatusCanceled, true
	}
	return "", false
}

// ParseNotification reads a notification body,
// {"type":"notification","event":"payment.succeeded","object":{...}}.
// It is strict about what wgbot relies on: one JSON object and nothing after
// it, type "notification", a known event, an object with an id, a valid
// amount and the status the event implies. Fields it does not know are
// ignored, because YooKassa adds fields over time. An unknown event yields an
// error matching ErrUnsupportedEvent; any other error means the body should
// be refused. The caller bounds the body's size before reading it.
func ParseNotification(body []byte) (Notification, error) {
	var wire struct {
		Type   string          `json:"type"`
		Event  string          `json:"event"`
		Object json.RawMessage `json:"object"`
	}
	if err := decodeOne(body, &wire); err != nil {
		return Notification{}, fmt.Errorf("yookassa notification: %w", err)
	}
	if wire.Type != "notification" {
		return Notification{}, fmt.Errorf("yookassa notification: type is %q, want \"notification\"", wire.Type)
	}
	if wire.Event == "" {
		return Notification{}, errors.New("yookassa notification: no event")
	}
	if len(wire.Object) == 0 || bytes.Equal(wire.Object, []byte("null")) {
		return Notification{}, fmt.Errorf("yookassa notification %s: no object", wire.Event)
	}

	if want, ok := paymentEventStatus(wire.Event); ok {
		var p Payment
		if err := json.Unmarshal(wire.Object, &p); err != nil {
			return Notification{}, fmt.Errorf("yookassa notification %s: payment object: %w", wire.Event, err)
		}
		if err := checkObject(p.ID, p.Status, want, p.Amount); err != nil {
			return Notification{}, fmt.Errorf("yookassa notification %s: payment: %w", wire.Event, err)
		}
		return Notification{Event: wire.Event, Payment: &p}, nil
	}
	if wire.Event == EventRefundSucceeded {
		var r Refund
		if err := json.Unmarshal(wire.Object, &r); err != nil {
			return Notification{}, fmt.Errorf("yookassa notification %s: refund object: %w", wire.Event, err)
		}
		if err := checkObject(r.ID, r.Status, StatusSucceeded, r.Amount); err != nil {
			return Notification{}, fmt.Errorf("yookassa notification %s: refund: %w", wire.Event, err)
		}
		if r.PaymentID == "" {
			return Notification{}, fmt.Errorf("yookassa notification %s: refund %s has no payment_id", wire.Event, r.ID)
		}
		return Notification{Event: wire.Event, Refund: &r}, nil
	}
	return Notification{}, fmt.Errorf("yookassa notification: event %q: %w", wire.Event, ErrUnsupportedEvent)
}

func checkObject(id, status, wantStatus string, amount Amount) error {
	if id == "" {
		return errors.New("no id")
	}
	if status != wantStatus {
		return fmt.Errorf("%s has status %q, the event implies %q", id, status, wantStatus)
	}
	if err := validateAmount(amount); err != nil {
		return fmt.Errorf("%s: %w", id, err)
	}
	return nil
}

// decodeOne decodes exactly one JSON value from body; trailing bytes other
// than white space are an error, so two glued objects cannot pass as one.
func decodeOne(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("malformed JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("malformed JSON: data after the top-level object")
	}
	return nil
}
