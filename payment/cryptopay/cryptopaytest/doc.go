// Package cryptopaytest runs an in-process emulator of the Crypto Pay API
// (@CryptoBot) that speaks its real wire format: token auth, createInvoice,
// getInvoices and webhook updates signed exactly as Crypto Pay signs them.
//
// Tests use it in place of the unreachable real service, with controls to
// pay or expire invoices and inject faults; a sandbox can use its invoice
// page (the invoice's bot_invoice_url) to pay by hand.
package cryptopaytest
