package contact

import (
	"log/slog"
	"regexp"
)

// Logs never carry phone numbers or e-mail addresses. The types that hold
// them, or text that may, implement slog.LogValuer so that they log
// without them whatever the handler; outreachd's handler also redacts what
// looks like either, as a backstop.

// PhoneNumber is a phone number. It logs as its last two digits.
type PhoneNumber string

// LogValue implements slog.LogValuer.
func (p PhoneNumber) LogValue() slog.Value {
	if len(p) < 2 {
		return slog.StringValue("…")
	}
	return slog.StringValue("…" + string(p[len(p)-2:]))
}

// EmailAddress is an e-mail address. It logs as "…@…".
type EmailAddress string

// LogValue implements slog.LogValuer.
func (EmailAddress) LogValue() slog.Value { return slog.StringValue("…@…") }

// LogValue logs an event by its id, type, customer and time: its free text
// (a complaint's summary, an opt-out's reason) may hold anything.
func (e Event) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", e.ID), slog.String("type", string(e.Type)),
		slog.String("customer_id", e.CustomerID), slog.Time("at", e.At))
}

// quoted matches the Go-quoted input that messages echo back (got "…").
var quoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)

// LogValue logs an error's code, field and message, with the input that
// the message quotes back to the client left out: it may be a phone
// number. The cause is logged as it is.
func (e *Error) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("code", e.Code), slog.String("message", quoted.ReplaceAllString(e.Message, `"…"`))}
	if e.Field != "" {
		attrs = append(attrs, slog.String("field", e.Field))
	}
	if e.Err != nil {
		attrs = append(attrs, slog.String("cause", e.Err.Error()))
	}
	return slog.GroupValue(attrs...)
}

// LogValue logs a suppression entry without its phone number or its
// reason, which is free text.
func (s Suppression) LogValue() slog.Value {
	var attrs []slog.Attr
	if s.List != "" {
		attrs = append(attrs, slog.String("list", s.List))
	}
	if s.CustomerID != "" {
		attrs = append(attrs, slog.String("customer_id", s.CustomerID))
	}
	if s.Phone != "" {
		attrs = append(attrs, slog.Any("phone", PhoneNumber(s.Phone)))
	}
	return slog.GroupValue(attrs...)
}
