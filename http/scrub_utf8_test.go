package http_test

import (
	"encoding/json"
	"strings"
	"testing"

	httpapi "github.com/outreach/outreach/http"
)

// TestScrubRejectsInvalidUTF8: a list to scrub that is not UTF-8 (a file
// saved as Latin-1, a broken byte in any column) is refused with a 400
// naming its line and column, never scrubbed with U+FFFD in its place.
func TestScrubRejectsInvalidUTF8(t *testing.T) {
	t.Parallel()
	env := newListsEnv(t, listsOptions{})
	for _, tt := range []struct{ name, body, message string }{
		{"customer id", "customer_id,name\nc1,Ann\n\xc3\x28,Bob\n", "line 3: customer_id: must be valid UTF-8"},
		{"latin-1 name", "customer_id,name\nc1,J\xf8rgen\n", "line 2: name: must be valid UTF-8"},
		{"quoted over two lines", "customer_id,name\nc1,Ann\nc2,\"Bob\nJ\xf8rgen\"\n", "line 3: name: must be valid UTF-8"},
		{"header", "customer_id,n\xe6vn\nc1,x\n", "line 1: the header must be valid UTF-8"},
	} {
		for _, accept := range []string{"text/csv", "application/json"} {
			rec := upload(t, env.h, "POST", "/v1/lists/scrub", strings.NewReader(tt.body), "Accept: "+accept)
			var e apiErr
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || rec.Code != 400 || e.Error.Code != "invalid" ||
				e.Error.Field != "list" || !strings.Contains(e.Error.Message, tt.message) {
				t.Errorf("%s, Accept %s: %d %s, want a 400 with %q", tt.name, accept, rec.Code, rec.Body, tt.message)
			}
		}
	}
}

// TestScrubInvalidUTF8MidStream: invalid UTF-8 found once the answer has
// begun ends the CSV with the error row and trailer naming the line; the
// rows after it are not checked.
func TestScrubInvalidUTF8MidStream(t *testing.T) {
	t.Parallel()
	env := newListsEnv(t, listsOptions{batch: 2})
	list := "customer_id,name\nc1,Ann\nc4,Bob\nc4,Cat\nc4,D\xe6n\nc4,Eve\n"
	rec := upload(t, env.h, "POST", "/v1/lists/scrub", strings.NewReader(list))
	if rec.Code != 200 {
		t.Fatalf("status %d, want 200 (the answer had begun): %s", rec.Code, rec.Body)
	}
	if strings.Contains(rec.Body.String(), "\uFFFD") || strings.Contains(rec.Body.String(), "Eve") {
		t.Errorf("the bad row, or one after it, was scrubbed:\n%s", rec.Body)
	}
	rows := readCSV(t, rec.Body.Bytes())
	if last := rows[len(rows)-1]; len(rows) != 5 || last[0] != "" || last[3] != httpapi.ScrubErrorCode ||
		!strings.Contains(last[4], "line 5: name: must be valid UTF-8") {
		t.Errorf("rows %q, want 3 checked then the error row naming line 5", rows)
	}
	if tr := rec.Result().Trailer.Get(httpapi.ScrubStatusTrailer); !strings.HasPrefix(tr, "error: line 5: name: must be valid UTF-8") {
		t.Errorf("trailer = %q, want the error naming line 5", tr)
	}
}
