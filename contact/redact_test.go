package contact_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/outreach/outreach/contact"
)

// TestLogValuesHidePersonalData logs personal data through the types that
// carry it, with a plain handler and no redacting backstop.
func TestLogValuesHidePersonalData(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	e := contact.Event{ID: "ev-1", Type: contact.TypeComplaint, CustomerID: "c42", At: time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC),
		CaseID: "77", Summary: "call her on +47 915 55 501 or mail kari@example.no"}
	log.Info("x",
		"phone", contact.PhoneNumber("+4791555501"),
		"email", contact.EmailAddress("kari.nordmann@example.no"),
		"event", e,
		"error", contact.Invalid("phone", "is not a phone number; got %q", "+47 915 55 502"),
	)
	out := buf.String()
	for _, secret := range []string{"9155550", "91555501", "915 55 50", "kari", "example.no"} {
		if strings.Contains(out, secret) {
			t.Errorf("the log shows %q: %s", secret, out)
		}
	}
	for _, kept := range []string{`"phone":"…01"`, `"email":"…@…"`, `"id":"ev-1"`, `"customer_id":"c42"`, `"field":"phone"`, "is not a phone number", `"code":"invalid"`} {
		if !strings.Contains(out, kept) {
			t.Errorf("the log lacks %s: %s", kept, out)
		}
	}
}
