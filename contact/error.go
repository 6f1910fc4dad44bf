package contact

import (
	"errors"
	"fmt"
)

// Error codes shared by every package of outreach. The HTTP layer maps each
// code to one status.
const (
	EInvalid      = "invalid"      // the caller sent something wrong; Field names it
	ENotFound     = "not_found"    // the thing asked for does not exist
	EConflict     = "conflict"     // it clashes with what is stored, such as a reused event id
	EGone         = "gone"         // the customer was erased after this event: it is dropped
	EUnauthorized = "unauthorized" // no key, or an unknown key
	EForbidden    = "forbidden"    // a known key whose role may not do this
	ETooLarge     = "too_large"    // the body is over the limit
	EUnsupported  = "unsupported"  // the content type is not accepted
	ERateLimited  = "rate_limited" // the caller sent more requests than its role may
	ETimeout      = "timeout"      // the caller stopped sending its request for too long
	EUnavailable  = "unavailable"  // a dependency (Redis, Kafka) cannot be reached
	EInternal     = "internal"     // a bug or an unexpected failure
)

// Error is the one error type that crosses package boundaries. Its Message is
// safe to show to a client; causes that are not (Redis error strings, stacks)
// stay in Err and are only logged.
type Error struct {
	Code    string
	Message string
	Field   string // the JSON field at fault, for EInvalid
	Err     error  // the underlying cause, never shown to clients
}

func (e *Error) Error() string {
	msg := e.Message
	if e.Field != "" {
		msg = e.Field + ": " + msg
	}
	if e.Err != nil {
		return fmt.Sprintf("%s: %v", msg, e.Err)
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns an EInvalid error naming the field at fault.
func Invalid(field, format string, args ...any) *Error {
	return &Error{Code: EInvalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

// ErrStoreReset is the cause of an EUnavailable error when the store has
// lost its data (Redis came back empty): not an outage that passes by
// itself, but one that lasts until a replay rebuilds the store or an
// operator accepts the loss.
var ErrStoreReset = errors.New("store: Redis lost its data; it stays unavailable until a replay rebuilds it or an operator acknowledges the loss")

// Unavailable wraps a dependency failure. The cause is kept for logs only.
func Unavailable(what string, err error) *Error {
	return &Error{Code: EUnavailable, Message: what + " is unavailable", Err: err}
}

// ErrorCode returns the code of the first *Error in err's chain, EInternal for
// any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}
