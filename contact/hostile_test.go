package contact_test

import (
	"strings"
	"testing"
	"time"

	"github.com/outreach/outreach/contact"
)

// TestDecodeRejectsHostileInput covers what the consumer must dead-letter
// rather than store: times out of range and invalid UTF-8, each named.
func TestDecodeRejectsHostileInput(t *testing.T) {
	const base = `"id":"1","type":"contact","customer_id":"c","channel":"call"`
	far := time.Now().AddDate(101, 0, 0).UTC().Format(time.RFC3339)
	for name, tt := range map[string]struct{ in, field string }{
		"at in year 9999":                   {`{` + base + `,"at":"9999-12-31T23:59:59Z"}`, "at"},
		"at past 9999 in UTC":               {`{` + base + `,"at":"9999-12-31T23:59:59-01:00"}`, "at"},
		"at before 1970":                    {`{` + base + `,"at":"1969-07-20T20:17:00Z"}`, "at"},
		"at over 100 years ahead":           {`{` + base + `,"at":"` + far + `"}`, "at"},
		"offer expiry in year 9999":         {`{` + base + `,"at":"2026-01-02T03:04:05Z","offer":{"expires_at":"9999-12-31T00:00:00Z"}}`, "offer.expires_at"},
		"invalid UTF-8 in agent":            {`{` + base + `,"at":"2026-01-02T03:04:05Z","agent":"a` + "\xff" + `b"}`, "agent"},
		"invalid UTF-8 in offer id":         {`{` + base + `,"at":"2026-01-02T03:04:05Z","offer":{"id":"` + "\xc3\x28" + `"}}`, "offer.id"},
		"invalid UTF-8 in an unknown field": {`{` + base + `,"at":"2026-01-02T03:04:05Z","note":"` + "\xed\xa0\x80" + `"}`, "note"},
		"invalid UTF-8 in a name":           {`{` + base + `,"at":"2026-01-02T03:04:05Z","` + "\xff" + `":1}`, ""},
		"invalid UTF-8 in malformed JSON":   {`{"id":` + "\xff", ""},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := contact.Decode([]byte(tt.in), contact.Defaults{})
			var ce *contact.Error
			if !asError(err, &ce) || ce.Code != contact.EInvalid || ce.Field != tt.field {
				t.Fatalf("Decode = %v, want invalid naming %q", err, tt.field)
			}
			if strings.Contains(name, "UTF-8") && !strings.Contains(ce.Message, "UTF-8") && tt.field != "" {
				t.Errorf("message %q does not say UTF-8", ce.Message)
			}
		})
	}
}

func TestCheckTime(t *testing.T) {
	if err := contact.CheckTime("at", time.Now().AddDate(99, 0, 0)); err != nil {
		t.Errorf("99 years ahead: %v", err)
	}
	if err := contact.CheckTime("at", time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Errorf("1970: %v", err)
	}
	for _, bad := range []time.Time{time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC), time.Now().AddDate(100, 0, 1), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)} {
		if err := contact.CheckTime("x", bad); contact.ErrorCode(err) != contact.EInvalid || !strings.HasPrefix(err.Error(), "x: ") {
			t.Errorf("CheckTime(%v) = %v, want invalid naming x", bad, err)
		}
	}
}

// TestEveryTypeChecksItsEnums sends enumerated fields with values outside
// their lists on events of types that do not use them: the store keeps
// them as indexes, so one let through was stored undecodable, and every
// check of the customer answered unavailable from then on.
func TestEveryTypeChecksItsEnums(t *testing.T) {
	const at = `"at":"2026-01-02T03:04:05Z"`
	for name, tt := range map[string]struct{ in, field string }{
		"channel of a complaint": {`{"id":"1","type":"complaint","customer_id":"c","case_id":"9",` + at + `,"channel":"fax"}`, "channel"},
		"purpose of an opt-out":  {`{"id":"1","type":"opt_out","customer_id":"c",` + at + `,"purpose":"gossip"}`, "purpose"},
		"outcome of a purchase":  {`{"id":"1","type":"purchase","customer_id":"c","product":"p",` + at + `,"outcome":"maybe"}`, "outcome"},
		"direction of an opt-in": {`{"id":"1","type":"opt_in","customer_id":"c",` + at + `,"direction":"sideways"}`, "direction"},
		"channel of a profile":   {`{"id":"1","type":"profile","customer_id":"c","timezone":"UTC",` + at + `,"channel":"fax"}`, "channel"},
		"purpose of a complaint": {`{"id":"1","type":"complaint","customer_id":"c","case_id":"9",` + at + `,"purpose":"x"}`, "purpose"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := contact.Decode([]byte(tt.in), contact.Defaults{})
			var ce *contact.Error
			if !asError(err, &ce) || ce.Code != contact.EInvalid || ce.Field != tt.field {
				t.Fatalf("Decode = %v, want invalid naming %q", err, tt.field)
			}
		})
	}
	ok := `{"id":"1","type":"complaint","customer_id":"c","case_id":"9",` + at + `,"channel":"call","purpose":"service","outcome":"complaint","direction":"inbound"}`
	if _, err := contact.Decode([]byte(ok), contact.Defaults{}); err != nil {
		t.Errorf("a complaint with valid enums: %v", err)
	}
}
