package cryptopay

import (
	"errors"
	"fmt"
	"net/http"
)

// The error kinds a caller branches on. Every error the Client returns
// matches exactly one of them through errors.Is.
var (
	// ErrUnavailable means Crypto Pay could not be reached or could not serve
	// the request now (5xx, 429, a dropped connection, an unreadable answer).
	// Crypto Pay has no idempotence keys: a retried createInvoice may create a
	// second invoice, which is harmless if invoices expire (ExpiresIn).
	ErrUnavailable = errors.New("crypto pay unavailable")

	// ErrInvalid means the request was refused, by Crypto Pay (ok:false with a
	// 4xx code, including a wrong token) or by the client before sending it.
	// Repeating it unchanged will not help.
	ErrInvalid = errors.New("invalid crypto pay request")
)

// APIError is Crypto Pay's refusal: {"ok":false,"error":{"code":..,"name":".."}}.
type APIError struct {
	StatusCode int    // HTTP status of the answer
	Code       int    // Crypto Pay's error code, usually the HTTP status
	Name       string // e.g. UNAUTHORIZED, AMOUNT_TOO_SMALL, METHOD_NOT_FOUND
}

func (e *APIError) Error() string {
	if e.Name == "" && e.Code == 0 {
		return fmt.Sprintf("crypto pay answered HTTP %d without an error object", e.StatusCode)
	}
	return fmt.Sprintf("crypto pay answered HTTP %d: error %d %s", e.StatusCode, e.Code, e.Name)
}

// Is maps the answer onto the package's error kinds.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrUnavailable:
		return e.retryable()
	case ErrInvalid:
		return !e.retryable()
	}
	return false
}

// retryable reports whether the same request may succeed later. Only a plain
// 4xx refusal is final; an error object in a 200 answer is judged by its code.
func (e *APIError) retryable() bool {
	status := e.StatusCode
	if status == http.StatusOK && e.Code != 0 {
		status = e.Code
	}
	if status == http.StatusTooManyRequests {
		return true
	}
	return status < 400 || status >= 500
}
