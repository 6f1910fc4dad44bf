package http_test

import (
	"context"
	"encoding/json"
	"iter"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/dedupe"
	httpapi "github.com/outreach/outreach/http"
)

// listRecorder is a Suppressions that keeps the entries of the last upload.
type listRecorder struct {
	idRecorder
	entries []dedupe.Suppression
}

var phoneDigits = regexp.MustCompile(`^\+?[0-9 ]{7,20}$`)

func (r *listRecorder) NormalizePhone(raw string) (string, error) {
	if !phoneDigits.MatchString(raw) {
		return "", contact.Invalid("phone", "%q is not a phone number", contact.Clip(raw))
	}
	return "+" + strings.NewReplacer(" ", "", "+", "").Replace(raw), nil
}

func (r *listRecorder) ReplaceSuppressions(_ context.Context, _ string, seq iter.Seq2[dedupe.Suppression, error]) (int, error) {
	r.entries = nil
	for e, err := range seq {
		if err != nil {
			return 0, err
		}
		r.entries = append(r.entries, e)
	}
	return len(r.entries), nil
}

var lineMessage = regexp.MustCompile(`^line [1-9][0-9]*: `)

// FuzzSuppressionCSV uploads arbitrary bytes as a suppression list. The
// answer is 200, with every entry written holding valid text that the
// upload holds, or a 400 naming the line at fault (or, for an empty upload,
// none); never anything else, and nothing written on a 400. Seeds:
// testdata/fuzz/FuzzSuppressionCSV.
func FuzzSuppressionCSV(f *testing.F) {
	rec := &listRecorder{}
	h := httpapi.New(httpapi.Config{Producer: &memProducer{}, Timelines: &memTimelines{}, Now: func() time.Time { return now },
		Lists: httpapi.ListsConfig{Suppressions: rec}}).Handler()
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) > 256<<10 {
			return
		}
		rec.entries = nil
		resp, e := do(t, h, "PUT", "/v1/suppressions/dnc", "text/csv", string(body))
		switch resp.Code {
		case http.StatusBadRequest:
			if e.Error.Code != "invalid" || !(e.Error.Field == "list" && lineMessage.MatchString(e.Error.Message) || e.Error.Field == "") {
				t.Fatalf("400 %+v: want the line at fault", e.Error)
			}
			return
		case http.StatusOK:
		default:
			t.Fatalf("status %d: %s", resp.Code, resp.Body)
		}
		var res struct{ Rows, Entries, Expired int }
		if err := json.Unmarshal(resp.Body.Bytes(), &res); err != nil {
			t.Fatal(err)
		}
		if res.Entries != len(rec.entries) || res.Expired > res.Rows || res.Entries > 2*(res.Rows-res.Expired) {
			t.Fatalf("answered %+v for %d entries written", res, len(rec.entries))
		}
		for _, en := range rec.entries {
			if (en.CustomerID == "") == (en.Phone == "") {
				t.Fatalf("entry %+v names not exactly one of customer and phone", en)
			}
			if en.CustomerID != "" && (contact.ValidCustomerID(en.CustomerID) != nil || !strings.Contains(string(body), en.CustomerID)) {
				t.Fatalf("entry %+v: its customer id is invalid or not in the upload", en)
			}
			if !utf8.ValidString(en.Reason) || en.ExpiresAt != nil && !en.ExpiresAt.After(now) {
				t.Fatalf("entry %+v: invalid reason or expired", en)
			}
		}
	})
}
