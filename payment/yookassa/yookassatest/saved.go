package yookassatest

import (
	"fmt"
	"net/http"

	"wgbot/payment/yookassa"
)

// Cancellation reasons a charge of a saved card gets, as YooKassa names them.
const (
	ReasonCardExpired       = "card_expired"
	ReasonInsufficientFunds = "insufficient_funds"
	ReasonPermissionRevoked = "permission_revoked"
)

// validateCharge checks the saved-method fields of a payment request. The
// caller holds s.mu.
func (s *Server) validateCharge(methodID string, save bool, c *yookassa.Confirmation) (apiError, bool) {
	bad := func(param, desc string) (apiError, bool) {
		return apiError{http.StatusBadRequest, "invalid_request", desc, param}, true
	}
	if methodID == "" {
		return apiError{}, false
	}
	if save {
		return bad("save_payment_method", "A saved payment method cannot be saved again")
	}
	if c != nil {
		return bad("confirmation", "A charge of a saved payment method needs no confirmation")
	}
	if m, ok := s.methods[methodID]; !ok || !m.method.Saved {
		return bad("payment_method_id", "Payment method doesn't exist or isn't saved")
	}
	return apiError{}, false
}

// chargeSavedLocked settles a charge of a saved method at once, as a card
// charged without 3-D Secure is: succeeded, or canceled with the reason the
// test set for that card. The caller holds s.mu.
func (s *Server) chargeSavedLocked(rec *record, methodID string) {
	m := s.methods[methodID]
	rec.payment.PaymentMethod = &yookassa.PaymentMethod{Type: m.method.Type, ID: m.method.ID, Saved: true, Title: m.method.Title}
	if m.hold {
		return // pending until Succeed or Cancel
	}
	if m.failure != "" {
		rec.payment.CancellationDetails = &yookassa.CancellationDetails{Party: "payment_network", Reason: m.failure}
		if m.failure == ReasonPermissionRevoked {
			rec.payment.CancellationDetails.Party = "yoo_money"
			m.method.Saved = false // YooKassa forgets a method the payer took back
		}
		setStatus(&rec.payment, yookassa.StatusCanceled)
		return
	}
	setStatus(&rec.payment, yookassa.StatusSucceeded)
}

// saveMethodLocked keeps the method of a succeeded payment whose payer
// agreed to save it. The caller holds s.mu.
func (s *Server) saveMethodLocked(rec *record) {
	pm := rec.payment.PaymentMethod
	if !rec.save || rec.payment.Status != yookassa.StatusSucceeded || pm == nil || pm.Saved {
		return
	}
	pm.Saved = true
	s.methods[pm.ID] = &savedMethod{method: *pm}
}

// FailMethod makes every later charge of a saved method fail with reason
// (ReasonCardExpired, ...); "" makes them succeed again.
func (s *Server) FailMethod(methodID, reason string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.methods[methodID]
	if !ok {
		return fmt.Errorf("yookassatest: no saved method %s", methodID)
	}
	m.failure = reason
	return nil
}

// HoldMethod leaves every later charge of a saved method pending (the
// bank has not decided) until Succeed or Cancel settles it; false settles
// them at once again.
func (s *Server) HoldMethod(methodID string, hold bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.methods[methodID]
	if !ok {
		return fmt.Errorf("yookassatest: no saved method %s", methodID)
	}
	m.hold = hold
	return nil
}

// Receipt returns the receipt sent with a payment, if any.
func (s *Server) Receipt(paymentID string) (yookassa.Receipt, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.payments[paymentID]
	if !ok || rec.receipt == nil {
		return yookassa.Receipt{}, false
	}
	return *rec.receipt, true
}
