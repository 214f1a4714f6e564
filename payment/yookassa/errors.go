package yookassa

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// The error kinds a caller branches on. Every error the Client returns matches
// at most one of ErrUnavailable and ErrInvalid through errors.Is.
var (
	// ErrUnavailable means YooKassa could not be reached, or said it could not
	// serve the request now (5xx, 429, a dropped connection, an unreadable
	// answer). The outcome of a create request is then unknown: repeat it with
	// the same idempotence key, which makes the repeat safe.
	ErrUnavailable = errors.New("yookassa unavailable")

	// ErrInvalid means the request was refused, by YooKassa (4xx) or by the
	// client before sending it. Repeating it unchanged will not help; an
	// *APIError in the chain carries YooKassa's code and description.
	ErrInvalid = errors.New("invalid yookassa request")

	// ErrNotFound means YooKassa has no such object (404). It also matches
	// ErrInvalid.
	ErrNotFound = errors.New("yookassa object not found")
)

// APIError is YooKassa's answer to a request it did not serve, as documented
// for API v3: {"type":"error","id":..,"code":..,"description":..,"parameter":..}.
type APIError struct {
	StatusCode  int           // HTTP status of the answer
	ID          string        // error id to quote to YooKassa support
	Code        string        // e.g. invalid_request, invalid_credentials, not_found
	Description string        // human-readable reason, in YooKassa's words
	Parameter   string        // the request parameter at fault, if any
	RetryAfter  time.Duration // YooKassa's suggested pause before a retry, if any
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "yookassa answered HTTP %d", e.StatusCode)
	if e.Code != "" {
		fmt.Fprintf(&b, " %s", e.Code)
	}
	if e.Description != "" {
		fmt.Fprintf(&b, ": %s", e.Description)
	}
	if e.Parameter != "" {
		fmt.Fprintf(&b, " (parameter %s)", e.Parameter)
	}
	if e.ID != "" {
		fmt.Fprintf(&b, " [error id %s]", e.ID)
	}
	return b.String()
}

// Is maps the HTTP status onto the package's error kinds, so callers never
// have to know which statuses YooKassa uses for what.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrUnavailable:
		return retryableStatus(e.StatusCode)
	case ErrInvalid:
		return !retryableStatus(e.StatusCode)
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound
	}
	return false
}

// retryableStatus reports whether an answer with this status leaves the
// request worth repeating. Anything that is not a plain 4xx refusal counts,
// including an unexpected 2xx or 3xx: YooKassa documents 202 as "still
// processing, ask again", and a redirect means something between us and
// YooKassa is misbehaving.
func retryableStatus(status int) bool {
	if status == http.StatusTooManyRequests {
		return true
	}
	return status < 400 || status >= 500
}

// newAPIError builds the error for a non-200 answer. A body that is not
// YooKassa's error object (a proxy's HTML page, say) still yields an error
// classified by status, with the start of the body as its description.
func newAPIError(status int, body []byte) *APIError {
	e := &APIError{StatusCode: status}
	var wire struct {
		Type        string `json:"type"`
		ID          string `json:"id"`
		Code        string `json:"code"`
		Description string `json:"description"`
		Parameter   string `json:"parameter"`
		RetryAfter  int64  `json:"retry_after"` // milliseconds
	}
	if err := json.Unmarshal(body, &wire); err == nil && (wire.Type == "error" || wire.Code != "") {
		e.ID, e.Code, e.Description, e.Parameter = wire.ID, wire.Code, wire.Description, wire.Parameter
		e.RetryAfter = time.Duration(wire.RetryAfter) * time.Millisecond
		return e
	}
	e.Description = snippet(body)
	return e
}

// snippet shortens an unexpected body for an error message.
func snippet(body []byte) string {
	const max = 200
	s := strings.TrimSpace(string(body))
	if len(s) > max {
		s = s[:max] + "..."
	}
	return s
}
