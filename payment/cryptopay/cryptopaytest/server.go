package cryptopaytest

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"wgbot/payment/cryptopay"
	"wgbot/payment/paytest"
)

// Limits Crypto Pay documents for createInvoice and getInvoices.
const (
	maxPayloadBytes     = 4096
	maxDescriptionRunes = 1024
	maxExpiresIn        = 2678400
	maxCount            = 1000
	defaultCount        = 100
	maxRequestBytes     = 1 << 20
	firstInvoiceID      = 100001
)

// The assets and fiat currencies the emulator accepts, as Crypto Pay lists
// them. Functions, not variables, so no test can change them for another.
func supportedAssets() []string {
	return []string{"USDT", "TON", "BTC", "ETH", "LTC", "BNB", "TRX", "USDC"}
}

func supportedFiats() []string {
	return []string{"USD", "EUR", "RUB", "BYN", "UAH", "GBP", "CNY", "KZT", "UZS", "GEL", "TRY", "AMD",
		"THB", "INR", "BRL", "IDR", "AZN", "AED", "PLN", "ILS"}
}

// Request is one API call the emulator received.
type Request struct {
	Method string // the API method, e.g. "createInvoice"
}

// Server is a running Crypto Pay emulator on a loopback port. All methods are
// safe for concurrent use.
type Server struct {
	URL   string // root of the server; the API lives under BaseURL()
	Token string

	// Faults injects API failures: FailNext, DropNext, DropNextAnswers.
	paytest.Faults

	srv      *httptest.Server
	mux      *http.ServeMux
	notifier *http.Client
	page     *template.Template

	mu           sync.Mutex
	invoices     map[int64]*cryptopay.Invoice
	order        []int64
	nextID       int64
	nextUpdateID int64
	requests     []Request
	webhookURL   string
}

// apiError is an error answer in Crypto Pay's format.
type apiError struct {
	status int
	name   string
}

// NewServer starts an emulator for the app with this API token. Close it
// when done.
func NewServer(token string) *Server {
	s := &Server{
		Token:    token,
		mux:      http.NewServeMux(),
		notifier: &http.Client{Timeout: 10 * time.Second},
		page:     template.Must(template.New("invoice").Parse(invoicePage)),
		invoices: map[int64]*cryptopay.Invoice{},
		nextID:   firstInvoiceID,
	}
	s.mux.HandleFunc("/api/{method}", s.handleAPI)
	s.mux.HandleFunc("GET /invoice/{hash}", s.handleInvoicePage)
	s.mux.HandleFunc("POST /invoice/{hash}/pay", s.handleInvoiceAction)
	s.mux.HandleFunc("POST /invoice/{hash}/expire", s.handleInvoiceAction)
	s.srv = httptest.NewServer(s.mux)
	s.URL = s.srv.URL
	return s
}

// BaseURL is the API root to use as cryptopay.Client.BaseURL.
func (s *Server) BaseURL() string { return s.URL + "/api" }

// Close shuts the emulator down; later requests fail as if Crypto Pay were
// unreachable.
func (s *Server) Close() { s.srv.Close() }

// Client returns an API client configured for this emulator.
func (s *Server) Client() *cryptopay.Client {
	return &cryptopay.Client{BaseURL: s.BaseURL(), Token: s.Token, HTTP: s.srv.Client()}
}

// Requests returns the API calls received so far, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// SetWebhookURL makes the invoice page send the signed update to url after
// it pays an invoice, as Crypto Pay would. Pay itself never notifies: tests
// decide when an update arrives, with Notify.
func (s *Server) SetWebhookURL(url string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.webhookURL = url
}

func (s *Server) handleAPI(w http.ResponseWriter, r *http.Request) {
	method := r.PathValue("method")
	fault := s.takeFault(method)
	switch {
	case fault.Drop:
		panic(http.ErrAbortHandler) // net/http closes the connection, writing nothing
	case fault.FailStatus != 0:
		name := strings.ToUpper(strings.ReplaceAll(http.StatusText(fault.FailStatus), " ", "_"))
		writeError(w, apiError{fault.FailStatus, name})
		return
	}
	token := r.Header.Get("Crypto-Pay-API-Token")
	if subtle.ConstantTimeCompare([]byte(token), []byte(s.Token)) != 1 {
		writeError(w, apiError{http.StatusUnauthorized, "UNAUTHORIZED"})
		return
	}
	if fault.DropAnswer {
		w = httptest.NewRecorder()
		defer panic(http.ErrAbortHandler)
	}
	params, e := readParams(w, r)
	if e != nil {
		writeError(w, *e)
		return
	}
	switch method {
	case "getMe":
		s.getMe(w, params)
	case "createInvoice":
		s.createInvoice(w, params)
	case "getInvoices":
		s.getInvoices(w, params)
	default:
		writeError(w, apiError{http.StatusMethodNotAllowed, "METHOD_NOT_FOUND"})
	}
}

// takeFault records the request and consumes one injected fault, if any.
func (s *Server) takeFault(method string) paytest.Fault {
	s.mu.Lock()
	s.requests = append(s.requests, Request{Method: method})
	s.mu.Unlock()
	return s.Take()
}

// readParams collects parameters the ways Crypto Pay takes them: the query
// string, a JSON body, or a form body. JSON numbers and booleans become
// their text; an array becomes a comma-separated list.
func readParams(w http.ResponseWriter, r *http.Request) (map[string]string, *apiError) {
	params := map[string]string{}
	for k, v := range r.URL.Query() {
		params[k] = v[0]
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBytes))
	if err != nil {
		return nil, &apiError{http.StatusBadRequest, "REQUEST_TOO_LARGE"}
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return params, nil
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		r.Body = io.NopCloser(bytes.NewReader(body))
		if err := r.ParseForm(); err != nil {
			return nil, &apiError{http.StatusBadRequest, "REQUEST_INVALID"}
		}
		for k, v := range r.PostForm {
			params[k] = v[0]
		}
		return params, nil
	}
	var fields map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&fields); err != nil {
		return nil, &apiError{http.StatusBadRequest, "REQUEST_INVALID"}
	}
	for k, v := range fields {
		s, ok := paramText(v)
		if !ok {
			return nil, &apiError{http.StatusBadRequest, strings.ToUpper(k) + "_INVALID"}
		}
		params[k] = s
	}
	return params, nil
}

func paramText(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case json.Number:
		return v.String(), true
	case bool:
		return strconv.FormatBool(v), true
	case []any:
		parts := make([]string, len(v))
		for i, item := range v {
			s, ok := paramText(item)
			if !ok {
				return "", false
			}
			parts[i] = s
		}
		return strings.Join(parts, ","), true
	}
	return "", false
}

// checkKnown refuses parameters a method does not take. The real API may
// ignore them; the emulator fails loudly so a typo in wgbot's client shows.
func checkKnown(params map[string]string, known ...string) *apiError {
	for k := range params {
		if !slices.Contains(known, k) {
			return &apiError{http.StatusBadRequest, "PARAM_" + strings.ToUpper(k) + "_UNKNOWN"}
		}
	}
	return nil
}

func (s *Server) getMe(w http.ResponseWriter, params map[string]string) {
	if e := checkKnown(params); e != nil {
		writeError(w, *e)
		return
	}
	writeResult(w, cryptopay.App{AppID: 4242, Name: "wgbot emulator", PaymentProcessingBotUsername: "CryptoTestnetBot"})
}

func (s *Server) createInvoice(w http.ResponseWriter, p map[string]string) {
	if e := checkKnown(p, "currency_type", "asset", "fiat", "amount", "payload", "description", "expires_in"); e != nil {
		writeError(w, *e)
		return
	}
	inv := cryptopay.Invoice{
		CurrencyType: p["currency_type"],
		Amount:       p["amount"],
		Payload:      p["payload"],
		Description:  p["description"],
		Status:       cryptopay.StatusActive,
		CreatedAt:    now(),
	}
	if inv.CurrencyType == "" {
		inv.CurrencyType = cryptopay.CurrencyCrypto
	}
	bad := func(name string) { writeError(w, apiError{http.StatusBadRequest, name}) }
	switch inv.CurrencyType {
	case cryptopay.CurrencyCrypto:
		if !slices.Contains(supportedAssets(), p["asset"]) {
			bad("ASSET_INVALID")
			return
		}
		inv.Asset = p["asset"]
	case cryptopay.CurrencyFiat:
		if !slices.Contains(supportedFiats(), p["fiat"]) {
			bad("FIAT_INVALID")
			return
		}
		inv.Fiat = p["fiat"]
	default:
		bad("CURRENCY_TYPE_INVALID")
		return
	}
	if !positiveDecimal(inv.Amount) {
		bad("AMOUNT_INVALID")
		return
	}
	if len(inv.Payload) > maxPayloadBytes {
		bad("PAYLOAD_TOO_LONG")
		return
	}
	if len([]rune(inv.Description)) > maxDescriptionRunes {
		bad("DESCRIPTION_TOO_LONG")
		return
	}
	if v, ok := p["expires_in"]; ok {
		secs, err := strconv.Atoi(v)
		if err != nil || secs < 1 || secs > maxExpiresIn {
			bad("EXPIRES_IN_INVALID")
			return
		}
		t := inv.CreatedAt.Add(time.Duration(secs) * time.Second)
		inv.ExpirationDate = &t
	}

	s.mu.Lock()
	inv.InvoiceID = s.nextID
	s.nextID++
	inv.Hash = "IV" + randomText(12)
	inv.BotInvoiceURL = s.URL + "/invoice/" + inv.Hash
	inv.MiniAppInvoiceURL = inv.BotInvoiceURL
	inv.WebAppInvoiceURL = inv.BotInvoiceURL
	stored := inv
	s.invoices[inv.InvoiceID] = &stored
	s.order = append(s.order, inv.InvoiceID)
	s.mu.Unlock()
	writeResult(w, inv)
}

func (s *Server) getInvoices(w http.ResponseWriter, p map[string]string) {
	if e := checkKnown(p, "asset", "fiat", "invoice_ids", "status", "offset", "count"); e != nil {
		writeError(w, *e)
		return
	}
	var ids []int64
	if v := p["invoice_ids"]; v != "" {
		for _, part := range strings.Split(v, ",") {
			id, err := strconv.ParseInt(strings.TrimSpace(part), 10, 64)
			if err != nil {
				writeError(w, apiError{http.StatusBadRequest, "INVOICE_IDS_INVALID"})
				return
			}
			ids = append(ids, id)
		}
	}
	offset, count := 0, defaultCount
	if v, ok := p["offset"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeError(w, apiError{http.StatusBadRequest, "OFFSET_INVALID"})
			return
		}
		offset = n
	}
	if v, ok := p["count"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxCount {
			writeError(w, apiError{http.StatusBadRequest, "COUNT_INVALID"})
			return
		}
		count = n
	}
	status := p["status"]
	if status != "" && status != cryptopay.StatusActive && status != cryptopay.StatusPaid {
		writeError(w, apiError{http.StatusBadRequest, "STATUS_INVALID"})
		return
	}

	s.mu.Lock()
	s.expireOverdueLocked()
	items := []cryptopay.Invoice{}
	// Newest first, like the real service.
	for i := len(s.order) - 1; i >= 0; i-- {
		inv := s.invoices[s.order[i]]
		if (len(ids) > 0 && !slices.Contains(ids, inv.InvoiceID)) ||
			(status != "" && inv.Status != status) ||
			(p["asset"] != "" && inv.Asset != p["asset"]) ||
			(p["fiat"] != "" && inv.Fiat != p["fiat"]) {
			continue
		}
		items = append(items, *inv)
	}
	s.mu.Unlock()
	items = items[min(offset, len(items)):]
	items = items[:min(count, len(items))]
	writeResult(w, struct {
		Items []cryptopay.Invoice `json:"items"`
	}{items})
}

// expireOverdueLocked turns active invoices past their expiration date into
// expired ones, as the real service does on its own. The caller holds s.mu.
func (s *Server) expireOverdueLocked() {
	t := now()
	for _, inv := range s.invoices {
		if inv.Status == cryptopay.StatusActive && inv.ExpirationDate != nil && !t.Before(*inv.ExpirationDate) {
			inv.Status = cryptopay.StatusExpired
		}
	}
}

// Invoice returns the current state of an invoice.
func (s *Server) Invoice(id int64) (cryptopay.Invoice, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireOverdueLocked()
	inv, ok := s.invoices[id]
	if !ok {
		return cryptopay.Invoice{}, false
	}
	return *inv, true
}

// Invoices returns every invoice created so far, oldest first.
func (s *Server) Invoices() []cryptopay.Invoice {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireOverdueLocked()
	out := make([]cryptopay.Invoice, 0, len(s.order))
	for _, id := range s.order {
		out = append(out, *s.invoices[id])
	}
	return out
}

// Pay marks an active invoice paid, as if the payer had paid it in
// @CryptoBot. A fiat invoice is paid in USDT at a stand-in rate of 1, so
// paid_amount equals amount; wgbot must not rely on real exchange rates here.
func (s *Server) Pay(id int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireOverdueLocked()
	inv, ok := s.invoices[id]
	if !ok {
		return fmt.Errorf("cryptopaytest: no invoice %d", id)
	}
	if inv.Status != cryptopay.StatusActive {
		return fmt.Errorf("cryptopaytest: invoice %d is %s, it cannot be paid", id, inv.Status)
	}
	t := now()
	inv.Status, inv.PaidAt = cryptopay.StatusPaid, &t
	inv.PaidAsset, inv.PaidAmount, inv.PaidUSDRate = inv.Asset, inv.Amount, "1"
	if inv.CurrencyType == cryptopay.CurrencyFiat {
		inv.PaidAsset, inv.PaidFiatRate = "USDT", "1"
	}
	return nil
}

// Expire expires an active invoice now, whatever its expiration date.
func (s *Server) Expire(id int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	inv, ok := s.invoices[id]
	if !ok {
		return fmt.Errorf("cryptopaytest: no invoice %d", id)
	}
	if inv.Status != cryptopay.StatusActive {
		return fmt.Errorf("cryptopaytest: invoice %d is %s, it cannot expire", id, inv.Status)
	}
	inv.Status = cryptopay.StatusExpired
	return nil
}

// SignedBody returns the webhook update Crypto Pay would send for the
// invoice as it stands, and its signature: hex(HMAC-SHA256(key =
// SHA256(token), body)). Each call is a new update with a new update_id.
// For an invoice that is not paid the update still says "invoice_paid" but
// carries the real status, so tests can check that it is refused. It panics
// on an unknown invoice id, a mistake in the calling test.
func (s *Server) SignedBody(invoiceID int64) (body []byte, sig string) {
	s.mu.Lock()
	s.expireOverdueLocked()
	inv, ok := s.invoices[invoiceID]
	if !ok {
		s.mu.Unlock()
		panic(fmt.Sprintf("cryptopaytest: SignedBody: no invoice %d", invoiceID))
	}
	s.nextUpdateID++
	update := struct {
		UpdateID    int64             `json:"update_id"`
		UpdateType  string            `json:"update_type"`
		RequestDate time.Time         `json:"request_date"`
		Payload     cryptopay.Invoice `json:"payload"`
	}{s.nextUpdateID, cryptopay.UpdateInvoicePaid, now(), *inv}
	s.mu.Unlock()
	body = mustJSON(update)
	return body, sign(s.Token, body)
}

// sign is Crypto Pay's webhook signature, written out here rather than
// shared with the cryptopay package so that the verifier is tested against
// an independent implementation.
func sign(token string, body []byte) string {
	key := sha256.Sum256([]byte(token))
	mac := hmac.New(sha256.New, key[:])
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// Notify POSTs a signed update for the invoice to url, with the signature in
// the crypto-pay-api-signature header, and returns an error unless the
// answer is 200.
func (s *Server) Notify(ctx context.Context, url string, invoiceID int64) error {
	if _, ok := s.Invoice(invoiceID); !ok {
		return fmt.Errorf("cryptopaytest: notify: no invoice %d", invoiceID)
	}
	body, sig := s.SignedBody(invoiceID)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("cryptopaytest: notify invoice %d: %w", invoiceID, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("crypto-pay-api-signature", sig)
	resp, err := s.notifier.Do(req)
	if err != nil {
		return fmt.Errorf("cryptopaytest: notify invoice %d: %w", invoiceID, err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("cryptopaytest: notify invoice %d: webhook answered %s: %s", invoiceID, resp.Status, strings.TrimSpace(string(answer)))
	}
	return nil
}

func writeResult(w http.ResponseWriter, result any) {
	writeJSON(w, http.StatusOK, mustJSON(struct {
		OK     bool `json:"ok"`
		Result any  `json:"result"`
	}{true, result}))
}

func writeError(w http.ResponseWriter, e apiError) {
	type errorObject struct {
		Code int    `json:"code"`
		Name string `json:"name"`
	}
	writeJSON(w, e.status, mustJSON(struct {
		OK    bool        `json:"ok"`
		Error errorObject `json:"error"`
	}{false, errorObject{e.status, e.name}}))
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("cryptopaytest: encode %T: %v", v, err)) // only our own types are encoded
	}
	return b
}

// positiveDecimal reports whether s is a plain decimal ("2.5", "199") above
// zero, the only amount form Crypto Pay takes.
func positiveDecimal(s string) bool {
	whole, frac, hasDot := strings.Cut(s, ".")
	digits := func(p string) bool {
		return p != "" && strings.Trim(p, "0123456789") == ""
	}
	return digits(whole) && (!hasDot || digits(frac)) && strings.Trim(whole+frac, "0") != ""
}

// randomText returns n random characters for invoice hashes.
func randomText(n int) string {
	b := make([]byte, (n+1)/2)
	_, _ = rand.Read(b) // crypto/rand.Read never fails since Go 1.24
	return hex.EncodeToString(b)[:n]
}

// now is the emulator's clock, at millisecond precision like the service's.
func now() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }
