package cryptopaytest

import (
	"net/http"
	"strings"

	"wgbot/payment/cryptopay"
)

// invoicePage stands in for paying in @CryptoBot: a person in a sandbox
// opens the invoice URL and pays or lets it expire with one click.
const invoicePage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Crypto Pay emulator: invoice</title></head>
<body>
<h1>Crypto Pay emulator</h1>
<p>Invoice {{.InvoiceID}}: {{.Description}}</p>
<p>Amount: <strong>{{.Amount}} {{if .Fiat}}{{.Fiat}}{{else}}{{.Asset}}{{end}}</strong></p>
<p>Status: <strong id="status">{{.Status}}</strong></p>
{{if eq .Status "active"}}
<form method="post" action="/invoice/{{.Hash}}/pay"><button type="submit" id="pay">Pay</button></form>
<form method="post" action="/invoice/{{.Hash}}/expire"><button type="submit" id="expire">Expire</button></form>
{{end}}
{{if .Message}}<p id="message">{{.Message}}</p>{{end}}
</body></html>`

type invoiceView struct {
	cryptopay.Invoice
	Message string
}

func (s *Server) invoiceByHash(hash string) (cryptopay.Invoice, bool) {
	for _, inv := range s.Invoices() {
		if inv.Hash == hash {
			return inv, true
		}
	}
	return cryptopay.Invoice{}, false
}

func (s *Server) handleInvoicePage(w http.ResponseWriter, r *http.Request) {
	s.renderInvoice(w, http.StatusOK, r.PathValue("hash"), "")
}

func (s *Server) renderInvoice(w http.ResponseWriter, status int, hash, message string) {
	inv, ok := s.invoiceByHash(hash)
	if !ok {
		http.Error(w, "no such invoice", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = s.page.Execute(w, invoiceView{Invoice: inv, Message: message})
}

// handleInvoiceAction pays or expires the invoice and, after a payment,
// sends the signed update if a webhook URL is set.
func (s *Server) handleInvoiceAction(w http.ResponseWriter, r *http.Request) {
	hash := r.PathValue("hash")
	inv, ok := s.invoiceByHash(hash)
	if !ok {
		http.Error(w, "no such invoice", http.StatusNotFound)
		return
	}
	if strings.HasSuffix(r.URL.Path, "/expire") {
		if err := s.Expire(inv.InvoiceID); err != nil {
			s.renderInvoice(w, http.StatusConflict, hash, err.Error())
			return
		}
		s.renderInvoice(w, http.StatusOK, hash, "")
		return
	}
	if err := s.Pay(inv.InvoiceID); err != nil {
		s.renderInvoice(w, http.StatusConflict, hash, err.Error())
		return
	}
	s.mu.Lock()
	url := s.webhookURL
	s.mu.Unlock()
	if url != "" {
		if err := s.Notify(r.Context(), url, inv.InvoiceID); err != nil {
			s.renderInvoice(w, http.StatusBadGateway, hash, err.Error())
			return
		}
	}
	s.renderInvoice(w, http.StatusOK, hash, "")
}
