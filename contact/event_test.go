package contact_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/outreach/outreach/contact"
)

func TestDecodeValid(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want func(e contact.Event) bool
	}{
		{"contact defaults to outbound", `{"id":"1","type":"contact","customer_id":"c","at":"2026-01-02T03:04:05Z","channel":"call"}`,
			func(e contact.Event) bool { return e.Direction == contact.Outbound }},
		{"time zone is normalised to UTC", `{"id":"1","type":"contact","customer_id":"c","at":"2026-01-02T05:04:05+02:00","channel":"sms"}`,
			func(e contact.Event) bool {
				return e.At.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) && e.At.Location() == time.UTC
			}},
		{"unknown fields are ignored", `{"id":"1","type":"purchase","customer_id":"c","at":"2026-01-02T03:04:05Z","product":"p","colour":"red"}`,
			func(e contact.Event) bool { return e.Product == "p" }},
		{"complaint defaults to opened", `{"id":"1","type":"complaint","customer_id":"c","at":"2026-01-02T03:04:05Z","case_id":"77"}`,
			func(e contact.Event) bool { return e.Status == contact.ComplaintOpened }},
		{"opt-out of every channel", `{"id":"1","type":"opt_out","customer_id":"c","at":"2026-01-02T03:04:05Z"}`,
			func(e contact.Event) bool { return e.Channel == "" }},
		{"offer with expiry", `{"id":"1","type":"contact","customer_id":"c","at":"2026-01-02T03:04:05Z","channel":"mail","offer":{"id":"o","price":0,"currency":"EUR","expires_at":"2026-02-01T00:00:00+01:00"}}`,
			func(e contact.Event) bool {
				return e.Offer != nil && e.Offer.Price != nil && *e.Offer.Price == (contact.Money{Minor: 0, Currency: "EUR"}) && e.Offer.ExpiresAt.Equal(time.Date(2026, 1, 31, 23, 0, 0, 0, time.UTC))
			}},
		{"a price without a currency is in the default currency", `{"id":"1","type":"purchase","customer_id":"c","at":"2026-01-02T03:04:05Z","product":"p","price":39.9}`,
			func(e contact.Event) bool { return *e.Price == contact.Money{Minor: 3990, Currency: "EUR"} }},
		{"a price in yen has no decimals", `{"id":"1","type":"purchase","customer_id":"c","at":"2026-01-02T03:04:05Z","product":"p","price":4500,"currency":"JPY"}`,
			func(e contact.Event) bool { return *e.Price == contact.Money{Minor: 4500, Currency: "JPY"} }},
		{"times keep milliseconds", `{"id":"1","type":"opt_in","customer_id":"c","at":"2026-01-02T03:04:05.123456Z"}`,
			func(e contact.Event) bool { return e.At.Equal(time.Date(2026, 1, 2, 3, 4, 5, 123e6, time.UTC)) }},
		{"a profile", `{"id":"1","type":"profile","customer_id":"c","at":"2026-01-02T03:04:05Z","timezone":"Europe/Oslo","phones":["915 55 501"]}`,
			func(e contact.Event) bool {
				return e.Timezone == "Europe/Oslo" && len(e.Phones) == 1 && e.Phones[0] == "+4791555501"
			}},
		{"a 128-character customer id", `{"id":"1","type":"opt_in","customer_id":"` + strings.Repeat("é", 128) + `","at":"2026-01-02T03:04:05Z"}`,
			func(e contact.Event) bool { return len([]rune(e.CustomerID)) == 128 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := contact.Decode([]byte(tt.in), contact.Defaults{})
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !tt.want(e) {
				t.Errorf("Decode = %+v", e)
			}
		})
	}
}

func TestDecodeInvalidNamesTheField(t *testing.T) {
	const base = `"id":"1","customer_id":"c","at":"2026-01-02T03:04:05Z"`
	tests := []struct{ name, in, field string }{
		{"not JSON", `hello`, ""},
		{"trailing data", `{` + base + `,"type":"opt_in"} {}`, ""},
		{"missing id", `{"type":"opt_in","customer_id":"c","at":"2026-01-02T03:04:05Z"}`, "id"},
		{"missing type", `{` + base + `}`, "type"},
		{"unknown type", `{` + base + `,"type":"refund"}`, "type"},
		{"missing customer", `{"id":"1","type":"opt_in","at":"2026-01-02T03:04:05Z"}`, "customer_id"},
		{"customer too long", `{"id":"1","type":"opt_in","customer_id":"` + strings.Repeat("x", 129) + `","at":"2026-01-02T03:04:05Z"}`, "customer_id"},
		{"customer with a newline", `{"id":"1","type":"opt_in","customer_id":"a\nb","at":"2026-01-02T03:04:05Z"}`, "customer_id"},
		{"blank customer", `{"id":"1","type":"opt_in","customer_id":"  ","at":"2026-01-02T03:04:05Z"}`, "customer_id"},
		{"missing time", `{"id":"1","type":"opt_in","customer_id":"c"}`, "at"},
		{"bad time", `{"id":"1","type":"opt_in","customer_id":"c","at":"2026-13-01"}`, "at"},
		{"time as number", `{"id":"1","type":"opt_in","customer_id":"c","at":5}`, "at"},
		{"contact without channel", `{` + base + `,"type":"contact"}`, "channel"},
		{"unknown channel", `{` + base + `,"type":"contact","channel":"fax"}`, "channel"},
		{"bad direction", `{` + base + `,"type":"contact","channel":"call","direction":"sideways"}`, "direction"},
		{"bad purpose", `{` + base + `,"type":"contact","channel":"call","purpose":"gossip"}`, "purpose"},
		{"bad outcome", `{` + base + `,"type":"contact","channel":"call","outcome":"maybe"}`, "outcome"},
		{"negative offer price", `{` + base + `,"type":"contact","channel":"call","offer":{"price":-1}}`, "offer.price"},
		{"offer price as string", `{` + base + `,"type":"contact","channel":"call","offer":{"price":"9"}}`, "offer.price"},
		{"offer price as string with a currency", `{` + base + `,"type":"contact","channel":"call","offer":{"price":"9","currency":"EUR"}}`, "offer.price"},
		{"bad offer expiry", `{` + base + `,"type":"contact","channel":"call","offer":{"expires_at":"soon"}}`, "offer.expires_at"},
		{"bad currency", `{` + base + `,"type":"purchase","product":"p","currency":"euro"}`, "currency"},
		{"three capitals that are no currency", `{` + base + `,"type":"purchase","product":"p","price":5,"currency":"ABC"}`, "currency"},
		{"lower-case currency", `{` + base + `,"type":"purchase","product":"p","price":5,"currency":"eur"}`, "currency"},
		{"no currency", `{` + base + `,"type":"purchase","product":"p","price":5,"currency":"XXX"}`, "currency"},
		{"more decimals than the currency has", `{` + base + `,"type":"purchase","product":"p","price":39.999,"currency":"EUR"}`, "price"},
		{"decimals in yen", `{` + base + `,"type":"purchase","product":"p","price":45.5,"currency":"JPY"}`, "price"},
		{"a huge price", `{` + base + `,"type":"purchase","product":"p","price":1e30}`, "price"},
		{"price as a string", `{` + base + `,"type":"purchase","product":"p","price":"5"}`, "price"},
		{"offer in a bad currency", `{` + base + `,"type":"contact","channel":"call","offer":{"price":5,"currency":"QQQ"}}`, "offer.currency"},
		{"profile without zone or phones", `{` + base + `,"type":"profile"}`, "timezone"},
		{"profile with a bad zone", `{` + base + `,"type":"profile","timezone":"Mars/Olympus"}`, "timezone"},
		{"profile with a bad phone", `{` + base + `,"type":"profile","phones":["call me"]}`, "phones[0]"},
		{"a time zone on a contact", `{` + base + `,"type":"contact","channel":"call","timezone":"Europe/Oslo"}`, "timezone"},
		{"purchase without product", `{` + base + `,"type":"purchase"}`, "product"},
		{"negative purchase price", `{` + base + `,"type":"purchase","product":"p","price":-3}`, "price"},
		{"complaint without case", `{` + base + `,"type":"complaint"}`, "case_id"},
		{"bad complaint status", `{` + base + `,"type":"complaint","case_id":"1","status":"pending"}`, "status"},
		{"opt-out of an unknown channel", `{` + base + `,"type":"opt_out","channel":"fax"}`, "channel"},
		{"agent too long", `{` + base + `,"type":"contact","channel":"call","agent":"` + strings.Repeat("a", 257) + `"}`, "agent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := contact.Decode([]byte(tt.in), contact.Defaults{})
			var ce *contact.Error
			if !asError(err, &ce) {
				t.Fatalf("Decode = %v, want a *contact.Error", err)
			}
			if ce.Code != contact.EInvalid || ce.Field != tt.field || ce.Message == "" {
				t.Errorf("error = %+v, want invalid naming %q", ce, tt.field)
			}
		})
	}
}

func asError(err error, target **contact.Error) bool {
	e, ok := err.(*contact.Error)
	*target = e
	return ok
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"id":"1","type":"contact","customer_id":"c","at":"2026-01-02T03:04:05Z","channel":"call","offer":{"price":5,"expires_at":"2026-02-01T00:00:00Z"}}`))
	f.Add([]byte(`{"id":"2","type":"complaint","customer_id":"c","at":"2026-01-02T03:04:05.123+01:00","case_id":"9","status":"resolved"}`))
	f.Add([]byte(`{"id":"3","type":"opt_out","customer_id":"c","at":"2026-01-02T03:04:05Z","channel":"sms"}`))
	f.Add([]byte(`[1,2]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := contact.Decode(data, contact.Defaults{})
		if err != nil {
			if contact.ErrorCode(err) != contact.EInvalid {
				t.Fatalf("Decode error %v is not invalid", err)
			}
			return
		}
		// A valid event round-trips through its canonical encoding.
		b, err := json.Marshal(&e)
		if err != nil {
			t.Fatal(err)
		}
		again, err := contact.Decode(b, contact.Defaults{})
		if err != nil {
			t.Fatalf("re-decoding %s: %v", b, err)
		}
		if !reflect.DeepEqual(e, again) {
			t.Fatalf("round trip changed the event:\n%+v\n%+v", e, again)
		}
	})
}

func TestDecodeRejectsMoreInvalidShapes(t *testing.T) {
	const base = `"id":"1","customer_id":"c","at":"2026-01-02T03:04:05Z"`
	for name, tt := range map[string]struct{ in, field string }{
		"stray closing brace":      {`{` + base + `,"type":"opt_in"}}`, ""},
		"non-ASCII currency":       {`{` + base + `,"type":"purchase","product":"p","currency":"€"}`, "currency"},
		"offer on a purchase":      {`{` + base + `,"type":"purchase","product":"p","offer":{"price":-5}}`, "offer.price"},
		"year out of JSON's range": {`{"id":"1","type":"opt_in","customer_id":"c","at":"0000-01-01T00:00:00+01:00"}`, "at"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := contact.Decode([]byte(tt.in), contact.Defaults{})
			var ce *contact.Error
			if !asError(err, &ce) || ce.Field != tt.field {
				t.Errorf("Decode = %v, want invalid naming %q", err, tt.field)
			}
		})
	}
}
