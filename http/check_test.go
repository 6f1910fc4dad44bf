package http_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/dedupe"
	"github.com/outreach/outreach/dedupe/check"
	httpapi "github.com/outreach/outreach/http"
)

// memChecker is the real check service over facts kept in memory per
// customer. It records the requests of the last check, as normalized.
type memChecker struct {
	events   memProducer     // forget events
	audited  []dedupe.Record // the audit trail
	mu       sync.Mutex
	facts    map[string]contact.Facts
	err      error // the error of every lookup, when set
	policy   *dedupe.Policy
	got      []dedupe.Request
	released []string
}

func (m *memChecker) service() *check.Service {
	if m.policy == nil {
		m.policy = dedupe.DefaultPolicy()
	}
	return check.New(check.Config{Store: memStore{m}, Policy: func() *dedupe.Policy { return m.policy }, Now: func() time.Time { return now },
		Auditor: m, Events: &m.events})
}

func (m *memChecker) Check(ctx context.Context, reqs []dedupe.Request, o check.Options) ([]dedupe.Result, error) {
	res, err := m.service().Check(ctx, reqs, o)
	m.got = reqs
	return res, err
}

func (m *memChecker) ReleaseClaim(ctx context.Context, token string) error {
	return m.service().ReleaseClaim(ctx, token)
}

func (m *memChecker) Scrub(ctx context.Context, o check.ScrubOptions, next func() (check.Row, error), emit func([]check.Verdict, error) error) error {
	return m.service().Scrub(ctx, o, next, emit)
}

func (m *memChecker) Policy() *dedupe.Policy { return m.service().Policy() }

func (m *memChecker) Forget(ctx context.Context, id string, caller check.Caller) (contact.Event, error) {
	return m.service().Forget(ctx, id, caller)
}

// Record keeps the audit trail in memory.
func (m *memChecker) Record(_ context.Context, recs []dedupe.Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.audited = append(m.audited, recs...)
	return nil
}

// memStore serves a memChecker's facts as a check.Store.
type memStore struct{ m *memChecker }

func (s memStore) Facts(_ context.Context, lookups []contact.Lookup) []contact.Facts {
	out := make([]contact.Facts, len(lookups))
	for i, l := range lookups {
		if s.m.err != nil {
			out[i].Err = s.m.err
			continue
		}
		out[i] = s.m.facts[l.CustomerID]
		if l.Claim != nil && out[i].Claim == nil {
			c := *l.Claim
			c.Token = "tok"
			out[i].Taken = &c
		}
	}
	return out
}

func (s memStore) ReleaseClaim(_ context.Context, token string) (bool, error) {
	if token == "bad" {
		return false, contact.Invalid("token", "is not a claim token")
	}
	s.m.released = append(s.m.released, token)
	return token == "live", nil
}

// factsOf is the facts of a customer with the events es, merged at now.
func factsOf(es ...contact.Event) contact.Facts {
	var f contact.Facts
	for i := range es {
		if err := es[i].Normalize(contact.Defaults{}); err != nil {
			panic(err)
		}
		f.State.Apply(&es[i], now, contact.Limits{})
	}
	return f
}

var now = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

func keysFor(t *testing.T, roles ...string) *httpapi.Keys {
	t.Helper()
	var b strings.Builder
	b.WriteString("# test keys\n\n")
	for _, r := range roles {
		sum := sha256.Sum256([]byte(r + "-key"))
		fmt.Fprintf(&b, "%s %s\n", r, hex.EncodeToString(sum[:]))
	}
	k, err := httpapi.ParseKeys([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newServer(t *testing.T, ch *memChecker, keys *httpapi.Keys) http.Handler {
	t.Helper()
	return httpapi.New(httpapi.Config{
		Producer: &memProducer{}, Timelines: &memTimelines{}, Checker: ch, Keys: keys,
		Now: func() time.Time { return now },
	}).Handler()
}

func send(t *testing.T, h http.Handler, method, path, key, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

type result struct {
	CustomerID string `json:"customer_id"`
	Allowed    bool   `json:"allowed"`
	Reasons    []struct {
		Code, Message, Agent string
		EventID              string `json:"event_id"`
	} `json:"reasons"`
	Claim *struct{ Token string } `json:"claim"`
}

func TestCheck(t *testing.T) {
	ch := &memChecker{facts: map[string]contact.Facts{
		"c1": factsOf(contact.Event{ID: "k1", Type: contact.TypeContact, CustomerID: "c1",
			At: now.Add(-2 * time.Hour), Channel: contact.Call, Direction: contact.Outbound, Agent: "a.jones", Team: "retention", Outcome: "voicemail"}),
	}}
	h := newServer(t, ch, nil)

	rec := send(t, h, "POST", "/v1/check", "", `{"customer_id":"c1","channel":"call"}`)
	var got result
	json.Unmarshal(rec.Body.Bytes(), &got)
	if rec.Code != 200 || got.Allowed || len(got.Reasons) != 1 || got.Reasons[0].Code != "recent_contact" ||
		got.Reasons[0].EventID != "k1" || got.Reasons[0].Agent != "a.jones" || !strings.Contains(got.Reasons[0].Message, "a.jones") {
		t.Errorf("blocked check: %d %s", rec.Code, rec.Body)
	}
	if !strings.Contains(rec.Body.String(), `"claim":null`) {
		t.Errorf("no claim asked: want claim null, got %s", rec.Body)
	}
	if ch.got[0].Purpose != "sales" || !ch.got[0].At.Equal(now) {
		t.Errorf("defaults: purpose %q at %v, want sales and now", ch.got[0].Purpose, ch.got[0].At)
	}

	rec = send(t, h, "POST", "/v1/check", "", `{"customer_id":"c1","channel":"email","claim":true,"at":"2026-11-20T13:01:00+01:00"}`)
	json.Unmarshal(rec.Body.Bytes(), &got)
	if rec.Code != 200 || !got.Allowed || got.Claim == nil || got.Claim.Token == "" {
		t.Errorf("allowed claim: %d %s", rec.Code, rec.Body)
	}
	if !ch.got[0].At.Equal(now) {
		t.Errorf("at a minute ahead = %v, want now", ch.got[0].At)
	}
	// A planned check is judged at its time and takes no claim; a check of
	// the past is refused.
	rec = send(t, h, "POST", "/v1/check", "", `{"customer_id":"c1","channel":"email","at":"2026-11-21T09:00:00+01:00"}`)
	if rec.Code != 200 || !ch.got[0].At.Equal(time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)) {
		t.Errorf("planned check: %d at %v", rec.Code, ch.got[0].At)
	}
	for _, body := range []string{
		`{"customer_id":"c1","channel":"email","claim":true,"at":"2026-11-21T09:00:00+01:00"}`,
		`{"customer_id":"c1","channel":"email","at":"2026-11-20T10:00:00Z"}`,
	} {
		if rec, e := do(t, h, "POST", "/v1/check", "application/json", body); rec.Code != 400 || e.Error.Field != "at" {
			t.Errorf("%s: %d %+v, want 400 naming at", body, rec.Code, e.Error)
		}
	}

	for _, tt := range []struct{ body, field string }{
		{`{"channel":"call"}`, "customer_id"},
		{`{"customer_id":"c1"}`, "channel"},
		{`{"customer_id":"c1","channel":"fax"}`, "channel"},
		{`{"customer_id":"c1","channel":"call","purpose":"gossip"}`, "purpose"},
		{`{"customer_id":"c1","channel":"call","offer":{"price":-1}}`, "offer.price"},
		{`{"customer_id":"c1","channel":"call","offer":{"price":"cheap"}}`, "offer.price"},
		{`{"customer_id":"c1","channel":"call","timezone":"Mars/Olympus"}`, "timezone"},
		{`{"customer_id":"c1","channel":"call","at":"tomorrow"}`, "at"},
		{`{"customer_id":"c1","channel":"call","claim":"yes"}`, "claim"},
		{`{"customer_id":`, ""},
	} {
		rec, e := do(t, h, "POST", "/v1/check", "application/json", tt.body)
		if rec.Code != 400 || e.Error.Code != "invalid" || e.Error.Field != tt.field {
			t.Errorf("%s: %d %+v, want 400 naming %q", tt.body, rec.Code, e.Error, tt.field)
		}
	}
	if rec, _ := do(t, h, "POST", "/v1/check", "text/plain", `{}`); rec.Code != 415 {
		t.Errorf("text/plain: %d, want 415", rec.Code)
	}
}

func TestCheckFailsClosed(t *testing.T) {
	ch := &memChecker{err: contact.Unavailable("redis", fmt.Errorf("dial tcp: refused"))}
	h := newServer(t, ch, nil)
	rec := send(t, h, "POST", "/v1/check", "", `{"customer_id":"c1","channel":"call"}`)
	var got result
	json.Unmarshal(rec.Body.Bytes(), &got)
	if rec.Code != 200 || got.Allowed || len(got.Reasons) != 1 || got.Reasons[0].Code != "unavailable" || got.Reasons[0].Message == "" {
		t.Errorf("store down: %d %s, want 200 allowed=false unavailable", rec.Code, rec.Body)
	}
	rec = send(t, h, "POST", "/v1/check/batch", "", `{"checks":[{"customer_id":"c1","channel":"call"},{"customer_id":"c2","channel":"sms"}]}`)
	if rec.Code != 200 || strings.Count(rec.Body.String(), `"unavailable"`) != 2 {
		t.Errorf("batch with store down: %d %s", rec.Code, rec.Body)
	}
}

func TestCheckBatch(t *testing.T) {
	ch := &memChecker{facts: map[string]contact.Facts{
		"c2": factsOf(contact.Event{ID: "o1", Type: contact.TypeOptOut, CustomerID: "c2", At: now.Add(-time.Hour)}),
	}}
	h := newServer(t, ch, nil)
	rec := send(t, h, "POST", "/v1/check/batch", "", `{"checks":[{"customer_id":"c1","channel":"call"},{"customer_id":"c2","channel":"sms"},{"customer_id":"c3","channel":"mail"}]}`)
	var got struct{ Results []result }
	json.Unmarshal(rec.Body.Bytes(), &got)
	if rec.Code != 200 || len(got.Results) != 3 {
		t.Fatalf("batch: %d %s", rec.Code, rec.Body)
	}
	for i, want := range []struct {
		id      string
		allowed bool
	}{{"c1", true}, {"c2", false}, {"c3", true}} {
		if got.Results[i].CustomerID != want.id || got.Results[i].Allowed != want.allowed {
			t.Errorf("results[%d] = %+v, want %s allowed=%v", i, got.Results[i], want.id, want.allowed)
		}
	}
	if got.Results[1].Reasons[0].Code != "opted_out" {
		t.Errorf("c2 reasons = %+v", got.Results[1].Reasons)
	}

	for _, tt := range []struct {
		body, field string
		index       int
	}{
		{`{"checks":[]}`, "checks", -1},
		{`{}`, "checks", -1},
		{`{"checks":[{"customer_id":"c1","channel":"call"},{"customer_id":"c1","channel":"fax"}]}`, "channel", 1},
		{`{"checks":[` + strings.Repeat(`{"customer_id":"c1","channel":"call"},`, httpapi.MaxChecksPerBatch) + `{"customer_id":"c1","channel":"call"}]}`, "checks", -1},
	} {
		rec, e := do(t, h, "POST", "/v1/check/batch", "application/json", tt.body)
		if rec.Code != 400 || e.Error.Field != tt.field {
			t.Errorf("%.60s: %d %+v, want 400 naming %q", tt.body, rec.Code, e.Error, tt.field)
		}
		if tt.index >= 0 && (e.Error.Index == nil || *e.Error.Index != tt.index) {
			t.Errorf("%.60s: index %v, want %d", tt.body, e.Error.Index, tt.index)
		}
	}
}

func TestReleaseClaim(t *testing.T) {
	h := newServer(t, &memChecker{}, nil)
	if rec := send(t, h, "DELETE", "/v1/claims/live", "", ""); rec.Code != 204 {
		t.Errorf("live claim: %d, want 204", rec.Code)
	}
	if rec, e := do(t, h, "DELETE", "/v1/claims/gone", "", ""); rec.Code != 404 || e.Error.Code != "not_found" {
		t.Errorf("gone claim: %d %+v, want 404", rec.Code, e.Error)
	}
	if rec, e := do(t, h, "DELETE", "/v1/claims/bad", "", ""); rec.Code != 400 || e.Error.Field != "token" {
		t.Errorf("bad token: %d %+v, want 400 naming token", rec.Code, e.Error)
	}
}

func TestAuth(t *testing.T) {
	h := newServer(t, &memChecker{}, keysFor(t, "dialer", "marketing", "agent", "admin"))
	check := `{"customer_id":"c1","channel":"call"}`
	claim := `{"customer_id":"c1","channel":"call","claim":true}`
	tests := []struct {
		name, method, path, key, body string
		status                        int
	}{
		{"no key", "POST", "/v1/check", "", check, 401},
		{"unknown key", "POST", "/v1/check", "guess", check, 401},
		{"dialer checks", "POST", "/v1/check", "dialer-key", check, 200},
		{"dialer claims", "POST", "/v1/check", "dialer-key", claim, 200},
		{"agent checks", "POST", "/v1/check", "agent-key", check, 200},
		{"agent may not claim", "POST", "/v1/check", "agent-key", claim, 403},
		{"agent may not claim in a batch", "POST", "/v1/check/batch", "agent-key", `{"checks":[` + claim + `]}`, 403},
		{"marketing may not check", "POST", "/v1/check", "marketing-key", check, 403},
		{"admin claims", "POST", "/v1/check", "admin-key", claim, 200},
		{"dialer posts events", "POST", "/v1/events", "dialer-key", validEvent, 202},
		{"agent may not post events", "POST", "/v1/events", "agent-key", validEvent, 403},
		{"agent reads a timeline", "GET", "/v1/customers/c1/contacts", "agent-key", "", 200},
		{"dialer may not read a timeline", "GET", "/v1/customers/c1/contacts", "dialer-key", "", 403},
		{"dialer releases a claim", "DELETE", "/v1/claims/live", "dialer-key", "", 204},
		{"agent may not release a claim", "DELETE", "/v1/claims/live", "agent-key", "", 403},
		{"healthz is open", "GET", "/healthz", "", "", 200},
		{"readyz is open", "GET", "/readyz", "", "", 200},
		{"openapi is open", "GET", "/openapi.yaml", "", "", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := send(t, h, tt.method, tt.path, tt.key, tt.body)
			if rec.Code != tt.status {
				t.Errorf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			if rec.Code == 401 && rec.Header().Get("WWW-Authenticate") == "" {
				t.Errorf("401 without WWW-Authenticate")
			}
		})
	}
}

func TestParseKeysNamesTheLine(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"dialer abc\n", "line 1"},
		{"# c\nboss " + strings.Repeat("a", 64) + "\n", "line 2: unknown role"},
		{"dialer\n", "line 1"},
		{"# only comments\n", "no keys"},
	} {
		if _, err := httpapi.ParseKeys([]byte(tt.in)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseKeys(%q) = %v, want an error with %q", tt.in, err, tt.want)
		}
	}
}

// TestOpenAPIDocumentsEveryRoute keeps openapi.yaml in step with the routes.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	raw, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	srv := httpapi.New(httpapi.Config{Producer: &memProducer{}, Timelines: &memTimelines{}, Checker: &memChecker{}})
	param := regexp.MustCompile(`:(\w+)`)
	for _, r := range srv.Routes() {
		method, path, _ := strings.Cut(r, " ")
		path = param.ReplaceAllString(path, "{$1}")
		if _, ok := doc.Paths[path][strings.ToLower(method)]; !ok {
			t.Errorf("openapi.yaml lacks %s %s", method, path)
		}
	}
	h := srv.Handler()
	rec := send(t, h, "GET", "/openapi.yaml", "", "")
	if rec.Code != 200 || rec.Body.String() != string(raw) {
		t.Errorf("GET /openapi.yaml does not serve the file")
	}
}
