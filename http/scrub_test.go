package http_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/dedupe"
	"github.com/outreach/outreach/dedupe/check"
	httpapi "github.com/outreach/outreach/http"
)

func TestScrubCSV(t *testing.T) {
	t.Parallel()
	env := newListsEnv(t, listsOptions{})
	list := "customer_id,name,phone\n" +
		"c1,Ann,\n" +
		"c2,\"Bob, Jr.\",\n" +
		"c3,Cat,\n" +
		"c4,Dan,912 34 567\n" +
		"c4,Eve,+47 912 34 568\n" +
		"c5,Fay,\n" +
		"c6,Gus,\n"
	rec := upload(t, env.h, "POST", "/v1/lists/scrub?product=fiber-500&price=49&currency=EUR", strings.NewReader(list))
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "text/csv; charset=utf-8" {
		t.Fatalf("status %d %q: %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
	got := readCSV(t, rec.Body.Bytes())
	want := [][]string{
		{"customer_id", "name", "phone", "allowed", "reasons", "detail"},
		{"c1", "Ann", "", "false", "recent_contact", "called by a.jones 2h ago"},
		{"c2", "Bob, Jr.", "", "false", "already_purchased", "bought fiber-500 on 2026-10-21 (order 991)"},
		{"c3", "Cat", "", "false", "opted_out", "opted out of all channels on 2026-11-19"},
		{"c4", "Dan", "912 34 567", "false", "do_not_call", `on do-not-call list regulator until 2026-11-21: "national register"`},
		{"c4", "Eve", "+47 912 34 568", "true", "", ""},
		{"c5", "Fay", "", "false", "do_not_call", `on do-not-call list litigators: "sued us"`},
		{"c6", "Gus", "", "false", "open_complaint", "open complaint 77 since 24h ago"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("answer:\n%s\nwant:\n%q", rec.Body, want)
	}
	if tr := rec.Result().Trailer.Get(httpapi.ScrubStatusTrailer); tr != "ok" {
		t.Errorf("trailer %s = %q, want ok", httpapi.ScrubStatusTrailer, tr)
	}

	// Per-row columns override the query's defaults.
	list = "customer_id,channel,purpose,product,price,timezone,campaign\n" +
		"c1,email,,,,,\n" + // called, not emailed
		"c1,call,service,,,,\n" + // service is exempt from recent_contact
		"c2,call,,tv-basic,,,\n" + // another product
		"c4,call,,,,Asia/Tokyo,\n" + // 21:00 in Tokyo
		"c6,call,info,,,,\n" // a complaint only warns for info; warnings are left out
	rec = upload(t, env.h, "POST", "/v1/lists/scrub?channel=call&product=fiber-500", strings.NewReader(list))
	got = readCSV(t, rec.Body.Bytes())
	for i, want := range []string{"true/", "true/", "true/", "false/quiet_hours", "true/"} {
		if r := got[i+1]; r[7]+"/"+r[8] != want {
			t.Errorf("row %d %v: want %s", i+1, r, want)
		}
	}
}

func TestScrubRowErrors(t *testing.T) {
	t.Parallel()
	env := newListsEnv(t, listsOptions{})
	tests := []struct {
		name, row, detail string
	}{
		{"empty customer_id", ",call,,,,", "customer_id: is required"},
		{"blank customer_id", "  ,call,,,,", "customer_id: is required"},
		{"customer_id too long", strings.Repeat("x", 129) + ",call,,,,", "customer_id: must be at most 128 characters"},
		{"price not a number", "c4,call,abc,,,", "price: must be a number"},
		{"negative price", "c4,call,-5,,,", "price: must be a number, 0 or more"},
		{"unknown channel", "c4,fax,,,,", "channel: must be one of"},
		{"unknown purpose", "c4,call,,gossip,,", "purpose: must be one of"},
		{"unknown time zone", "c4,call,,,Mars/Olympus,", "timezone: must be an IANA time zone"},
		{"phone not a number", "c4,call,,,,not a phone", "phone: \"not a phone\" is not a phone number"},
		{"phone too short", "c4,call,,,,12", "phone: \"12\" is not a phone number"},
		{"bad currency", "c4,call,10 ,,,", ""}, // valid: spaces are trimmed; see below
	}
	var b strings.Builder
	b.WriteString("customer_id,channel,price,purpose,timezone,phone\n")
	for _, tt := range tests {
		b.WriteString(tt.row + "\n")
		b.WriteString("c4,call,,,,\n") // the rest of the list still goes through
	}
	rec := upload(t, env.h, "POST", "/v1/lists/scrub", strings.NewReader(b.String()))
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	rows := readCSV(t, rec.Body.Bytes())[1:]
	for i, tt := range tests {
		got, next := rows[2*i], rows[2*i+1]
		allowed, reasons, detail := got[6], got[7], got[8]
		if tt.detail == "" {
			if allowed != "true" {
				t.Errorf("%s: %v, want allowed", tt.name, got)
			}
		} else if allowed != "false" || reasons != "invalid" || !strings.HasPrefix(detail, tt.detail) {
			t.Errorf("%s: allowed=%s reasons=%q detail=%q; want invalid with %q", tt.name, allowed, reasons, detail, tt.detail)
		}
		if next[6] != "true" {
			t.Errorf("%s: the next row %v is not allowed", tt.name, next)
		}
	}

	// A currency column, and price and currency from the query.
	list := "customer_id,currency\nc4,eur\nc4,\n"
	rows = readCSV(t, upload(t, env.h, "POST", "/v1/lists/scrub?price=10&currency=EUR", strings.NewReader(list)).Body.Bytes())
	if r := rows[1]; r[3] != "invalid" || !strings.HasPrefix(r[4], "currency: must be an ISO 4217 code") {
		t.Errorf("bad currency: %v", r)
	}
	if r := rows[2]; r[2] != "true" {
		t.Errorf("query currency: %v", r)
	}
}

func TestScrubBrokenCSV(t *testing.T) {
	t.Parallel()
	env := newListsEnv(t, listsOptions{})
	tests := []struct {
		name, body, message string
	}{
		{"empty body", "", "the list is empty"},
		{"no customer_id column", "id,name\nc1,Ann\n", "line 1: the header has no customer_id column"},
		{"customer_id twice", "customer_id,Customer_ID\nc1,c2\n", "line 1: the column customer_id appears twice"},
		{"quote left open", "customer_id,name\nc1,Ann\nc2,\"Bob\nc3,Cat\n", "line 3: extraneous or missing \" in quoted-field"},
		{"bare quote", "customer_id,name\nc1,Ann\nc2,B\"ob\n", "line 3: bare \" in non-quoted-field"},
		{"too few fields", "customer_id,name\nc1,Ann\nc2,Bob\nc3\n", "line 4: 1 fields where the header has 2"},
		{"too many fields", "customer_id,name\r\nc1,Ann\r\nc2,Bob,x\r\n", "line 3: 3 fields where the header has 2"},
		{"broken header", "customer_id,\"name\nc1,Ann\n", "line 1: extraneous or missing"},
		{"a row too long", "customer_id,name\nc1,\"" + strings.Repeat("x", httpapi.MaxCSVRecord+10) + "\"\n", "line 2: a row longer than 64 KiB"},
		{"a quote left open", "customer_id,name\nc1,Ann\nc2,\"Bob\n" + strings.Repeat("c3,Cat\n", httpapi.MaxCSVRecord/7), "line 3: a row longer than 64 KiB"},
		{"fields count", "customer_id,name\nc1,Ann\nc2,\"Bob\n\"\n" + strings.Repeat(strings.Repeat("x", 120)+",", 500) + "\n", "line 5: a row longer than 64 KiB (each field counts 16 bytes"},
		{"too many columns", "customer_id" + strings.Repeat(",", httpapi.MaxCSVColumns) + "\nc1\n", "line 1: a row of more than 512 fields; a list may have at most 512 columns"},
		{"a row of 32,768 fields", "customer_id,name\nc1,Ann\n" + strings.Repeat(",", 32767) + "\n", "line 3: a row of more than 512 fields"},
		{"quoted commas do not count", "customer_id,name\nc1,\"" + strings.Repeat(",", 4000) + "\",x\n", "line 2: 3 fields where the header has 2"},
	}
	for _, tt := range tests {
		for _, accept := range []string{"text/csv", "application/json"} {
			rec := upload(t, env.h, "POST", "/v1/lists/scrub", strings.NewReader(tt.body), "Accept: "+accept)
			var e apiErr
			json.Unmarshal(rec.Body.Bytes(), &e)
			if rec.Code != 400 || e.Error.Code != "invalid" || e.Error.Field != "list" && tt.name != "empty body" || !strings.Contains(e.Error.Message, tt.message) {
				t.Errorf("%s, Accept %s: %d %s, want 400 with %q", tt.name, accept, rec.Code, rec.Body, tt.message)
			}
		}
	}
}

// TestScrubBrokenCSVMidStream breaks the list after the first batch, when
// the answer has begun.
func TestScrubBrokenCSVMidStream(t *testing.T) {
	t.Parallel()
	env := newListsEnv(t, listsOptions{batch: 2})
	list := "customer_id,name\nc1,Ann\nc4,Bob\nc4,Cat\nc4,\"Dan\nc4,Eve\n"
	rec := upload(t, env.h, "POST", "/v1/lists/scrub", strings.NewReader(list))
	if rec.Code != 200 {
		t.Fatalf("status %d, want 200 (the answer had begun): %s", rec.Code, rec.Body)
	}
	rows := readCSV(t, rec.Body.Bytes())
	if len(rows) != 5 {
		t.Fatalf("rows:\n%s", rec.Body)
	}
	last := rows[4]
	if last[0] != "" || last[2] != "false" || last[3] != httpapi.ScrubErrorCode || !strings.Contains(last[4], "line 5: extraneous or missing") {
		t.Errorf("the last row %q, want the error row naming line 5", last)
	}
	if tr := rec.Result().Trailer.Get(httpapi.ScrubStatusTrailer); !strings.HasPrefix(tr, "error: line 5:") {
		t.Errorf("trailer = %q, want the error", tr)
	}
	// A summary waits for the end, so it can still answer 400.
	rec = upload(t, env.h, "POST", "/v1/lists/scrub", strings.NewReader(list), "Accept: application/json")
	var e apiErr
	json.Unmarshal(rec.Body.Bytes(), &e)
	if rec.Code != 400 || !strings.Contains(e.Error.Message, "line 5") {
		t.Errorf("summary of a broken list: %d %s", rec.Code, rec.Body)
	}
}

func TestScrubOnlyAllowedAndSummary(t *testing.T) {
	t.Parallel()
	env := newListsEnv(t, listsOptions{batch: 3})
	list := "customer_id\nc1\nc2\nc3\nc4\nc5\nc6\n\nc7\n\"\"\nc8\n"
	rec := upload(t, env.h, "POST", "/v1/lists/scrub?only=allowed&product=fiber-500", strings.NewReader(list))
	got := readCSV(t, rec.Body.Bytes())
	if fmt.Sprint(got) != "[[customer_id allowed reasons detail] [c4 true  ] [c7 true  ] [c8 true  ]]" {
		t.Errorf("only=allowed:\n%s", rec.Body)
	}

	rec = upload(t, env.h, "POST", "/v1/lists/scrub?product=fiber-500", strings.NewReader(list), "Accept: application/json")
	if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		t.Fatalf("summary: %d %s", rec.Code, rec.Body)
	}
	var sum struct {
		Rows, Allowed, Invalid int
		Blocked                map[string]int
		Policy                 string
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &sum); err != nil {
		t.Fatal(err)
	}
	want := `{9 3 1 map[already_purchased:1 do_not_call:1 open_complaint:1 opted_out:1 recent_contact:1] live}`
	if fmt.Sprint(sum) != want {
		t.Errorf("summary %s, want %s", rec.Body, want)
	}
}

func TestScrubBOMAndCRLF(t *testing.T) {
	t.Parallel()
	env := newListsEnv(t, listsOptions{})
	list := "\xef\xbb\xbfCustomer_ID ,note\r\nc1,\"two\r\nlines\"\r\nc4,plain\r\n"
	rec := upload(t, env.h, "POST", "/v1/lists/scrub", strings.NewReader(list))
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if !bytes.HasPrefix(rec.Body.Bytes(), []byte("\xef\xbb\xbfCustomer_ID ,note,allowed")) {
		t.Errorf("the answer does not start with the BOM and the header unchanged: %q", rec.Body)
	}
	got := readCSV(t, rec.Body.Bytes())
	want := "[[Customer_ID  note allowed reasons detail] [c1 two\nlines false recent_contact called by a.jones 2h ago] [c4 plain true  ]]"
	if fmt.Sprint(got) != want {
		t.Errorf("rows %q, want %q", got, want)
	}
}

// TestRescrub scrubs a scrub's answer: its allowed, reasons and detail are
// replaced, not repeated.
func TestRescrub(t *testing.T) {
	t.Parallel()
	env := newListsEnv(t, listsOptions{})
	list := "customer_id,allowed,reasons,detail,name\nc1,true,,,Ann\nc4,false,recent_contact,old,Dan\n"
	got := readCSV(t, upload(t, env.h, "POST", "/v1/lists/scrub", strings.NewReader(list)).Body.Bytes())
	want := "[[customer_id name allowed reasons detail] [c1 Ann false recent_contact called by a.jones 2h ago] [c4 Dan true  ]]"
	if fmt.Sprint(got) != want {
		t.Errorf("rescrub: %q, want %q", got, want)
	}
}

func TestScrubWhatIfPolicy(t *testing.T) {
	t.Parallel()
	lenient, err := dedupe.ParsePolicy([]byte("cooldowns: {call: 1h}\npurchase_lookback: 7d\n"))
	if err != nil {
		t.Fatal(err)
	}
	env := newListsEnv(t, listsOptions{presets: map[string]*dedupe.Policy{"lenient": lenient}})
	list := "customer_id\nc1\nc2\nc5\n"
	scrub := func(path string, body io.Reader, contentType string) []string {
		t.Helper()
		rec := upload(t, env.h, "POST", path, body, "Content-Type: "+contentType)
		if rec.Code != 200 {
			t.Fatalf("%s: %d %s", path, rec.Code, rec.Body)
		}
		var out []string
		for _, r := range readCSV(t, rec.Body.Bytes())[1:] {
			out = append(out, r[1])
		}
		return out
	}
	live := "[false false false]"
	if got := fmt.Sprint(scrub("/v1/lists/scrub?product=fiber-500", strings.NewReader(list), "text/csv")); got != live {
		t.Errorf("live: %s, want %s", got, live)
	}
	// Suppression lists bind every policy.
	if got := fmt.Sprint(scrub("/v1/lists/scrub?product=fiber-500&policy=lenient", strings.NewReader(list), "text/csv")); got != "[true true false]" {
		t.Errorf("preset lenient: %s", got)
	}
	inline := "# no cooldown on calls\ncooldowns:\n  call: 0\n"
	body, ct := multipartBody(t, &inline, list)
	if got := fmt.Sprint(scrub("/v1/lists/scrub?product=fiber-500", body, ct)); got != "[true false false]" {
		t.Errorf("inline: %s", got)
	}
	// A multipart body without a policy part uses the live policy.
	body, ct = multipartBody(t, nil, list)
	if got := fmt.Sprint(scrub("/v1/lists/scrub?product=fiber-500", body, ct)); got != live {
		t.Errorf("multipart without a policy: %s", got)
	}
	// The live policy is untouched.
	if got := fmt.Sprint(scrub("/v1/lists/scrub?product=fiber-500", strings.NewReader(list), "text/csv")); got != live {
		t.Errorf("live after the what-ifs: %s", got)
	}

	bad := "cooldowns:\n  call: 3x\n"
	for _, tt := range []struct {
		name, path string
		policy     *string
		message    string
	}{
		{"unknown preset", "/v1/lists/scrub?policy=strict", nil, `there is no policy preset "strict"; the presets are lenient`},
		{"invalid inline policy", "/v1/lists/scrub", &bad, `line 2: cooldowns.call: invalid duration "3x"`},
		{"preset and inline", "/v1/lists/scrub?policy=lenient", &inline, "not both"},
	} {
		body, ct := multipartBody(t, tt.policy, list)
		rec := upload(t, env.h, "POST", tt.path, body, "Content-Type: "+ct)
		var e apiErr
		json.Unmarshal(rec.Body.Bytes(), &e)
		if rec.Code != 400 || e.Error.Field != "policy" || !strings.Contains(e.Error.Message, tt.message) {
			t.Errorf("%s: %d %s, want 400 naming policy with %q", tt.name, rec.Code, rec.Body, tt.message)
		}
	}
	// The list part must come last, and must be there.
	var b bytes.Buffer
	fmt.Fprint(&b, "--X\r\nContent-Disposition: form-data; name=\"policy\"\r\n\r\n{}\r\n--X--\r\n")
	rec := upload(t, env.h, "POST", "/v1/lists/scrub", &b, "Content-Type: multipart/form-data; boundary=X")
	if rec.Code != 400 || !strings.Contains(rec.Body.String(), "no list part") {
		t.Errorf("no list part: %d %s", rec.Code, rec.Body)
	}
}

func TestScrubRequestErrors(t *testing.T) {
	t.Parallel()
	env := newListsEnv(t, listsOptions{})
	list := "customer_id\nc1\n"
	for _, tt := range []struct {
		query, field string
	}{
		{"channel=fax", "channel"},
		{"purpose=gossip", "purpose"},
		{"price=cheap", "price"},
		{"price=-1", "price"},
		{"currency=eur", "currency"},
		{"at=tomorrow", "at"},
		{"only=blocked", "only"},
		{"product=" + strings.Repeat("p", 300), "product"},
	} {
		rec, e := do(t, env.h, "POST", "/v1/lists/scrub?"+tt.query, "text/csv", list)
		if rec.Code != 400 || e.Error.Field != tt.field {
			t.Errorf("%s: %d %+v, want 400 naming %s", tt.query, rec.Code, e.Error, tt.field)
		}
	}
	if rec, _ := do(t, env.h, "POST", "/v1/lists/scrub", "application/json", list); rec.Code != 415 {
		t.Errorf("JSON body: %d, want 415", rec.Code)
	}
	// A future at: c1's cooldown of 72h is over.
	rec := upload(t, env.h, "POST", "/v1/lists/scrub?at=2026-11-24T10:00:00Z", strings.NewReader(list))
	if got := readCSV(t, rec.Body.Bytes())[1]; got[1] != "true" {
		t.Errorf("at in 4 days: %v", got)
	}
}

func TestScrubAuth(t *testing.T) {
	t.Parallel()
	env := newListsEnv(t, listsOptions{keys: keysFor(t, "dialer", "marketing", "agent", "admin")})
	for _, tt := range []struct {
		key    string
		status int
	}{{"", 401}, {"dialer-key", 403}, {"agent-key", 403}, {"marketing-key", 200}, {"admin-key", 200}} {
		rec := upload(t, env.h, "POST", "/v1/lists/scrub", strings.NewReader("customer_id\nc4\n"), "Authorization: Bearer "+tt.key)
		if rec.Code != tt.status {
			t.Errorf("key %q: %d, want %d", tt.key, rec.Code, tt.status)
		}
	}
}

func TestScrubStoreDown(t *testing.T) {
	t.Parallel()
	env := newListsEnv(t, listsOptions{})
	if env.redis.Real() {
		t.Skip("stops the server")
	}
	env.redis.Mini.Close()
	rec, e := do(t, env.h, "POST", "/v1/lists/scrub", "text/csv", "customer_id\nc1\n")
	if rec.Code != 503 || e.Error.Code != "unavailable" || strings.Contains(rec.Body.String(), "127.0.0.1") {
		t.Errorf("store down: %d %s, want 503 without the cause", rec.Code, rec.Body)
	}
}

// countingStore counts the reads of checks it passes to the store.
type countingStore struct {
	check.Store
	checks atomic.Int64
}

func (c *countingStore) Facts(ctx context.Context, lookups []contact.Lookup) []contact.Facts {
	c.checks.Add(1)
	return c.Store.Facts(ctx, lookups)
}

// TestScrubClientGoesAway starts a scrub on a real HTTP server, streams part
// of a list, reads part of the answer, and hangs up: the scrub must stop
// reading, checking and writing, and its handler return.
func TestScrubClientGoesAway(t *testing.T) {
	t.Parallel()
	counter := &countingStore{}
	env := newListsEnv(t, listsOptions{batch: 10, store: counter})
	counter.Store = env.store
	for _, tt := range []struct {
		name      string
		readFirst bool // read some of the answer before hanging up
	}{
		{"while the answer streams", true},
		{"before the answer begins", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			started, returned := make(chan struct{}), make(chan struct{})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				close(started)
				defer close(returned)
				env.h.ServeHTTP(w, r)
			}))
			defer srv.Close()

			ctx, cancel := context.WithCancel(context.Background())
			pr, pw := io.Pipe()
			req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL+"/v1/lists/scrub", pr)
			req.Header.Set("Content-Type", "text/csv")
			respc := make(chan *http.Response, 1)
			go func() {
				resp, err := srv.Client().Do(req)
				if err != nil {
					close(respc)
					return
				}
				respc <- resp
			}()
			before := counter.checks.Load()
			io.WriteString(pw, "customer_id,name\n")
			n := 5
			if tt.readFirst {
				n = 100
			}
			for i := range n {
				fmt.Fprintf(pw, "c%d,someone\n", i)
			}
			<-started
			if tt.readFirst {
				resp := <-respc
				if resp == nil || resp.StatusCode != 200 {
					t.Fatalf("response: %v", resp)
				}
				buf := make([]byte, 200)
				if _, err := io.ReadFull(resp.Body, buf); err != nil {
					t.Fatalf("read the answer: %v", err)
				}
			}
			cancel()
			pw.CloseWithError(context.Canceled)

			select {
			case <-returned:
			case <-time.After(10 * time.Second):
				t.Fatal("the scrub's handler did not return after the client went away")
			}
			checks := counter.checks.Load() - before
			if checks > int64(n/10+1) {
				t.Errorf("%d batches were checked for %d rows sent", checks, n)
			}
			time.Sleep(50 * time.Millisecond)
			if later := counter.checks.Load() - before; later != checks {
				t.Errorf("checks went on after the handler returned: %d then %d", checks, later)
			}
		})
	}
}

// TestScrubStreams checks that the answer begins before the upload ends:
// rows come back while the client is still sending, so memory does not
// depend on the length of the list.
func TestScrubStreams(t *testing.T) {
	t.Parallel()
	env := newListsEnv(t, listsOptions{batch: 10})
	srv := httptest.NewServer(env.h)
	defer srv.Close()
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", srv.URL+"/v1/lists/scrub", pr)
	req.Header.Set("Content-Type", "text/csv")
	respc := make(chan *http.Response, 1)
	go func() {
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Error(err)
			close(respc)
			return
		}
		respc <- resp
	}()
	io.WriteString(pw, "customer_id\n")
	for i := range 25 {
		fmt.Fprintf(pw, "c%d\n", i)
	}
	resp := <-respc // the upload is still open
	if resp == nil {
		t.Fatal("no response")
	}
	defer resp.Body.Close()
	buf := make([]byte, len("customer_id,allowed,reasons,detail\n"))
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "customer_id,allowed,reasons,detail\n" {
		t.Fatalf("header %q, %v", buf, err)
	}
	for i := 25; i < 1000; i++ {
		fmt.Fprintf(pw, "c%d\n", i)
	}
	pw.Close()
	rest, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(rest, []byte("\n")); n != 1000 {
		t.Errorf("%d rows, want 1000", n)
	}
	if tr := resp.Trailer.Get(httpapi.ScrubStatusTrailer); tr != "ok" {
		t.Errorf("trailer %q", tr)
	}
}

// TestCheckReadsSuppressionLists: the pre-dial check applies every list,
// by customer id and by phone.
func TestCheckReadsSuppressionLists(t *testing.T) {
	t.Parallel()
	env := newListsEnv(t, listsOptions{})
	for _, tt := range []struct{ body, list string }{
		{`{"customer_id":"c5","channel":"sms"}`, "litigators"},
		{`{"customer_id":"c9","channel":"call","phone":"912 34 567"}`, "regulator"},
		{`{"customer_id":"c9","channel":"call","phone":"912 34 567","at":"2026-11-21T12:00:00Z"}`, ""},
	} {
		rec := send(t, env.h, "POST", "/v1/check", "", tt.body)
		var got struct {
			Allowed bool
			Reasons []dedupe.Reason
		}
		json.Unmarshal(rec.Body.Bytes(), &got)
		list := ""
		for _, r := range got.Reasons {
			if r.Code == dedupe.CodeDoNotCall {
				list = r.List
			}
		}
		if rec.Code != 200 || list != tt.list {
			t.Errorf("%s: %d %s, want do_not_call from %q", tt.body, rec.Code, rec.Body, tt.list)
		}
	}
	rec, e := do(t, env.h, "POST", "/v1/check", "application/json", `{"customer_id":"c9","channel":"call","phone":"n/a"}`)
	if rec.Code != 400 || e.Error.Field != "phone" {
		t.Errorf("bad phone: %d %+v, want 400 naming phone", rec.Code, e.Error)
	}
}

// TestSampleFiles scrubs deployments/call-list.sample.csv as the README's
// "Scrubbing a call list" does, after the README's example events and the
// upload of deployments/suppressions.sample.csv, and checks the answers the
// README shows.
func TestSampleFiles(t *testing.T) {
	t.Parallel()
	env := newListsEnv(t, listsOptions{})
	at, _ := time.Parse(time.RFC3339, "2026-11-20T10:00:00Z") // 2h before now
	e1 := contact.Event{ID: "ev-1", Type: "contact", CustomerID: "c42", At: at, Channel: "call", Agent: "a.jones", Team: "retention", Outcome: "voicemail"}
	e2 := contact.Event{ID: "ev-2", Type: "purchase", CustomerID: "c42", At: at.Add(-24 * time.Hour), Product: "fiber-500", Price: &contact.Money{Minor: 3900, Currency: "EUR"}}
	for _, e := range []*contact.Event{&e1, &e2} {
		if err := e.Normalize(contact.Defaults{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := env.store.Apply(context.Background(), []contact.Event{e1, e2}); err != nil {
		t.Fatal(err)
	}
	sup, err := os.ReadFile("../deployments/suppressions.sample.csv")
	if err != nil {
		t.Fatal(err)
	}
	rec := upload(t, env.h, "PUT", "/v1/suppressions/internal", bytes.NewReader(sup))
	if got := strings.TrimSpace(rec.Body.String()); got != `{"list":"internal","rows":3,"entries":4,"expired":0}` {
		t.Errorf("PUT the sample suppressions: %d %s", rec.Code, got)
	}
	list, err := os.ReadFile("../deployments/call-list.sample.csv")
	if err != nil {
		t.Fatal(err)
	}
	const path = "/v1/lists/scrub?channel=call&product=fiber-500&price=49&currency=EUR"
	rec = upload(t, env.h, "POST", path, bytes.NewReader(list))
	want := "customer_id,name,phone,segment,product,price,allowed,reasons,detail\n" +
		"c42,Kari Nordmann,+47 915 55 501,gold,,,false,recent_contact|already_purchased,\"called by a.jones (retention) 2h ago, outcome voicemail\"\n" +
		"c43,Ola Hansen,915 55 502,silver,fiber-1000,59,true,,\n" +
		"c44,Jane Smith,+44 20 7946 0018,bronze,,,false,do_not_call,\"on do-not-call list internal: \"\"asked on the phone not to be called again\"\"\"\n" +
		"c45,\"Berg, Anne\",,gold,,,true,,\n" +
		",No Id,915 55 503,silver,,,false,invalid,customer_id: is required\n" +
		"c46,Per Olsen,915 55 504,silver,,forty,false,invalid,\"price: must be a number, 0 or more, such as 49.90; got \"\"forty\"\"\"\n"
	if rec.Body.String() != want {
		t.Errorf("scrub of the sample:\n%s\nwant:\n%s", rec.Body, want)
	}
	rec = upload(t, env.h, "POST", path, bytes.NewReader(list), "Accept: application/json")
	if got := strings.TrimSpace(rec.Body.String()); got != `{"rows":6,"allowed":2,"blocked":{"already_purchased":1,"do_not_call":1,"recent_contact":1},"invalid":2,"policy":"live"}` {
		t.Errorf("summary of the sample: %s", got)
	}
}

// TestScrubKeepAlive sends scrubs and a check one after another on one
// keep-alive connection: a scrub must leave the connection usable.
func TestScrubKeepAlive(t *testing.T) {
	t.Parallel()
	env := newListsEnv(t, listsOptions{})
	srv := httptest.NewUnstartedServer(env.h)
	srv.Config.ReadHeaderTimeout, srv.Config.IdleTimeout = 10*time.Second, time.Minute // as outreachd's
	srv.Start()
	defer srv.Close()
	cl := srv.Client()
	for i := range 3 {
		pr, pw := io.Pipe() // a chunked upload, as a streaming client sends
		go func() {
			io.WriteString(pw, "customer_id\nc1\nc4\nc5\nc2\nc3\n")
			for i := range 3000 {
				fmt.Fprintf(pw, "bulk-%d\n", i)
			}
			pw.Close()
		}()
		resp, err := cl.Post(srv.URL+"/v1/lists/scrub", "text/csv", pr)
		if err != nil {
			t.Fatalf("scrub %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || bytes.Count(body, []byte("\n")) != 3006 || resp.Trailer.Get(httpapi.ScrubStatusTrailer) != "ok" {
			t.Fatalf("scrub %d: %d %s", i, resp.StatusCode, body)
		}
	}
	resp, err := cl.Post(srv.URL+"/v1/check", "application/json", strings.NewReader(`{"customer_id":"c4","channel":"call"}`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("check after the scrubs: %v %v", resp, err)
	}
	resp.Body.Close()
}
