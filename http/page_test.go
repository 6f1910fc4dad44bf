package http_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/dedupe"
	httpapi "github.com/outreach/outreach/http"
)

// pageStore is a TimelineReader over a fixed history, with the state
// derived as the Redis store derives it.
type pageStore struct {
	events []contact.Event
	err    error
	calls  int
	got    contact.Page
}

func (p *pageStore) Timeline(_ context.Context, id string, page contact.Page) ([]contact.Event, contact.State, error) {
	p.calls++
	p.got = page
	if p.err != nil {
		return nil, contact.State{}, p.err
	}
	var st contact.State
	var all []contact.Event
	for _, e := range p.events {
		if e.CustomerID != id {
			continue
		}
		all = append(all, e)
		st.Apply(&e, now, contact.Limits{})
	}
	contact.SortNewestFirst(all)
	var out []contact.Event
	for _, e := range all {
		if page.After.IsZero() || page.After.Before(&e) {
			out = append(out, e)
		}
	}
	if len(out) > page.Limit {
		out = out[:page.Limit]
	}
	return out, st, nil
}

func pagePtr[T any](v T) *T { return &v }

func eur(units int64) *contact.Money { return &contact.Money{Minor: units * 100, Currency: "EUR"} }

// pageHistory is the history of customer c42 as of now: see the test of
// the panel for what the page must make of it.
func pageHistory(now time.Time) []contact.Event {
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	day := 24 * time.Hour
	return []contact.Event{
		{ID: "p1", Type: contact.TypePurchase, CustomerID: "c42", At: ago(200 * day), Product: "fiber-500", Price: eur(39), OrderID: "A-88213"},
		{ID: "x0", Type: contact.TypeComplaint, CustomerID: "c42", At: ago(100 * day), CaseID: "CS-3120", Status: "opened", Owner: "m.okafor", Summary: "Billed twice"},
		{ID: "x0r", Type: contact.TypeComplaint, CustomerID: "c42", At: ago(90 * day), CaseID: "CS-3120", Status: "resolved", Owner: "m.okafor"},
		{ID: "m1", Type: contact.TypeContact, CustomerID: "c42", At: ago(60 * day), Channel: contact.Mail, Direction: contact.Outbound, Campaign: "spring",
			Product: "fiber-1000", Offer: &contact.Offer{Price: eur(29), ExpiresAt: pagePtr(ago(30 * day))}, Outcome: "delivered"},
		{ID: "e1", Type: contact.TypeContact, CustomerID: "c42", At: ago(9 * day), Channel: contact.Email, Direction: contact.Outbound, Agent: "campaigns", Team: "marketing",
			Campaign: "autumn", Purpose: "sales", Product: "fiber-1000", Offer: &contact.Offer{ID: "o-45", Price: eur(45), ExpiresAt: pagePtr(now.Add(12 * day))}, Outcome: "delivered"},
		{ID: "x1", Type: contact.TypeComplaint, CustomerID: "c42", At: ago(5 * day), CaseID: "CS-4471", Status: "opened", Owner: "r.haddad", Summary: "Technician missed two appointments"},
		{ID: "o1", Type: contact.TypeOptOut, CustomerID: "c42", At: ago(4 * day), Channel: contact.SMS, Reason: "too many texts"},
		{ID: "ch1", Type: contact.TypeContact, CustomerID: "c42", At: ago(26 * time.Hour), Channel: contact.Chat, Direction: contact.Inbound, Agent: "l.meyer", Team: "support", Outcome: "connected"},
		{ID: "c2", Type: contact.TypeContact, CustomerID: "c42", At: ago(3 * time.Hour), Channel: contact.Call, Direction: contact.Outbound, Agent: "a.jones", Team: "retention",
			Campaign: "autumn", Purpose: "sales", Outcome: "voicemail"},
	}
}

type pageServer struct {
	h     http.Handler
	store *pageStore
	check *memChecker
}

func newPageServer(t *testing.T, keys *httpapi.Keys, events []contact.Event) *pageServer {
	t.Helper()
	ps := &pageServer{store: &pageStore{events: events}, check: &memChecker{facts: map[string]contact.Facts{}}}
	ps.h = httpapi.New(httpapi.Config{
		Producer: &memProducer{}, Timelines: ps.store, Checker: ps.check, Keys: keys,
		Now: func() time.Time { return now },
	}).Handler()
	return ps
}

// page sends a request as the page's script does and returns the response.
func (ps *pageServer) page(t *testing.T, method, path, key, form string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(form))
	if form != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	rec := httptest.NewRecorder()
	ps.h.ServeHTTP(rec, req)
	return rec
}

func pageHTML(t *testing.T, rec *httptest.ResponseRecorder, status int) string {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status %d, want %d: %s", rec.Code, status, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Fatalf("Content-Type %q, want text/html", ct)
	}
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("Content-Security-Policy %q does not confine scripts", csp)
	}
	return rec.Body.String()
}

func pageWant(t *testing.T, body string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("the page lacks %q", w)
		}
	}
}

func TestPageShell(t *testing.T) {
	for _, keys := range []*httpapi.Keys{nil, keysFor(t, "agent")} {
		auth := map[bool]string{true: "on", false: "off"}[keys != nil]
		t.Run("auth "+auth, func(t *testing.T) {
			ps := newPageServer(t, keys, pageHistory(now))

			body := pageHTML(t, ps.page(t, "GET", "/", "", ""), 200)
			pageWant(t, body, `data-auth="`+auth+`"`, `<label for="customer-search">Customer id</label>`, `id="customer-search"`,
				`<script src="/assets/page.js?v=`, `<link rel="stylesheet" href="/assets/page.css?v=`)
			if strings.Contains(body, `id="panel"`) {
				t.Errorf("the home page has a customer panel")
			}

			body = pageHTML(t, ps.page(t, "GET", "/customers/c42", "", ""), 200)
			pageWant(t, body, `data-customer="c42"`, `value="c42"`, `<title>c42 · outreach`)
			if ps.store.calls != 0 {
				t.Errorf("the open shell read the timeline %d times; it must hold no customer data", ps.store.calls)
			}
			for _, secret := range []string{"a.jones", "CS-4471", "fiber"} {
				if strings.Contains(body, secret) {
					t.Errorf("the open shell shows customer data %q", secret)
				}
			}

			body = pageHTML(t, ps.page(t, "GET", "/customers/c%201%2Fx", "", ""), 200)
			pageWant(t, body, `data-customer="c 1/x"`)

			rec := ps.page(t, "GET", "/?customer=c+1%2Fx", "", "")
			if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/customers/c%201%2Fx" {
				t.Errorf("search: %d to %q, want 303 to /customers/c%%201%%2Fx", rec.Code, rec.Header().Get("Location"))
			}

			body = pageHTML(t, ps.page(t, "GET", "/customers/"+strings.Repeat("x", 129), "", ""), 400)
			pageWant(t, body, "not a valid customer id")
		})
	}
}

func TestPageAuth(t *testing.T) {
	ps := newPageServer(t, keysFor(t, "agent", "dialer", "marketing", "admin"), pageHistory(now))
	const form = "channel=call&purpose=sales"
	for _, tt := range []struct {
		name, key string
		status    int
	}{
		{"no key", "", 401},
		{"unknown key", "guess", 401},
		{"dialer", "dialer-key", 403},
		{"marketing", "marketing-key", 403},
		{"agent", "agent-key", 200},
		{"admin", "admin-key", 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, rec := range []*httptest.ResponseRecorder{
				ps.page(t, "GET", "/customers/c42/panel", tt.key, ""),
				ps.page(t, "GET", "/customers/c42/panel?before="+contact.Cursor{At: now, ID: "x"}.String(), tt.key, ""),
				ps.page(t, "POST", "/customers/c42/check", tt.key, form),
			} {
				if rec.Code != tt.status {
					t.Errorf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
				}
				if rec.Code == 401 && rec.Header().Get("WWW-Authenticate") == "" {
					t.Errorf("401 without WWW-Authenticate")
				}
				if rec.Code >= 400 && !strings.Contains(rec.Body.String(), `"error"`) {
					t.Errorf("%d is not the API's JSON error, which the script reads: %s", rec.Code, rec.Body)
				}
			}
		})
	}
	t.Run("auth off", func(t *testing.T) {
		open := newPageServer(t, nil, pageHistory(now))
		pageHTML(t, open.page(t, "GET", "/customers/c42/panel", "", ""), 200)
		pageHTML(t, open.page(t, "POST", "/customers/c42/check", "", form), 200)
	})
}

// pageSection returns the element of body that carries attr, up to its
// closing tag, so that an assertion is about one part of the page.
func pageSection(t *testing.T, body, attr string) string {
	t.Helper()
	i := strings.Index(body, attr)
	if i < 0 {
		t.Fatalf("the page has no %s", attr)
	}
	j := strings.Index(body[i:], "</section>")
	if j < 0 {
		j = len(body) - i
	}
	return body[i : i+j]
}

func TestPagePanel(t *testing.T) {
	ps := newPageServer(t, nil, pageHistory(now))
	ps.check.facts["c42"] = contact.Facts{
		Claim:        &dedupe.Claim{Agent: "b.lee", Campaign: "winback", ExpiresAt: now.Add(10 * time.Minute)},
		Suppressions: []dedupe.Suppression{{List: "national-dnc", Reason: "registered"}},
	}
	body := pageHTML(t, ps.page(t, "GET", "/customers/c42/panel", "", ""), 200)

	// The timeline is newest first, every kind told apart.
	ids := regexp.MustCompile(`data-event="([^"]+)"`).FindAllStringSubmatch(body, -1)
	var got []string
	for _, m := range ids {
		got = append(got, m[1])
	}
	if want := "c2 ch1 o1 x1 e1 m1 x0r x0 p1"; strings.Join(got, " ") != want {
		t.Errorf("timeline = %v, want %s", got, want)
	}
	for _, kind := range []string{`class="ev ev-contact" data-event="c2"`, `class="ev ev-purchase" data-event="p1"`, `class="ev ev-complaint" data-event="x1"`,
		`class="ev ev-complaint-resolved" data-event="x0r"`, `class="ev ev-complaint-closed" data-event="x0"`, `class="ev ev-opt" data-event="o1"`} {
		pageWant(t, body, kind)
	}
	pageWant(t, body, `<use href="#i-call"/>`, `dir-outbound`, `dir-inbound`, `voicemail`, `a.jones`, `retention`,
		`<dt>Campaign</dt><dd>autumn</dd>`, `<dt>Purpose</dt><dd>sales</dd>`, `<dt>Offer</dt><dd>45.00 EUR until`, `<dt>Order</dt><dd>A-88213</dd>`,
		`<span class="rel">3h ago</span>`, `datetime="`+now.Add(-3*time.Hour).UTC().Format(time.RFC3339)+`"`, "since resolved")

	// The badges.
	complaints := pageSection(t, body, `data-testid="complaints"`)
	pageWant(t, complaints, "Open complaint: do not pitch", "Case CS-4471", "r.haddad", "Technician missed two appointments", "5d ago")
	if strings.Contains(complaints, "CS-3120") {
		t.Errorf("the resolved case CS-3120 shows as open")
	}
	pageWant(t, pageSection(t, body, `data-testid="claim"`), "b.lee is calling this customer now", "Campaign winback", "in 10m")
	pageWant(t, pageSection(t, body, `data-testid="suppressions"`), "national-dnc", "registered")
	pageWant(t, pageSection(t, body, `data-testid="products"`), "fiber-500", "39.00 EUR")
	offers := pageSection(t, body, `data-testid="offers"`)
	pageWant(t, offers, "fiber-1000 at 45.00 EUR", "by Email", "autumn")
	if strings.Contains(offers, "29.00") {
		t.Errorf("the expired offer at 29.00 shows as active")
	}
	pageWant(t, pageSection(t, body, `data-testid="optouts"`), "No SMS", "too many texts")
	pageWant(t, body, `data-testid="last"`, "Call</strong>", "by a.jones")

	// The check form: labelled, posting to the page's own check.
	pageWant(t, body, `action="/customers/c42/check"`, `<label for="check-channel">`, `<label for="check-purpose">`,
		`<label for="check-product">`, `<label for="check-price">`, `<option value="fiber-1000">`, `value="EUR"`)
	if strings.Contains(body, "No contacts recorded") {
		t.Errorf("a known customer reads as unknown")
	}
	if len(ps.check.got) != 1 || ps.check.got[0].Claim {
		t.Errorf("the panel's check = %+v, want one check without a claim", ps.check.got)
	}
}

func TestPagePanelLiveFactsUnavailable(t *testing.T) {
	ps := newPageServer(t, nil, pageHistory(now))
	ps.check.err = contact.Unavailable("redis", errors.New("i/o timeout"))
	body := pageHTML(t, ps.page(t, "GET", "/customers/c42/panel", "", ""), 200)
	pageWant(t, body, "could not be checked right now", "CS-4471")
}

func TestPageUnknownCustomer(t *testing.T) {
	ps := newPageServer(t, nil, pageHistory(now))
	body := pageHTML(t, ps.page(t, "GET", "/customers/nobody/panel", "", ""), 200)
	pageWant(t, body, "No contacts recorded for this customer.", "None recorded", "never contacted")
	for _, absent := range []string{`data-testid="complaints"`, `data-testid="claim"`, `class="timeline"`} {
		if strings.Contains(body, absent) {
			t.Errorf("an unknown customer's panel has %s", absent)
		}
	}
}

// TestPageEscapesUserText proves that text from events, which anyone who
// can produce to Kafka controls, is never markup on the agent's page.
func TestPageEscapesUserText(t *testing.T) {
	const evil = `<script>alert("x")</script>`
	events := []contact.Event{
		{ID: "k1", Type: contact.TypeContact, CustomerID: "c42", At: now.Add(-2 * time.Hour), Channel: contact.Call, Direction: contact.Outbound,
			Agent: evil, Team: evil, Campaign: evil, Product: evil, Outcome: "voicemail"},
		{ID: "x1", Type: contact.TypeComplaint, CustomerID: "c42", At: now.Add(-time.Hour), CaseID: evil, Owner: evil, Summary: evil},
		{ID: "o1", Type: contact.TypeOptOut, CustomerID: "c42", At: now.Add(-time.Hour), Reason: evil},
		{ID: "p1", Type: contact.TypePurchase, CustomerID: "c42", At: now.Add(-time.Hour), Product: evil, OrderID: evil},
	}
	ps := newPageServer(t, nil, events)
	ps.check.facts["c42"] = contact.Facts{Claim: &dedupe.Claim{Agent: evil, Campaign: evil, ExpiresAt: now.Add(time.Minute)}}

	bodies := map[string]string{
		"panel":   pageHTML(t, ps.page(t, "GET", "/customers/c42/panel", "", ""), 200),
		"verdict": pageHTML(t, ps.page(t, "POST", "/customers/c42/check", "", "channel=call&product="+url.QueryEscape(evil)), 200),
		"shell":   pageHTML(t, ps.page(t, "GET", "/customers/"+url.PathEscape(evil), "", ""), 200),
	}
	for name, body := range bodies {
		// The shell has exactly one script element: its own.
		if n, want := strings.Count(body, "<script"), map[bool]int{true: 1, false: 0}[name == "shell"]; n != want {
			t.Errorf("%s: %d <script elements, want %d:\n%s", name, n, want, body)
		}
		if !strings.Contains(body, `&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;`) {
			t.Errorf("%s: the payload is not shown escaped:\n%s", name, body)
		}
	}
	pageWant(t, bodies["panel"], `<p class="complaint-summary">“&lt;script&gt;`, `<span class="agent">&lt;script&gt;`)
}

func TestPageOutage(t *testing.T) {
	ps := newPageServer(t, nil, pageHistory(now))
	ps.store.err = contact.Unavailable("redis", errors.New("dial tcp 10.0.0.7:6379: connection refused"))
	for _, path := range []string{"/customers/c42/panel", "/customers/c42/panel?before=" + contact.Cursor{At: now, ID: "x"}.String()} {
		body := pageHTML(t, ps.page(t, "GET", path, "", ""), 503)
		pageWant(t, body, `role="alert"`, "The contact history cannot be read right now", "Do not call from memory", `data-action="retry"`)
		if strings.Contains(body, "10.0.0.7") || strings.Contains(body, "refused") {
			t.Errorf("the banner leaks the cause: %s", body)
		}
	}

	ps.store.err = fmt.Errorf("a bug")
	body := pageHTML(t, ps.page(t, "GET", "/customers/c42/panel", "", ""), 500)
	pageWant(t, body, "Something went wrong")
	if strings.Contains(body, "a bug") {
		t.Errorf("the page shows an internal error: %s", body)
	}

	// A check in an outage is the policy's unavailable verdict, not an error.
	ps.check.err = contact.Unavailable("redis", errors.New("dial tcp 10.0.0.7:6379"))
	body = pageHTML(t, ps.page(t, "POST", "/customers/c42/check", "", "channel=call"), 200)
	pageWant(t, body, `data-allowed="false"`, `data-code="unavailable"`, "History unavailable", "blocked to be safe")
}

func TestPagePagination(t *testing.T) {
	var events []contact.Event
	for i := range 30 {
		events = append(events, contact.Event{ID: fmt.Sprintf("e%02d", i), Type: contact.TypeContact, CustomerID: "c42",
			At: now.Add(-time.Duration(30-i) * time.Hour), Channel: contact.Email, Direction: contact.Outbound})
	}
	ps := newPageServer(t, nil, events)
	body := pageHTML(t, ps.page(t, "GET", "/customers/c42/panel", "", ""), 200)
	if n := strings.Count(body, "data-event="); n != httpapi.PanelPageSize {
		t.Errorf("first page has %d entries, want %d", n, httpapi.PanelPageSize)
	}
	next := contact.CursorOf(&events[30-httpapi.PanelPageSize]).String()
	pageWant(t, body, `data-action="more" data-before="`+next+`"`)

	body = pageHTML(t, ps.page(t, "GET", "/customers/c42/panel?before="+url.QueryEscape(next), "", ""), 200)
	if n := strings.Count(body, "data-event="); n != 30-httpapi.PanelPageSize {
		t.Errorf("second page has %d entries, want %d", n, 30-httpapi.PanelPageSize)
	}
	if ps.store.got.After != contact.CursorOf(&events[30-httpapi.PanelPageSize]) {
		t.Errorf("read after %v, want %v", ps.store.got.After, contact.CursorOf(&events[30-httpapi.PanelPageSize]))
	}
	if strings.Contains(body, "customer-head") || strings.Contains(body, `data-action="more"`) {
		t.Errorf("a later page is the timeline entries only, without a further page:\n%s", body)
	}

	body = pageHTML(t, ps.page(t, "GET", "/customers/c42/panel?before=noon", "", ""), 400)
	pageWant(t, body, "before: is not a cursor from this API")
}

func TestPageCheck(t *testing.T) {
	ps := newPageServer(t, keysFor(t, "agent"), pageHistory(now))
	var events []contact.Event
	for _, e := range pageHistory(now) {
		if e.Type == contact.TypeContact || e.Type == contact.TypeComplaint {
			events = append(events, e)
		}
	}
	ps.check.facts["c42"] = factsOf(events...)

	// The page never claims, whatever the form says.
	rec := ps.page(t, "POST", "/customers/c42/check", "agent-key", "channel=call&purpose=sales&product=fiber-1000&price=49&currency=eur&claim=true")
	body := pageHTML(t, rec, 200)
	req := ps.check.got[0]
	if req.Claim || req.Channel != contact.Call || req.Purpose != "sales" || req.Product != "fiber-1000" ||
		req.Offer == nil || *req.Offer.Price != *eur(49) {
		t.Errorf("checked %+v, want a call about fiber-1000 at 49 EUR without a claim", req)
	}
	pageWant(t, body, `data-allowed="false"`, "No, do not call now", `data-code="open_complaint"`, `data-code="recent_contact"`,
		`data-code="better_offer"`,
		"Open complaint", "Contacted recently", "called by a.jones (retention) 3h ago, outcome voicemail", "A better offer stands", "3 reasons", "Clears")

	body = pageHTML(t, ps.page(t, "POST", "/customers/c42/check", "agent-key", "channel=email&purpose=recovery"), 200)
	pageWant(t, body, `data-allowed="true"`, "Yes, you may send an email now", "1 warning", "does not block")

	body = pageHTML(t, ps.page(t, "POST", "/customers/nobody/check", "agent-key", "channel=call"), 200)
	pageWant(t, body, "Yes, you may call now", "Call · sales ·", "Nothing in the history or the policy is against it.")

	for _, tt := range []struct{ form, field string }{
		{"channel=fax", "channel"},
		{"channel=call&purpose=pitch", "purpose"},
		{"channel=call&price=cheap", "offer.price"},
		{"channel=call&price=-1", "offer.price"},
		{"channel=call&price=1&currency=EURO", "offer.currency"},
		// Only the spaces and tabs of typing are trimmed: a control
		// character that Unicode counts as space (NEL) stays, and is refused.
		{"channel=call&product=" + url.QueryEscape("\u0085fiber-1000"), "product"},
	} {
		body := pageHTML(t, ps.page(t, "POST", "/customers/c42/check", "agent-key", tt.form), 400)
		pageWant(t, body, `role="alert"`, tt.field+":")
	}
}

func TestPageAssets(t *testing.T) {
	ps := newPageServer(t, nil, nil)
	for path, ct := range map[string]string{"/assets/page.css": "text/css", "/assets/page.js": "text/javascript"} {
		rec := ps.page(t, "GET", path, "", "")
		if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), ct) || rec.Body.Len() < 1000 {
			t.Errorf("GET %s: %d %q, %d bytes", path, rec.Code, rec.Header().Get("Content-Type"), rec.Body.Len())
		}
		etag := rec.Header().Get("ETag")
		req := httptest.NewRequest("GET", path, nil)
		req.Header.Set("If-None-Match", etag)
		rec = httptest.NewRecorder()
		ps.h.ServeHTTP(rec, req)
		if etag == "" || rec.Code != http.StatusNotModified {
			t.Errorf("GET %s with If-None-Match %s: %d, want 304", path, etag, rec.Code)
		}
	}
	// The page never puts the key anywhere but the Authorization header.
	js := ps.page(t, "GET", "/assets/page.js", "", "").Body.String()
	for _, leak := range []string{"localStorage", "document.cookie", "?key=", "&key="} {
		if strings.Contains(js, leak) {
			t.Errorf("page.js uses %s", leak)
		}
	}
}
