package http_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outreach/outreach/contact"
	httpapi "github.com/outreach/outreach/http"
)

// memTimelines is an in-memory TimelineReader.
type memTimelines struct {
	events []contact.Event
	err    error
	got    contact.Page
}

func (m *memTimelines) Timeline(_ context.Context, id string, page contact.Page) ([]contact.Event, contact.State, error) {
	m.got = page
	if m.err != nil {
		return nil, contact.State{}, m.err
	}
	var out []contact.Event
	var st contact.State
	for _, e := range m.events {
		if e.CustomerID == id {
			out = append(out, e)
			st.Apply(&e, e.At, contact.Limits{})
		}
	}
	return out, st, nil
}

// memProducer records what it is asked to produce.
type memProducer struct {
	mu     sync.Mutex
	events []contact.Event
	err    error
}

func (m *memProducer) Produce(_ context.Context, events []contact.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	m.events = append(m.events, events...)
	return nil
}

type apiErr struct {
	Error struct {
		Code, Message, Field string
		Index                *int
	}
}

func do(t *testing.T, h http.Handler, method, path, contentType, body string) (*httptest.ResponseRecorder, apiErr) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var e apiErr
	if rec.Code >= 400 {
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
			t.Errorf("%s %s: status %d with body %q, want a JSON error", method, path, rec.Code, rec.Body)
		}
	}
	return rec, e
}

const validEvent = `{"id":"e1","type":"contact","customer_id":"c1","at":"2026-11-20T10:00:00Z","channel":"call"}`

func TestPostEvents(t *testing.T) {
	tests := []struct {
		name        string
		contentType string
		body        string
		status      int
		accepted    int
		code, field string
		index       int // -1: no index
	}{
		{"one event", "application/json", validEvent, 202, 1, "", "", -1},
		{"an array", "application/json; charset=utf-8", "[" + validEvent + "," + strings.Replace(validEvent, "e1", "e2", 1) + "]", 202, 2, "", "", -1},
		{"no content type", "", validEvent, 202, 1, "", "", -1},
		{"wrong content type", "text/csv", validEvent, 415, 0, "unsupported", "", -1},
		{"malformed JSON", "application/json", `{"id":`, 400, 0, "invalid", "", 0},
		{"empty body", "application/json", ``, 400, 0, "invalid", "", -1},
		{"empty array", "application/json", `[]`, 400, 0, "invalid", "", -1},
		{"missing customer", "application/json", `{"id":"e1","type":"contact","at":"2026-11-20T10:00:00Z","channel":"call"}`, 400, 0, "invalid", "customer_id", 0},
		{"unknown channel", "application/json", strings.Replace(validEvent, `"call"`, `"fax"`, 1), 400, 0, "invalid", "channel", 0},
		{"bad time", "application/json", strings.Replace(validEvent, `2026-11-20T10:00:00Z`, `yesterday`, 1), 400, 0, "invalid", "at", 0},
		{"wrong JSON type", "application/json", strings.Replace(validEvent, `"c1"`, `42`, 1), 400, 0, "invalid", "customer_id", 0},
		{"second of two invalid", "application/json", "[" + validEvent + `,{"id":"e2","type":"refund","customer_id":"c1","at":"2026-11-20T10:00:00Z"}]`, 400, 0, "invalid", "type", 1},
		{"too many", "application/json", "[" + strings.Repeat(validEvent+",", httpapi.MaxEventsPerRequest) + validEvent + "]", 400, 0, "invalid", "", -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &memProducer{}
			h := httpapi.New(httpapi.Config{Producer: p, Timelines: &memTimelines{}}).Handler()
			rec, e := do(t, h, "POST", "/v1/events", tt.contentType, tt.body)
			if rec.Code != tt.status {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tt.status, rec.Body)
			}
			if tt.status == 202 {
				var got struct{ Accepted int }
				json.Unmarshal(rec.Body.Bytes(), &got)
				if got.Accepted != tt.accepted || len(p.events) != tt.accepted {
					t.Errorf("accepted %d, produced %d, want %d", got.Accepted, len(p.events), tt.accepted)
				}
				return
			}
			if len(p.events) != 0 {
				t.Errorf("produced %d events of a rejected request, want none", len(p.events))
			}
			if e.Error.Code != tt.code || e.Error.Field != tt.field {
				t.Errorf("error = %+v, want code %q field %q", e.Error, tt.code, tt.field)
			}
			if tt.index >= 0 && (e.Error.Index == nil || *e.Error.Index != tt.index) {
				t.Errorf("error index = %v, want %d", e.Error.Index, tt.index)
			}
		})
	}
}

func TestPostEventsKafkaDown(t *testing.T) {
	p := &memProducer{err: contact.Unavailable("kafka", fmt.Errorf("dial tcp 10.0.0.1:9092: refused"))}
	h := httpapi.New(httpapi.Config{Producer: p, Timelines: &memTimelines{}}).Handler()
	rec, e := do(t, h, "POST", "/v1/events", "application/json", validEvent)
	if rec.Code != 503 || e.Error.Code != "unavailable" {
		t.Errorf("status %d error %+v, want 503 unavailable", rec.Code, e.Error)
	}
	if strings.Contains(rec.Body.String(), "10.0.0.1") {
		t.Errorf("the response leaks the cause: %s", rec.Body)
	}
}

func TestBodyTooLarge(t *testing.T) {
	h := httpapi.New(httpapi.Config{Producer: &memProducer{}, Timelines: &memTimelines{}, MaxBody: 100}).Handler()
	rec, e := do(t, h, "POST", "/v1/events", "application/json", "["+strings.Repeat(validEvent+",", 5)+validEvent+"]")
	if rec.Code != 413 || e.Error.Code != "too_large" {
		t.Errorf("status %d error %+v, want 413 too_large", rec.Code, e.Error)
	}
}

func TestContacts(t *testing.T) {
	at := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	tl := &memTimelines{events: []contact.Event{
		{ID: "e2", Type: contact.TypeContact, CustomerID: "c 1/x", At: at.Add(time.Hour), Channel: contact.Call, Direction: contact.Outbound},
		{ID: "e1", Type: contact.TypeContact, CustomerID: "c 1/x", At: at, Channel: contact.Call, Direction: contact.Outbound},
	}}
	h := httpapi.New(httpapi.Config{Producer: &memProducer{}, Timelines: tl}).Handler()

	cursor := contact.Cursor{At: time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC), ID: "e9"}
	rec, _ := do(t, h, "GET", "/v1/customers/c%201%2Fx/contacts?limit=2&before="+cursor.String(), "", "")
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var got struct {
		CustomerID string          `json:"customer_id"`
		Events     []contact.Event `json:"events"`
		State      struct {
			LastContacts map[contact.Channel]contact.Event `json:"last_contacts"`
		} `json:"state"`
		Next string `json:"next"`
	}
	json.Unmarshal(rec.Body.Bytes(), &got)
	if got.CustomerID != "c 1/x" || len(got.Events) != 2 || got.State.LastContacts[contact.Call].ID != "e2" {
		t.Errorf("body = %+v", got)
	}
	if tl.got.Limit != 2 || tl.got.After != cursor {
		t.Errorf("page = %+v, want limit 2 after %v", tl.got, cursor)
	}
	if next, err := contact.ParseCursor("next", got.Next); err != nil || next.ID != "e1" || !next.At.Equal(at) {
		t.Errorf("next = %q (%v, %v), want the cursor of the last event e1", got.Next, next, err)
	}

	rec, _ = do(t, h, "GET", "/v1/customers/nobody/contacts", "", "")
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"events":[]`) {
		t.Errorf("unknown customer: %d %s, want 200 with an empty timeline", rec.Code, rec.Body)
	}
	if tl.got.Limit != 50 {
		t.Errorf("default limit = %d, want 50", tl.got.Limit)
	}

	for _, tt := range []struct{ path, field string }{
		{"/v1/customers/c1/contacts?limit=0", "limit"},
		{"/v1/customers/c1/contacts?limit=abc", "limit"},
		{"/v1/customers/c1/contacts?limit=1001", "limit"},
		{"/v1/customers/c1/contacts?before=noon", "before"},
		{"/v1/customers/c1/contacts?before=2026-11-21T00:00:00Z", "before"},
		{"/v1/customers/" + strings.Repeat("x", 129) + "/contacts", "customer_id"},
		{"/v1/customers/%20/contacts", "customer_id"},
	} {
		rec, e := do(t, h, "GET", tt.path, "", "")
		if rec.Code != 400 || e.Error.Field != tt.field {
			t.Errorf("GET %s: %d %+v, want 400 naming %s", tt.path, rec.Code, e.Error, tt.field)
		}
	}

	tl.err = contact.Unavailable("redis", fmt.Errorf("connection refused"))
	rec, e := do(t, h, "GET", "/v1/customers/c1/contacts", "", "")
	if rec.Code != 503 || e.Error.Code != "unavailable" {
		t.Errorf("store down: %d %+v, want 503 unavailable", rec.Code, e.Error)
	}
}

func TestHealthReadyAndUnknownRoutes(t *testing.T) {
	var redisErr error
	h := httpapi.New(httpapi.Config{Producer: &memProducer{}, Timelines: &memTimelines{}, Ready: []httpapi.Check{
		{Name: "redis", Check: func(context.Context) error { return redisErr }},
	}}).Handler()
	if rec, _ := do(t, h, "GET", "/healthz", "", ""); rec.Code != 200 {
		t.Errorf("healthz = %d", rec.Code)
	}
	if rec, _ := do(t, h, "GET", "/readyz", "", ""); rec.Code != 200 {
		t.Errorf("readyz = %d, want 200", rec.Code)
	}
	redisErr = fmt.Errorf("redis is unavailable")
	rec, _ := do(t, h, "GET", "/readyz", "", "")
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), "redis is unavailable") {
		t.Errorf("readyz with redis down = %d %s, want 503 naming redis", rec.Code, rec.Body)
	}
	if rec, e := do(t, h, "GET", "/v1/nothing", "", ""); rec.Code != 404 || e.Error.Code != "not_found" {
		t.Errorf("unknown route = %d %+v, want 404 not_found", rec.Code, e.Error)
	}
	if rec, _ := do(t, h, "DELETE", "/v1/events", "", ""); rec.Code != 405 {
		t.Errorf("wrong method = %d, want 405", rec.Code)
	}
}
