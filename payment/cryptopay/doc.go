// Package cryptopay is wgbot's client for the Crypto Pay API of @CryptoBot
// (invoices paid in crypto) and the checks its webhook needs: the HMAC
// signature of the raw body, then strict parsing of the update.
//
// Crypto Pay signs every webhook update with a key derived from the app's API
// token, so an update whose signature verifies is the provider's own word.
package cryptopay
