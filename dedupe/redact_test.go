package dedupe_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/outreach/outreach/dedupe"
)

func TestLogValuesHidePhones(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("x", "request", dedupe.Request{CustomerID: "c1", Channel: "call", Phone: "+4791555501"},
		"entry", dedupe.Suppression{List: "dnc", Phone: "+4791555502", Reason: "mail me at kari@example.no"})
	out := buf.String()
	for _, secret := range []string{"9155550", "kari"} {
		if strings.Contains(out, secret) {
			t.Errorf("the log shows %q: %s", secret, out)
		}
	}
	for _, kept := range []string{`"customer_id":"c1"`, `"phone":"…01"`, `"phone":"…02"`, `"list":"dnc"`} {
		if !strings.Contains(out, kept) {
			t.Errorf("the log lacks %s: %s", kept, out)
		}
	}
}
