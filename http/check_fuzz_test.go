package http_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/outreach/outreach/contact"
	httpapi "github.com/outreach/outreach/http"
)

// requestFields are the fields a check request's errors may name.
var requestFields = []string{"", "customer_id", "channel", "purpose", "campaign", "agent", "product", "offer", "offer.id",
	"offer.price", "offer.currency", "offer.expires_at", "phone", "timezone", "at", "claim"}

// FuzzCheckRequest posts arbitrary bodies to POST /v1/check, through the
// request decoding (decodeRequest) and the whole handler, with a checker
// that claims what it allows. The answer is a decision (200), or a 400
// naming one of the request's fields or none (invalid UTF-8: the path of
// the value, whatever its name); never a 5xx. A body that is not valid UTF-8 is
// never decided on. A request that was decided round-trips: sent again as
// the checker saw it, it is decoded to the same request. Seeds:
// testdata/fuzz/FuzzCheckRequest.
func FuzzCheckRequest(f *testing.F) {
	ch := &memChecker{facts: map[string]contact.Facts{}}
	h := httpapi.New(httpapi.Config{Producer: &memProducer{}, Timelines: &memTimelines{}, Checker: ch, Now: func() time.Time { return now }}).Handler()
	f.Fuzz(func(t *testing.T, body []byte) {
		ch.got = nil
		rec, e := do(t, h, "POST", "/v1/check", "application/json", string(body))
		switch rec.Code {
		case http.StatusOK:
			if !utf8.Valid(body) {
				t.Fatalf("decided on a body of invalid UTF-8: %q", body)
			}
			if len(ch.got) != 1 {
				t.Fatalf("200 without a check")
			}
		case http.StatusBadRequest:
			field := e.Error.Field
			if e.Error.Code != "invalid" || !utf8.ValidString(field) || e.Error.Index != nil ||
				!slices.Contains(requestFields, field) && !strings.Contains(e.Error.Message, "UTF-8") {
				t.Fatalf("400 %+v: want invalid naming a request field (or, for invalid UTF-8, the path of a value)", e.Error)
			}
			return
		default:
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		first := ch.got[0]
		again, err := json.Marshal(first)
		if err != nil {
			t.Fatalf("the decoded request does not encode: %v", err)
		}
		ch.got = nil
		if rec, _ := do(t, h, "POST", "/v1/check", "application/json", string(again)); rec.Code != http.StatusOK || len(ch.got) != 1 {
			t.Fatalf("the request sent again (%s): %d %s", again, rec.Code, rec.Body)
		}
		if second, _ := json.Marshal(ch.got[0]); string(second) != string(again) {
			t.Fatalf("round trip changed the request:\n%s\n%s", again, second)
		}
	})
}
