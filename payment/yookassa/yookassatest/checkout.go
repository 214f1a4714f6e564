package yookassatest

import (
	"net/http"
	"strings"

	"wgbot/payment/yookassa"
)

// checkoutPage stands in for YooKassa's payment form: a person in a sandbox
// opens the confirmation URL and decides the payment's fate with one click.
const checkoutPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>YooKassa emulator: checkout</title></head>
<body>
<h1>YooKassa emulator</h1>
<p>Payment <code>{{.ID}}</code>: {{.Description}}</p>
<p>Amount: <strong>{{.Amount.Value}} {{.Amount.Currency}}</strong></p>
<p>Status: <strong id="status">{{.Status}}</strong></p>
{{if .Open}}
<form method="post" action="/checkout/{{.ID}}/pay"><button type="submit" id="pay">Pay</button></form>
<form method="post" action="/checkout/{{.ID}}/cancel"><button type="submit" id="cancel">Cancel</button></form>
{{end}}
{{if .Message}}<p id="message">{{.Message}}</p>{{end}}
{{if and (not .Open) .ReturnURL}}<p><a id="back" href="{{.ReturnURL}}">Back to the bot</a></p>{{end}}
</body></html>`

type checkoutView struct {
	yookassa.Payment
	Open      bool
	Message   string
	ReturnURL string // shown once the payment is closed: a stale link still leads back
}

func (s *Server) handleCheckoutPage(w http.ResponseWriter, r *http.Request) {
	s.renderCheckout(w, http.StatusOK, r.PathValue("id"), "")
}

func (s *Server) renderCheckout(w http.ResponseWriter, status int, id, message string) {
	p, ok := s.Payment(id)
	if !ok {
		http.Error(w, "no such payment", http.StatusNotFound)
		return
	}
	open := p.Status == yookassa.StatusPending || p.Status == yookassa.StatusWaitingForCapture
	s.mu.Lock()
	returnURL := s.payments[id].returnURL
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = s.checkout.Execute(w, checkoutView{Payment: p, Open: open, Message: message, ReturnURL: returnURL})
}

// handleCheckoutAction pays or cancels, sends the notification if a URL is
// set, then returns the payer to the shop like YooKassa does.
func (s *Server) handleCheckoutAction(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	event := yookassa.EventPaymentSucceeded
	act := s.Succeed
	if strings.HasSuffix(r.URL.Path, "/cancel") {
		event, act = yookassa.EventPaymentCanceled, s.Cancel
	}
	if err := act(id); err != nil {
		s.renderCheckout(w, http.StatusConflict, id, err.Error())
		return
	}
	s.mu.Lock()
	notifyURL := s.notifyURL
	returnURL := ""
	if rec, ok := s.payments[id]; ok {
		returnURL = rec.returnURL
	}
	s.mu.Unlock()
	if notifyURL != "" {
		if err := s.Notify(r.Context(), notifyURL, event, id); err != nil {
			s.renderCheckout(w, http.StatusBadGateway, id, err.Error())
			return
		}
	}
	if returnURL == "" {
		s.renderCheckout(w, http.StatusOK, id, "")
		return
	}
	http.Redirect(w, r, returnURL, http.StatusSeeOther)
}
