package http_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
)

// dncLists returns the do_not_call lists of a scrub of one row.
func dncLists(t *testing.T, env *listsEnv, customer, phone string) string {
	t.Helper()
	rec := upload(t, env.h, "POST", "/v1/lists/scrub", strings.NewReader("customer_id,phone\n"+customer+","+phone+"\n"))
	if rec.Code != 200 {
		t.Fatalf("scrub: %d %s", rec.Code, rec.Body)
	}
	row := readCSV(t, rec.Body.Bytes())[1]
	if !strings.Contains(row[3], "do_not_call") {
		return ""
	}
	return row[4]
}

func TestSuppressionUpload(t *testing.T) {
	t.Parallel()
	env := newListsEnv(t, listsOptions{})
	list := "\xef\xbb\xbfCustomer_ID,Phone,Reason,Expires_At,notes\r\n" +
		"d1,,asked on the phone,,x\r\n" +
		",+46 70 123 45 67,,2026-12-31,\r\n" +
		"d2,900 00 000,\"litigator, 2024\",2027-01-01T00:00:00Z,\r\n" +
		"d3,,gone,2026-11-01,\r\n" // expired: left out
	rec := upload(t, env.h, "PUT", "/v1/suppressions/internal-dnc?reason=internal+list", strings.NewReader(list))
	want := `{"list":"internal-dnc","rows":4,"entries":4,"expired":1,"ignored_columns":["notes"]}`
	if rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != want {
		t.Fatalf("PUT: %d %s, want %s", rec.Code, rec.Body, want)
	}
	for _, tt := range []struct{ customer, phone, want string }{
		{"d1", "", `on do-not-call list internal-dnc: "asked on the phone"`},
		{"x", "+46701234567", `on do-not-call list internal-dnc until 2026-12-31: "internal list"`},
		{"d2", "", `on do-not-call list internal-dnc until 2027-01-01: "litigator, 2024"`},
		{"x", "90000000", `on do-not-call list internal-dnc until 2027-01-01: "litigator, 2024"`},
		{"d3", "", ""},
	} {
		if got := dncLists(t, env, tt.customer, tt.phone); got != tt.want {
			t.Errorf("%s %s: %q, want %q", tt.customer, tt.phone, got, tt.want)
		}
	}

	// A replace drops what the new upload leaves out.
	rec = upload(t, env.h, "PUT", "/v1/suppressions/internal-dnc", strings.NewReader("customer_id\nd2\n"))
	if rec.Code != 200 {
		t.Fatalf("second PUT: %d %s", rec.Code, rec.Body)
	}
	if got := dncLists(t, env, "d1", ""); got != "" {
		t.Errorf("d1 after the replace: %q", got)
	}
	if got := dncLists(t, env, "d2", ""); got != "on do-not-call list internal-dnc" {
		t.Errorf("d2 after the replace: %q", got)
	}

	// POST adds.
	rec = upload(t, env.h, "POST", "/v1/suppressions/internal-dnc", strings.NewReader("phone\n+4790000001\n"))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"entries":1`) {
		t.Fatalf("POST: %d %s", rec.Code, rec.Body)
	}
	if got := dncLists(t, env, "d2", "+4790000001"); !strings.Contains(got, "internal-dnc") {
		t.Errorf("after POST: %q", got)
	}
}

func TestSuppressionUploadErrors(t *testing.T) {
	t.Parallel()
	env := newListsEnv(t, listsOptions{})
	tests := []struct {
		name, path, body, field, message string
	}{
		{"bad phone", "/v1/suppressions/dnc", "customer_id,phone\nd1,\nd2,+47 12\n", "list", `line 3: phone: "+47 12" is not a phone number`},
		{"neither", "/v1/suppressions/dnc", "customer_id,phone,reason\nd1,,\n,,why\n", "list", "line 3: the row has neither a customer_id nor a phone"},
		{"bad expiry", "/v1/suppressions/dnc", "customer_id,expires_at\nd1,next year\n", "list", "line 2: expires_at: must be a date"},
		{"expiry in year 9999", "/v1/suppressions/dnc", "customer_id,expires_at\nd1,9999-12-31\n", "list", "line 2: expires_at: must be at most 100 years from now"},
		{"expiry too far", "/v1/suppressions/dnc", "customer_id,expires_at\nd1,2027-01-01\nd2,2400-01-01T00:00:00Z\n", "list", "line 3: expires_at: must be at most 100 years from now"},
		{"bad customer id", "/v1/suppressions/dnc", "customer_id\n" + strings.Repeat("x", 129) + "\n", "list", "line 2: customer_id: must be at most 128"},
		{"reason too long", "/v1/suppressions/dnc", "customer_id,reason\nd1," + strings.Repeat("r", 257) + "\n", "list", "line 2: reason: must be at most 256"},
		{"no key column", "/v1/suppressions/dnc", "id,reason\nd1,x\n", "list", "line 1: the header needs a customer_id or a phone column"},
		{"broken CSV", "/v1/suppressions/dnc", "customer_id,reason\nd1,\"x\nd2,y\n", "list", "line 2: extraneous or missing"},
		{"empty", "/v1/suppressions/dnc", "", "", "the list is empty"},
		{"bad list name", "/v1/suppressions/Do%20Not%20Call", "customer_id\nd1\n", "list", "must be 1 to 64 characters"},
		{"bad default reason", "/v1/suppressions/dnc?reason=" + strings.Repeat("r", 300), "customer_id\nd1\n", "reason", "at most 256"},
	}
	for _, tt := range tests {
		for _, method := range []string{"PUT", "POST"} {
			rec, e := do(t, env.h, method, tt.path, "text/csv", tt.body)
			if rec.Code != 400 || e.Error.Field != tt.field || !strings.Contains(e.Error.Message, tt.message) {
				t.Errorf("%s %s: %d %+v, want 400 naming %q with %q", method, tt.name, rec.Code, e.Error, tt.field, tt.message)
			}
		}
	}
	// Nothing of the failed uploads is in force: d1 is on no list.
	if got := dncLists(t, env, "d1", ""); got != "" {
		t.Errorf("d1 is suppressed after failed uploads: %q", got)
	}
	if rec, _ := do(t, env.h, "PUT", "/v1/suppressions/dnc", "application/json", `{}`); rec.Code != 415 {
		t.Errorf("JSON upload: %d, want 415", rec.Code)
	}
}

// TestSuppressionUploadIsStreamed uploads a list larger than the body limit.
func TestSuppressionUploadIsStreamed(t *testing.T) {
	t.Parallel()
	env := newListsEnv(t, listsOptions{maxBody: 1024})
	var b strings.Builder
	b.WriteString("customer_id,reason\n")
	for i := range 3000 {
		fmt.Fprintf(&b, "big-%d,a reason long enough to make the upload large\n", i)
	}
	rec := upload(t, env.h, "PUT", "/v1/suppressions/big", strings.NewReader(b.String()))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"entries":3000`) {
		t.Fatalf("PUT of %d bytes with a 1 KiB body limit: %d %s", b.Len(), rec.Code, rec.Body)
	}
	// Other routes keep the limit.
	rec, _ = do(t, env.h, "POST", "/v1/check", "application/json", `{"customer_id":"`+strings.Repeat("x", 2000)+`","channel":"call"}`)
	if rec.Code != 413 {
		t.Errorf("check over the limit: %d, want 413", rec.Code)
	}
	rec = send(t, env.h, "GET", "/v1/suppressions/big", "", "")
	if rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != `{"entries":3000,"list":"big"}` {
		t.Errorf("GET count: %d %s", rec.Code, rec.Body)
	}
}

func TestSuppressionEntries(t *testing.T) {
	t.Parallel()
	env := newListsEnv(t, listsOptions{})
	rec := upload(t, env.h, "PUT", "/v1/suppressions/dnc", strings.NewReader(
		"customer_id,phone,reason,expires_at\n"+
			"d1,,first,\n"+
			"phone:odd,,an id that looks like an entry,\n"+
			",+4790000001,by number,2026-12-01\n"))
	if rec.Code != 200 {
		t.Fatalf("PUT: %d %s", rec.Code, rec.Body)
	}

	type entry struct {
		List, Reason, Phone string
		CustomerID          string `json:"customer_id"`
		Expired             bool
	}
	get := func(query string) (int, entry) {
		t.Helper()
		rec := send(t, env.h, "GET", "/v1/suppressions/dnc?"+query, "", "")
		var e entry
		json.Unmarshal(rec.Body.Bytes(), &e)
		return rec.Code, e
	}
	if code, e := get("customer_id=d1"); code != 200 || e != (entry{List: "dnc", Reason: "first", CustomerID: "d1"}) {
		t.Errorf("GET d1: %d %+v", code, e)
	}
	// A + left unencoded reads as a space; it is taken back as a +.
	for _, q := range []string{"phone=%2B4790000001", "phone=+4790000001", "phone=900+00+001", "phone=" + url.QueryEscape("+47 900 00 001")} {
		if code, e := get(q); code != 200 || e.Phone != "+4790000001" || e.Expired {
			t.Errorf("GET %s: %d %+v, want the entry", q, code, e)
		}
	}
	if code, _ := get("customer_id=nobody"); code != 404 {
		t.Errorf("GET nobody: %d, want 404", code)
	}
	for _, q := range []string{"customer_id=d1&phone=1", "phone=abc"} {
		if code, _ := get(q); code != 400 {
			t.Errorf("GET %s: %d, want 400", q, code)
		}
	}
	if rec := send(t, env.h, "GET", "/v1/suppressions/nope", "", ""); rec.Code != 404 {
		t.Errorf("GET an unknown list: %d, want 404", rec.Code)
	}

	for _, tt := range []struct {
		entry  string
		status int
	}{
		{"d1", 204},
		{"d1", 404},
		{"customer:phone:odd", 204},
		{"phone:" + url.PathEscape("+47 900 00 001"), 204},
		{"phone:+4790000001", 404},
		{"phone:abc", 400},
		{"customer:" + strings.Repeat("x", 129), 400},
	} {
		rec, e := do(t, env.h, "DELETE", "/v1/suppressions/dnc/"+tt.entry, "", "")
		if rec.Code != tt.status {
			t.Errorf("DELETE %s: %d %+v, want %d", tt.entry, rec.Code, e.Error, tt.status)
		}
	}
	if rec := send(t, env.h, "GET", "/v1/suppressions/dnc", "", ""); !strings.Contains(rec.Body.String(), `"entries":0`) {
		t.Errorf("after the deletes: %s", rec.Body)
	}
	if rec, _ := do(t, env.h, "DELETE", "/v1/suppressions/nope/d1", "", ""); rec.Code != 404 {
		t.Errorf("DELETE from an unknown list: %d, want 404", rec.Code)
	}
}

func TestSuppressionAuthAndConfig(t *testing.T) {
	t.Parallel()
	env := newListsEnv(t, listsOptions{keys: keysFor(t, "dialer", "marketing", "agent", "admin")})
	for _, tt := range []struct {
		method, path, key string
		status            int
	}{
		{"PUT", "/v1/suppressions/dnc", "", 401},
		{"PUT", "/v1/suppressions/dnc", "dialer-key", 403},
		{"PUT", "/v1/suppressions/dnc", "agent-key", 403},
		{"PUT", "/v1/suppressions/dnc", "marketing-key", 200},
		{"POST", "/v1/suppressions/dnc", "admin-key", 200},
		{"GET", "/v1/suppressions/dnc?customer_id=d1", "agent-key", 403},
		{"GET", "/v1/suppressions/dnc?customer_id=d1", "marketing-key", 200},
		{"DELETE", "/v1/suppressions/dnc/d1", "dialer-key", 403},
		{"DELETE", "/v1/suppressions/dnc/d1", "marketing-key", 204},
	} {
		rec := upload(t, env.h, tt.method, tt.path, strings.NewReader("customer_id\nd1\n"), "Authorization: Bearer "+tt.key)
		if rec.Code != tt.status {
			t.Errorf("%s %s as %q: %d, want %d: %s", tt.method, tt.path, tt.key, rec.Code, tt.status, rec.Body)
		}
	}

	off := newListsEnv(t, listsOptions{noLists: true})
	if rec, e := do(t, off.h, "PUT", "/v1/suppressions/dnc", "text/csv", "customer_id\nd1\n"); rec.Code != 503 || e.Error.Code != "unavailable" {
		t.Errorf("without a suppression store: %d %+v", rec.Code, e.Error)
	}
}
