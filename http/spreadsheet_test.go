package http_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/dedupe"
	"github.com/outreach/outreach/dedupe/check"
	httpapi "github.com/outreach/outreach/http"
)

// TestScrubIsSpreadsheetSafe scrubs the cells of issue 11 that a
// spreadsheet would run: each comes back with a ' before it, phone numbers
// and plain numbers come back unchanged, ?raw=true sends every cell as it
// came, and a scrub of the escaped answer reads the same customers.
func TestScrubIsSpreadsheetSafe(t *testing.T) {
	t.Parallel()
	env := newListsEnv(t, listsOptions{})
	// The customer "=1+1" opted out: a re-scrub must find them again.
	optOut := contact.Event{ID: "o-formula", Type: contact.TypeOptOut, CustomerID: "=1+1", At: now.Add(-time.Hour)}
	if err := optOut.Normalize(contact.Defaults{}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.store.Apply(context.Background(), []contact.Event{optOut}); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ in, want string }{
		{"=1+1", "'=1+1"},
		{"=HYPERLINK(\"http://x.test\",\"click\")", "'=HYPERLINK(\"http://x.test\",\"click\")"},
		{"@SUM(1+1)", "'@SUM(1+1)"},
		{"+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"},
		{"-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"},
		{"\t=1+1", "'\t=1+1"},
		{"\r=1+1", "'\r=1+1"},
		{"+", "'+"},
		{"-", "'-"},
		{"+47 915 55 501", "+47 915 55 501"},
		{"+1 (555) 010-0199", "+1 (555) 010-0199"},
		{"-5", "-5"},
		{"-1.5", "-1.5"},
		{"1+1", "1+1"},
		{"a=b", "a=b"},
		{"'=1+1", "'=1+1"}, // escaped already: not twice
		{"", ""},
	}
	var list strings.Builder
	list.WriteString("customer_id,note,@header\n")
	list.WriteString("=1+1,x,\n")
	for _, tt := range tests {
		list.WriteString("c4," + csvCell(tt.in) + ",\n")
	}
	rec := upload(t, env.h, "POST", "/v1/lists/scrub", strings.NewReader(list.String()))
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	rows := readCSV(t, rec.Body.Bytes())
	if h := rows[0]; h[2] != "'@header" {
		t.Errorf("header %q: want the header's cells escaped too", h)
	}
	if r := rows[1]; r[0] != "'=1+1" || r[4] != "opted_out" {
		t.Errorf("customer =1+1: %q; want the id escaped, and opted_out", r)
	}
	for i, tt := range tests {
		if got := rows[i+2][1]; got != tt.want {
			t.Errorf("%q: got %q, want %q", tt.in, got, tt.want)
		}
	}

	// Raw, for machines: as it came.
	raw := readCSV(t, upload(t, env.h, "POST", "/v1/lists/scrub?raw=true", strings.NewReader(list.String())).Body.Bytes())
	if r := raw[1]; r[0] != "=1+1" || r[4] != "opted_out" {
		t.Errorf("raw: customer =1+1: %q", r)
	}
	for i, tt := range tests {
		if got := raw[i+2][1]; got != tt.in {
			t.Errorf("raw: %q came back as %q", tt.in, got)
		}
	}

	// The escaped answer, scrubbed again: the same customers, the same
	// verdicts, the same cells.
	again := upload(t, env.h, "POST", "/v1/lists/scrub", strings.NewReader(rec.Body.String()))
	if again.Body.String() != rec.Body.String() {
		t.Errorf("a re-scrub of the answer differs:\n%s\nwant:\n%s", again.Body, rec.Body)
	}

	if rec := upload(t, env.h, "POST", "/v1/lists/scrub?raw=yes", strings.NewReader(list.String())); rec.Code != 400 || !strings.Contains(rec.Body.String(), `"field":"raw"`) {
		t.Errorf("raw=yes: %d %s, want 400 naming raw", rec.Code, rec.Body)
	}
}

// csvCell quotes a cell for a CSV list.
func csvCell(v string) string {
	if strings.ContainsAny(v, ",\"\r\n") {
		return `"` + strings.ReplaceAll(v, `"`, `""`) + `"`
	}
	return v
}

// formulaReasons is the check service with reasons whose sentence begins
// with a formula, as one quoting user text could.
type formulaReasons struct{ memChecker }

func (f *formulaReasons) Scrub(ctx context.Context, o check.ScrubOptions, next func() (check.Row, error), emit func([]check.Verdict, error) error) error {
	return f.memChecker.Scrub(ctx, o, next, func(vs []check.Verdict, end error) error {
		for i := range vs {
			vs[i].Result.Allowed = false
			vs[i].Result.Reasons = []dedupe.Reason{{Code: "do_not_call", Message: "=HYPERLINK(\"http://x.test\")"}}
		}
		return emit(vs, end)
	})
}

// TestScrubDetailIsSpreadsheetSafe checks the detail column: a reason's
// sentence may quote what a user wrote.
func TestScrubDetailIsSpreadsheetSafe(t *testing.T) {
	t.Parallel()
	h := httpapi.New(httpapi.Config{
		Producer: &memProducer{}, Timelines: &memTimelines{}, Checker: &formulaReasons{memChecker{facts: map[string]contact.Facts{}}},
		Now: func() time.Time { return now },
	}).Handler()
	rows := readCSV(t, upload(t, h, "POST", "/v1/lists/scrub", strings.NewReader("customer_id\nc1\n")).Body.Bytes())
	if got := rows[1][3]; got != "'=HYPERLINK(\"http://x.test\")" {
		t.Errorf("detail %q, want it escaped", got)
	}
}
