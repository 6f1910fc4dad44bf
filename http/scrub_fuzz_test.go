package http_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	httpapi "github.com/outreach/outreach/http"
)

// FuzzScrubCSV scrubs arbitrary uploads and checks the answer against
// encoding/csv's reading of the same bytes: a scrub answers 200 with every
// row unchanged (round trip), 200 ending in an error row exactly when the
// CSV breaks after the first batch, or 400 exactly when the upload cannot be
// a list; never anything else.
func FuzzScrubCSV(f *testing.F) {
	for _, seed := range []string{
		"customer_id\nc1\n",
		"customer_id,name\nc1,Ann\nc2,\"Bob, Jr.\"\n",
		"\xef\xbb\xbfcustomer_id,note\r\nc1,\"two\r\nlines\"\r\n",
		"customer_id,price,channel\nc1,abc,call\n,1,fax\nc3,2,sms\n",
		"customer_id,name\nc1,Ann\nc2,\"Bob\nc3,Cat\n",
		"customer_id,name\nc1,Ann\nc2\n",
		"name\nAnn\n",
		"customer_id,allowed,detail\nc1,true,x\n",
		"CUSTOMER_ID ,customer_id\nc1,c2\n",
		"",
		"\"",
		"customer_id,name\nc1,Ann\n" + strings.Repeat(",", 600) + "\n",
		"customer_id" + strings.Repeat(",", 600) + "\n",
		"customer_id,note\n=1+1,@x\n'=1+1,-2+3\nc1,+47 915 55 501\nc2,\"\tx\"\n",
	} {
		f.Add([]byte(seed))
	}
	h := httpapi.New(httpapi.Config{
		Producer: &memProducer{}, Timelines: &memTimelines{}, Checker: &memChecker{}, // no facts: every check is allowed
		Now:   func() time.Time { return now },
		Lists: httpapi.ListsConfig{ScrubBatch: 3},
	}).Handler()
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 32<<10 { // well below MaxCSVRecord
			return
		}
		req := httptest.NewRequest("POST", "/v1/lists/scrub", bytes.NewReader(data))
		req.Header.Set("Content-Type", "text/csv")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)

		// What encoding/csv makes of the upload: the records up to the
		// first error.
		var want [][]string
		r := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))))
		var csvErr error
		for {
			rec, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err == nil && !utf8.ValidString(strings.Join(rec, "")) {
				err = errors.New("a record is not UTF-8") // refused too, as a file in another encoding
			}
			if err == nil && len(rec) > httpapi.MaxCSVColumns {
				err = errors.New("a record of too many fields") // refused too, as it arrives
			}
			if err != nil {
				csvErr = err
				break
			}
			want = append(want, rec)
		}
		headerOK := len(want) > 0 && hasOneCustomerID(want[0])

		switch rec.Code {
		case 400:
			var e apiErr
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error.Code != "invalid" {
				t.Fatalf("400 with body %q", rec.Body)
			}
			if headerOK && csvErr == nil {
				t.Fatalf("400 %q for an upload encoding/csv reads whole: %q", e.Error.Message, data)
			}
			if len(want) > 0 && !strings.Contains(e.Error.Message, "line ") {
				t.Fatalf("400 %q does not name a line", e.Error.Message)
			}
			return
		case 200:
		default:
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		if !headerOK {
			t.Fatalf("200 for an upload without a customer_id column: %q", data)
		}
		got, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(rec.Body.Bytes(), []byte("\xef\xbb\xbf")))).ReadAll()
		if err != nil {
			t.Fatalf("the answer is not CSV: %v\n%q", err, rec.Body)
		}
		status := rec.Result().Trailer.Get(httpapi.ScrubStatusTrailer)
		if csvErr != nil {
			// The CSV broke after the first batch: an error row ends it.
			last := got[len(got)-1]
			if status == "ok" || last[len(last)-2] != httpapi.ScrubErrorCode || !strings.Contains(last[len(last)-1], "line ") {
				t.Fatalf("the scrub of a broken upload (%v) ends with %q, trailer %q", csvErr, last, status)
			}
			got = got[:len(got)-1]
		} else if status != "ok" {
			t.Fatalf("trailer %q after a whole upload", status)
		}

		// Round trip: each answer row is its input row minus an earlier
		// scrub's columns, plus allowed, reasons and detail.
		keep := func(row []string) []string {
			var out []string
			for i, v := range row {
				if !slices.Contains([]string{"allowed", "reasons", "detail"}, strings.ToLower(strings.TrimSpace(want[0][i]))) {
					out = append(out, v)
				}
			}
			return out
		}
		if len(got) != len(want) {
			t.Fatalf("%d answer rows for %d input rows", len(got), len(want))
		}
		for i := range want {
			in, out := keep(want[i]), got[i]
			for j, v := range in {
				in[j] = spreadsheetEscaped(v)
			}
			if len(out) != len(in)+3 || !slices.Equal(out[:len(in)], in) {
				t.Fatalf("row %d: %q for input %q", i, out, want[i])
			}
			if i == 0 {
				if !slices.Equal(out[len(in):], []string{"allowed", "reasons", "detail"}) {
					t.Fatalf("header %q", out)
				}
				continue
			}
			switch allowed, reasons, detail := out[len(in)], out[len(in)+1], out[len(in)+2]; {
			case allowed == "true" && reasons == "" && detail == "":
			case allowed == "false" && reasons == "invalid" && detail != "":
			default:
				t.Fatalf("row %d: allowed %q reasons %q detail %q", i, allowed, reasons, detail)
			}
		}
	})
}

// spreadsheetEscaped is v as a scrub writes it: with a ' before it when a
// spreadsheet would run it (OWASP's CSV injection), except for numbers and
// phone numbers.
func spreadsheetEscaped(v string) string {
	if v == "" {
		return v
	}
	switch v[0] {
	case '=', '@', '\t', '\r':
		return "'" + v
	case '+', '-':
		if !numberOrPhone.MatchString(v[1:]) {
			return "'" + v
		}
	}
	return v
}

var numberOrPhone = regexp.MustCompile(`^[0-9 ().-]*[0-9][0-9 ().-]*$`)

// hasOneCustomerID reports whether a header names customer_id exactly once
// and no other column of the scrub twice.
func hasOneCustomerID(header []string) bool {
	seen := map[string]int{}
	for _, h := range header {
		seen[strings.ToLower(strings.TrimSpace(h))]++
	}
	for _, c := range []string{"customer_id", "channel", "purpose", "product", "price", "currency", "phone", "timezone", "campaign", "allowed", "reasons", "detail"} {
		if seen[c] > 1 {
			return false
		}
	}
	return seen["customer_id"] == 1
}
