package dedupe

import (
	"log/slog"

	"github.com/outreach/outreach/contact"
)

// LogValue logs a request without its phone number, of which only the
// last two digits show.
func (r Request) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("customer_id", r.CustomerID), slog.String("channel", string(r.Channel)),
		slog.String("purpose", r.Purpose), slog.Bool("claim", r.Claim)}
	if r.Phone != "" {
		attrs = append(attrs, slog.Any("phone", contact.PhoneNumber(r.Phone)))
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
		attrs = append(attrs, slog.Any("phone", contact.PhoneNumber(s.Phone)))
	}
	return slog.GroupValue(attrs...)
}
