// Package yookassa is wgbot's client for the YooKassa payments API v3 and the
// checks its webhook needs: notification parsing, the sender IP allow-list and
// the client-address rule behind a proxy.
//
// A notification is never proof of payment by itself (YooKassa does not sign
// them): the caller checks the sender's address, then fetches the payment back
// with GetPayment and trusts only that answer.
package yookassa
