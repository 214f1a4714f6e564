package yookassatest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"wgbot/payment/paytest"
	"wgbot/payment/yookassa"
)

// Limits YooKassa documents and the emulator enforces, so that a request the
// real API would refuse is refused here too.
const (
	maxIdempotenceKeyLen = 64
	maxDescriptionLen    = 128
	maxMetadataKeys      = 16
	maxMetadataKeyLen    = 32
	maxMetadataValueLen  = 512
	maxRequestBytes      = 1 << 20
)

// Request is one API call the emulator received, for tests that assert what
// the code under test asked (for example that a webhook fetched the payment).
type Request struct {
	Method         string
	Path           string
	IdempotenceKey string
}

// Server is a running YooKassa emulator on a loopback port. All methods are
// safe for concurrent use.
type Server struct {
	URL       string // use as yookassa.Client.BaseURL
	ShopID    string
	SecretKey string

	// Faults injects API failures: FailNext, DropNext, DropNextAnswers.
	paytest.Faults

	// RequireReceipts makes the emulator act as a shop with an online cash
	// register connected: a payment without a receipt is refused, as
	// YooKassa refuses it. Set it before the first request.
	RequireReceipts bool

	srv      *httptest.Server
	mux      *http.ServeMux
	notifier *http.Client
	checkout *template.Template

	mu           sync.Mutex
	payments     map[string]*record
	paymentOrder []string
	refunds      map[string]yookassa.Refund
	refundOrder  []string
	idempotent   map[string]storedAnswer
	requests     []Request
	notifyURL    string
	methods      map[string]*savedMethod
}

type record struct {
	payment   yookassa.Payment
	returnURL string
	receipt   *yookassa.Receipt
	save      bool // the payer agreed to keep the method; it is saved when the payment succeeds
}

// savedMethod is a card kept for charges without the payer; failure, when
// set, is the cancellation reason every charge of it gets; hold leaves its
// charges pending, as when the bank takes its time.
type savedMethod struct {
	method  yookassa.PaymentMethod
	failure string
	hold    bool
}

// storedAnswer is what a POST with an idempotence key answered, replayed to a
// repeat of the same request as YooKassa does.
type storedAnswer struct {
	request string // canonical JSON of the request body
	answer  []byte
}

// apiError is an error answer in YooKassa's format.
type apiError struct {
	status      int
	code        string
	description string
	parameter   string
}

// NewServer starts an emulator for the shop with these credentials. Close it
// when done.
func NewServer(shopID, secretKey string) *Server {
	s := &Server{
		ShopID:     shopID,
		SecretKey:  secretKey,
		mux:        http.NewServeMux(),
		notifier:   &http.Client{Timeout: 10 * time.Second},
		checkout:   template.Must(template.New("checkout").Parse(checkoutPage)),
		payments:   map[string]*record{},
		refunds:    map[string]yookassa.Refund{},
		idempotent: map[string]storedAnswer{},
		methods:    map[string]*savedMethod{},
	}
	s.mux.HandleFunc("POST /v3/payments", s.handleCreatePayment)
	s.mux.HandleFunc("GET /v3/payments/{id}", s.handleGetPayment)
	s.mux.HandleFunc("POST /v3/refunds", s.handleCreateRefund)
	s.mux.HandleFunc("GET /v3/refunds/{id}", s.handleGetRefund)
	s.mux.HandleFunc("/v3/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, apiError{http.StatusNotFound, "not_found", "Unknown API method " + r.Method + " " + r.URL.Path, ""})
	})
	s.mux.HandleFunc("GET /checkout/{id}", s.handleCheckoutPage)
	s.mux.HandleFunc("POST /checkout/{id}/pay", s.handleCheckoutAction)
	s.mux.HandleFunc("POST /checkout/{id}/cancel", s.handleCheckoutAction)
	s.srv = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	s.URL = s.srv.URL
	return s
}

// Close shuts the emulator down; later requests fail as if YooKassa were
// unreachable.
func (s *Server) Close() { s.srv.Close() }

// Client returns an API client configured for this emulator.
func (s *Server) Client() *yookassa.Client {
	return &yookassa.Client{BaseURL: s.URL, ShopID: s.ShopID, SecretKey: s.SecretKey, HTTP: s.srv.Client()}
}

// Requests returns the API calls received so far, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// SetNotificationURL makes the checkout page send the matching notification
// to url after it pays or cancels a payment, as YooKassa would. The test
// controls (Succeed, Cancel, ...) never notify by themselves: tests decide
// when a notification arrives, with Notify.
func (s *Server) SetNotificationURL(url string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.notifyURL = url
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, "/v3/") {
		s.mux.ServeHTTP(w, r)
		return
	}
	fault := s.takeFault(r)
	switch {
	case fault.Drop:
		// ErrAbortHandler makes net/http close the connection without
		// writing anything, which is what a dead upstream looks like.
		panic(http.ErrAbortHandler)
	case fault.FailStatus != 0:
		writeError(w, faultError(fault.FailStatus))
		return
	}
	if !s.authorized(r) {
		writeError(w, apiError{http.StatusUnauthorized, "invalid_credentials",
			"Authentication by given credentials failed", "Authorization"})
		return
	}
	if fault.DropAnswer {
		s.mux.ServeHTTP(httptest.NewRecorder(), r)
		panic(http.ErrAbortHandler)
	}
	s.mux.ServeHTTP(w, r)
}

// takeFault records the request and consumes one injected fault, if any.
func (s *Server) takeFault(r *http.Request) paytest.Fault {
	s.mu.Lock()
	s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, IdempotenceKey: r.Header.Get("Idempotence-Key")})
	s.mu.Unlock()
	return s.Take()
}

func faultError(status int) apiError {
	switch {
	case status == http.StatusTooManyRequests:
		return apiError{status, "too_many_requests", "Too many requests", ""}
	case status >= 500:
		return apiError{status, "internal_server_error", "Internal server error", ""}
	}
	return apiError{status, "invalid_request", "Injected failure", ""}
}

func (s *Server) authorized(r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	if !ok {
		return false
	}
	userOK := subtle.ConstantTimeCompare([]byte(user), []byte(s.ShopID)) == 1
	passOK := subtle.ConstantTimeCompare([]byte(pass), []byte(s.SecretKey)) == 1
	return userOK && passOK
}

// beginIdempotent reads a POST body and handles the Idempotence-Key rules:
// the key is required; a repeat with the same key and the same body gets the
// stored answer; the same key with a different body is refused. It returns
// done=true when it has already answered. The caller holds s.mu.
func (s *Server) beginIdempotent(w http.ResponseWriter, r *http.Request, body []byte) (slot, canonical string, done bool) {
	key := r.Header.Get("Idempotence-Key")
	if key == "" {
		writeError(w, apiError{http.StatusBadRequest, "invalid_request", "Idempotence key isn't specified", "Idempotence-Key"})
		return "", "", true
	}
	if len(key) > maxIdempotenceKeyLen {
		writeError(w, apiError{http.StatusBadRequest, "invalid_request", "Idempotence key is too long", "Idempotence-Key"})
		return "", "", true
	}
	canonical, err := canonicalJSON(body)
	if err != nil {
		writeError(w, apiError{http.StatusBadRequest, "invalid_request", "Request body is not valid JSON", ""})
		return "", "", true
	}
	slot = r.URL.Path + "\x00" + key
	if prev, ok := s.idempotent[slot]; ok {
		if prev.request != canonical {
			writeError(w, apiError{http.StatusBadRequest, "invalid_request",
				"Idempotence key duplicated with different request parameters", "Idempotence-Key"})
			return "", "", true
		}
		writeJSON(w, http.StatusOK, prev.answer)
		return "", "", true
	}
	return slot, canonical, false
}

func (s *Server) handleCreatePayment(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	slot, canonical, done := s.beginIdempotent(w, r, body)
	if done {
		return
	}
	var req struct {
		Amount       *yookassa.Amount       `json:"amount"`
		Capture      bool                   `json:"capture"`
		Confirmation *yookassa.Confirmation `json:"confirmation"`
		Description  string                 `json:"description"`
		Metadata     map[string]string      `json:"metadata"`
		Receipt      json.RawMessage        `json:"receipt"`
		Save         bool                   `json:"save_payment_method"`
		MethodID     string                 `json:"payment_method_id"`
	}
	if err := decodeStrict(body, &req); err != nil {
		writeError(w, apiError{http.StatusBadRequest, "invalid_request", err.Error(), ""})
		return
	}
	if e, bad := s.validateCharge(req.MethodID, req.Save, req.Confirmation); bad {
		writeError(w, e)
		return
	}
	if e, bad := validatePayment(req.Amount, req.Confirmation, req.Description, req.Metadata, req.MethodID != ""); bad {
		writeError(w, e)
		return
	}
	receipt, e, bad := s.checkReceipt(req.Receipt, *req.Amount)
	if bad {
		writeError(w, e)
		return
	}

	id := newID()
	now := now()
	p := yookassa.Payment{
		ID:          id,
		Status:      yookassa.StatusPending,
		Amount:      *req.Amount,
		Description: req.Description,
		CreatedAt:   now,
		Metadata:    req.Metadata,
		Test:        true,
	}
	rec := &record{payment: p, receipt: receipt, save: req.Save}
	if req.MethodID != "" {
		s.chargeSavedLocked(rec, req.MethodID)
	} else {
		rec.payment.Confirmation = &yookassa.Confirmation{Type: "redirect", ConfirmationURL: s.URL + "/checkout/" + id}
		rec.returnURL = req.Confirmation.ReturnURL
	}
	p = rec.payment
	s.payments[id] = rec
	s.paymentOrder = append(s.paymentOrder, id)
	answer := mustJSON(p)
	s.idempotent[slot] = storedAnswer{request: canonical, answer: answer}
	writeJSON(w, http.StatusOK, answer)
}

func validatePayment(amount *yookassa.Amount, c *yookassa.Confirmation, description string, metadata map[string]string, saved bool) (apiError, bool) {
	bad := func(param, desc string) (apiError, bool) {
		return apiError{http.StatusBadRequest, "invalid_request", desc, param}, true
	}
	if amount == nil {
		return bad("amount", "Amount is required")
	}
	if minor, err := yookassa.ParseMinor(amount.Value); err != nil || minor <= 0 {
		return bad("amount.value", "Amount value must be a positive decimal with at most 2 decimal places")
	}
	if len(amount.Currency) != 3 || strings.ToUpper(amount.Currency) != amount.Currency {
		return bad("amount.currency", "Currency must be an ISO 4217 code")
	}
	if saved {
		// A charge of a saved method has no payer to confirm it.
	} else if c == nil {
		return bad("confirmation", "Confirmation is required for this emulator (redirect only)")
	} else if c.Type != "redirect" {
		return bad("confirmation.type", "Only the redirect confirmation type is emulated")
	}
	if !saved && c.ReturnURL == "" {
		return bad("confirmation.return_url", "Return URL is required for a redirect confirmation")
	}
	if len([]rune(description)) > maxDescriptionLen {
		return bad("description", "Description is longer than 128 characters")
	}
	if len(metadata) > maxMetadataKeys {
		return bad("metadata", "Metadata has more than 16 keys")
	}
	for k, v := range metadata {
		if len(k) > maxMetadataKeyLen || len(v) > maxMetadataValueLen {
			return bad("metadata", "Metadata key or value is too long")
		}
	}
	return apiError{}, false
}

func (s *Server) handleGetPayment(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.payments[r.PathValue("id")]
	if !ok {
		writeError(w, apiError{http.StatusNotFound, "not_found", "Payment doesn't exist or access denied", "payment_id"})
		return
	}
	writeJSON(w, http.StatusOK, mustJSON(rec.payment))
}

func (s *Server) handleCreateRefund(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	slot, canonical, done := s.beginIdempotent(w, r, body)
	if done {
		return
	}
	var req struct {
		PaymentID   string           `json:"payment_id"`
		Amount      *yookassa.Amount `json:"amount"`
		Description string           `json:"description"`
	}
	if err := decodeStrict(body, &req); err != nil {
		writeError(w, apiError{http.StatusBadRequest, "invalid_request", err.Error(), ""})
		return
	}
	if req.Amount == nil {
		writeError(w, apiError{http.StatusBadRequest, "invalid_request", "Amount is required", "amount"})
		return
	}
	refund, e := s.refundLocked(req.PaymentID, *req.Amount, req.Description)
	if e != nil {
		writeError(w, *e)
		return
	}
	answer := mustJSON(refund)
	s.idempotent[slot] = storedAnswer{request: canonical, answer: answer}
	writeJSON(w, http.StatusOK, answer)
}

func (s *Server) handleGetRefund(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	refund, ok := s.refunds[r.PathValue("id")]
	if !ok {
		writeError(w, apiError{http.StatusNotFound, "not_found", "Refund doesn't exist or access denied", "refund_id"})
		return
	}
	writeJSON(w, http.StatusOK, mustJSON(refund))
}

// refundLocked refunds part or all of a succeeded payment. The caller holds s.mu.
func (s *Server) refundLocked(paymentID string, amount yookassa.Amount, description string) (yookassa.Refund, *apiError) {
	bad := func(param, desc string) (yookassa.Refund, *apiError) {
		return yookassa.Refund{}, &apiError{http.StatusBadRequest, "invalid_request", desc, param}
	}
	rec, ok := s.payments[paymentID]
	if !ok {
		return bad("payment_id", "Payment doesn't exist or access denied")
	}
	p := &rec.payment
	if p.Status != yookassa.StatusSucceeded {
		return bad("payment_id", "Only a succeeded payment can be refunded; this one is "+p.Status)
	}
	want, err := yookassa.ParseMinor(amount.Value)
	if err != nil || want <= 0 {
		return bad("amount.value", "Amount value must be a positive decimal with at most 2 decimal places")
	}
	if amount.Currency != p.Amount.Currency {
		return bad("amount.currency", "Refund currency differs from the payment's")
	}
	paid, _ := p.Amount.Minor()
	var refunded int64
	if p.RefundedAmount != nil {
		refunded, _ = p.RefundedAmount.Minor()
	}
	if refunded+want > paid {
		return bad("amount.value", "Refund amount exceeds what is left of the payment")
	}
	refund := yookassa.Refund{
		ID:          newID(),
		PaymentID:   paymentID,
		Status:      yookassa.StatusSucceeded,
		Amount:      amount,
		CreatedAt:   now(),
		Description: description,
	}
	total := yookassa.AmountFromMinor(refunded+want, p.Amount.Currency)
	p.RefundedAmount = &total
	p.Refundable = refunded+want < paid
	s.refunds[refund.ID] = refund
	s.refundOrder = append(s.refundOrder, refund.ID)
	return refund, nil
}

// Refunds returns the refunds of a payment, oldest first.
func (s *Server) Refunds(paymentID string) []yookassa.Refund {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []yookassa.Refund
	for _, id := range s.refundOrder {
		if r := s.refunds[id]; r.PaymentID == paymentID {
			out = append(out, r)
		}
	}
	return out
}

// Payment returns the current state of a payment.
func (s *Server) Payment(id string) (yookassa.Payment, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.payments[id]
	if !ok {
		return yookassa.Payment{}, false
	}
	return clonePayment(rec.payment), true
}

// Payments returns every payment created so far, oldest first.
func (s *Server) Payments() []yookassa.Payment {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]yookassa.Payment, 0, len(s.paymentOrder))
	for _, id := range s.paymentOrder {
		out = append(out, clonePayment(s.payments[id].payment))
	}
	return out
}

// Succeed completes a pending (or waiting_for_capture) payment, as if the
// payer had paid.
func (s *Server) Succeed(id string) error {
	return s.transition(id, yookassa.StatusSucceeded)
}

// Cancel cancels a pending (or waiting_for_capture) payment, as if the payer
// had never confirmed it.
func (s *Server) Cancel(id string) error {
	return s.transition(id, yookassa.StatusCanceled)
}

func (s *Server) transition(id, to string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.payments[id]
	if !ok {
		return fmt.Errorf("yookassatest: no payment %s", id)
	}
	if from := rec.payment.Status; from != yookassa.StatusPending && from != yookassa.StatusWaitingForCapture {
		return fmt.Errorf("yookassatest: payment %s is %s, it cannot become %s", id, from, to)
	}
	setStatus(&rec.payment, to)
	s.saveMethodLocked(rec)
	return nil
}

// SetStatus forces a payment into any of the four statuses, bypassing the
// transition rules, for tests of states the normal flow does not reach.
func (s *Server) SetStatus(id, status string) error {
	switch status {
	case yookassa.StatusPending, yookassa.StatusWaitingForCapture, yookassa.StatusSucceeded, yookassa.StatusCanceled:
	default:
		return fmt.Errorf("yookassatest: unknown payment status %q", status)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.payments[id]
	if !ok {
		return fmt.Errorf("yookassatest: no payment %s", id)
	}
	setStatus(&rec.payment, status)
	s.saveMethodLocked(rec)
	return nil
}

// setStatus sets status and the fields YooKassa changes with it.
func setStatus(p *yookassa.Payment, status string) {
	p.Status = status
	p.Paid = status == yookassa.StatusSucceeded || status == yookassa.StatusWaitingForCapture
	p.Refundable = status == yookassa.StatusSucceeded
	if status != yookassa.StatusPending {
		p.Confirmation = nil // the payer has nothing left to confirm
	}
	if status == yookassa.StatusSucceeded && p.CapturedAt == nil {
		t := now()
		p.CapturedAt = &t
		income := p.Amount
		p.IncomeAmount = &income
	}
	if status == yookassa.StatusSucceeded && p.PaymentMethod == nil {
		p.PaymentMethod = &yookassa.PaymentMethod{Type: "bank_card", ID: newID(), Title: "Bank card *4477"}
	}
	if status == yookassa.StatusCanceled && p.CancellationDetails == nil {
		p.CancellationDetails = &yookassa.CancellationDetails{Party: "yoo_money", Reason: "expired_on_confirmation"}
	}
}

// Refund refunds amount of a succeeded payment, as if the shop owner had done
// it in YooKassa's dashboard.
func (s *Server) Refund(paymentID string, amount yookassa.Amount) (yookassa.Refund, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	refund, e := s.refundLocked(paymentID, amount, "")
	if e != nil {
		return yookassa.Refund{}, fmt.Errorf("yookassatest: refund payment %s: %s", paymentID, e.description)
	}
	return refund, nil
}

// NotificationBody returns the JSON YooKassa would POST for event about the
// object id, byte for byte what Notify sends; tests feed it to a handler with
// a source address of their choosing.
//
// For a payment event the object is the payment as it stands, with the
// status and paid flag the event implies, so a test can also forge
// "payment.succeeded" for a payment that is still pending. An unknown id
// yields a minimal object with that id (1.00 RUB), for notifications about
// payments that do not exist. For refund.succeeded, id names a refund, or a
// payment whose latest refund is used. Any other event gets an object that
// holds only the id.
func (s *Server) NotificationBody(event, id string) []byte {
	s.mu.Lock()
	object := s.notificationObjectLocked(event, id)
	s.mu.Unlock()
	return mustJSON(struct {
		Type   string `json:"type"`
		Event  string `json:"event"`
		Object any    `json:"object"`
	}{"notification", event, object})
}

func (s *Server) notificationObjectLocked(event, id string) any {
	switch event {
	case yookassa.EventPaymentSucceeded, yookassa.EventPaymentWaitingForCapture, yookassa.EventPaymentCanceled:
		var p yookassa.Payment
		if rec, ok := s.payments[id]; ok {
			p = clonePayment(rec.payment)
		} else {
			p = yookassa.Payment{ID: id, Amount: yookassa.Amount{Value: "1.00", Currency: "RUB"}, CreatedAt: now(), Test: true}
		}
		setStatus(&p, strings.TrimPrefix(event, "payment."))
		return p
	case yookassa.EventRefundSucceeded:
		if r, ok := s.refunds[id]; ok {
			return r
		}
		for i := len(s.refundOrder) - 1; i >= 0; i-- {
			if r := s.refunds[s.refundOrder[i]]; r.PaymentID == id {
				return r
			}
		}
		return yookassa.Refund{ID: newID(), PaymentID: id, Status: yookassa.StatusSucceeded,
			Amount: yookassa.Amount{Value: "1.00", Currency: "RUB"}, CreatedAt: now()}
	}
	return map[string]string{"id": id}
}

// Notify POSTs NotificationBody(event, id) to url and returns an error unless
// the answer is 200, the only answer YooKassa takes as delivered.
func (s *Server) Notify(ctx context.Context, url, event, id string) error {
	body := s.NotificationBody(event, id)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("yookassatest: notify %s %s: %w", event, id, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.notifier.Do(req)
	if err != nil {
		return fmt.Errorf("yookassatest: notify %s %s: %w", event, id, err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("yookassatest: notify %s %s: webhook answered %s: %s", event, id, resp.Status, strings.TrimSpace(string(answer)))
	}
	return nil
}

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBytes))
	if err != nil {
		writeError(w, apiError{http.StatusBadRequest, "invalid_request", "Cannot read request body", ""})
		return nil, false
	}
	return body, true
}

// decodeStrict refuses unknown fields: the emulator only knows the fields
// wgbot sends, and a typo in the client should fail loudly here.
func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("request body: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("request body: data after the JSON object")
	}
	return nil
}

// canonicalJSON re-encodes body with sorted keys and no spacing, so that two
// requests that mean the same thing compare equal for idempotence.
func canonicalJSON(body []byte) (string, error) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return "", err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

func writeError(w http.ResponseWriter, e apiError) {
	writeJSON(w, e.status, mustJSON(struct {
		Type        string `json:"type"`
		ID          string `json:"id"`
		Code        string `json:"code"`
		Description string `json:"description"`
		Parameter   string `json:"parameter,omitempty"`
	}{"error", newID(), e.code, e.description, e.parameter}))
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("yookassatest: encode %T: %v", v, err)) // only our own types are encoded
	}
	return b
}

// clonePayment deep-copies a payment so callers cannot reach the emulator's
// state through its pointers and map.
func clonePayment(p yookassa.Payment) yookassa.Payment {
	var c yookassa.Payment
	if err := json.Unmarshal(mustJSON(p), &c); err != nil {
		panic(fmt.Sprintf("yookassatest: clone payment: %v", err))
	}
	return c
}

// newID makes an id shaped like YooKassa's (a UUID).
func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails since Go 1.24
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// now is the emulator's clock, at the millisecond precision YooKassa uses.
func now() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }
