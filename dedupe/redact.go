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
