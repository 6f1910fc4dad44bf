package http_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/contact/redis"
	"github.com/outreach/outreach/dedupe"
	"github.com/outreach/outreach/dedupe/check"
	httpapi "github.com/outreach/outreach/http"
	"github.com/outreach/outreach/internal/testenv"
)

// followUpServer serves three open complaints over a store of its own:
// c1's overdue (owner b.smith), c2's upcoming (owner c.lee), c3's followed
// up by a recovery call.
func followUpServer(t *testing.T) http.Handler {
	t.Helper()
	r := testenv.NewRedis(t)
	store := redis.New(r.Client, redis.Options{Prefix: r.Prefix, Now: func() time.Time { return now }})
	complaint := func(id, customer, owner, summary string, ago time.Duration) contact.Event {
		return contact.Event{ID: id, Type: contact.TypeComplaint, CustomerID: customer, At: now.Add(-ago), CaseID: "K-" + id,
			Owner: owner, Team: "care", Summary: summary}
	}
	events := []contact.Event{
		complaint("1", "c1", "b.smith", "billed twice <b>", 72*time.Hour),
		complaint("2", "c2", "c.lee", "router dead", 2*time.Hour),
		complaint("3", "c3", "b.smith", "", 90*time.Hour),
		{ID: "r3", Type: contact.TypeContact, CustomerID: "c3", At: now.Add(-time.Hour), Channel: contact.Call, Purpose: "recovery", Agent: "a.jones"},
	}
	for i := range events {
		if err := events[i].Normalize(contact.Defaults{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := store.Apply(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	svc := check.New(check.Config{Store: store, FollowUps: store, Policy: dedupe.DefaultPolicy, Now: func() time.Time { return now }})
	return httpapi.New(httpapi.Config{Producer: &memProducer{}, Timelines: store, Checker: svc, FollowUps: svc,
		Keys: keysFor(t, "agent", "dialer"), Now: func() time.Time { return now }}).Handler()
}

func getAs(h http.Handler, role, path string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if role != "" {
		req.Header.Set("Authorization", "Bearer "+role+"-key")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestFollowUpsAPI(t *testing.T) {
	t.Parallel()
	h := followUpServer(t)
	rec := getAs(h, "agent", "/v1/followups")
	var page struct {
		FollowUps []check.FollowUpItem `json:"followups"`
		Next      string               `json:"next"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &page); rec.Code != 200 || err != nil {
		t.Fatalf("GET /v1/followups: %d %s", rec.Code, rec.Body)
	}
	if len(page.FollowUps) != 1 || page.FollowUps[0].CustomerID != "c1" || page.FollowUps[0].Owner != "b.smith" ||
		page.FollowUps[0].State != "due" || !page.FollowUps[0].DueAt.Equal(now.Add(-24*time.Hour)) {
		t.Errorf("due = %+v, want c1's case due since 24h", page.FollowUps)
	}
	rec = getAs(h, "agent", "/v1/followups?state=upcoming&team=care&owner=c.lee")
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"customer_id":"c2"`) || strings.Contains(rec.Body.String(), `"c1"`) {
		t.Errorf("upcoming of c.lee: %d %s", rec.Code, rec.Body)
	}
	for path, field := range map[string]string{
		"/v1/followups?state=late":    "state",
		"/v1/followups?limit=0":       "limit",
		"/v1/followups?cursor=x":      "cursor",
		"/v1/followups?owner=%01":     "owner",
		"/v1/followups?limit=1000000": "limit",
	} {
		rec := getAs(h, "agent", path)
		var e apiErr
		if err := json.Unmarshal(rec.Body.Bytes(), &e); rec.Code != 400 || err != nil || e.Error.Field != field {
			t.Errorf("%s: %d %s, want a 400 naming %s", path, rec.Code, rec.Body, field)
		}
	}
	if rec := getAs(h, "dialer", "/v1/followups"); rec.Code != 403 {
		t.Errorf("a dialer's key: %d, want 403", rec.Code)
	}
}

func TestFollowUpsPage(t *testing.T) {
	t.Parallel()
	h := followUpServer(t)
	if rec := getAs(h, "", "/followups?team=care"); rec.Code != 200 || !strings.Contains(rec.Body.String(), `data-src="/followups/panel?team=care"`) {
		t.Errorf("the shell: %d, want the panel's source with the filter:\n%s", rec.Code, rec.Body)
	}
	if rec := getAs(h, "", "/followups/panel"); rec.Code != 401 {
		t.Errorf("the panel without a key: %d, want 401", rec.Code)
	}
	rec := getAs(h, "agent", "/followups/panel")
	body := rec.Body.String()
	for _, want := range []string{`href="/customers/c1"`, "b.smith", "case <strong>K-1</strong>", "billed twice &lt;b&gt;", `href="/customers/c2"`, "c.lee"} {
		if !strings.Contains(body, want) {
			t.Errorf("the panel lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, `/customers/c3"`) {
		t.Error("the panel lists c3, whose case was followed up")
	}
	due, upcoming, _ := strings.Cut(body, `id="upcoming-title"`)
	if !strings.Contains(due, "/customers/c1") || !strings.Contains(upcoming, "/customers/c2") {
		t.Error("c1 is not under due, or c2 not under upcoming")
	}
}

func TestAgentPageShowsTheFollowUp(t *testing.T) {
	t.Parallel()
	h := followUpServer(t)
	for customer, want := range map[string]string{
		"c1": "Follow-up due since 24 hours, owner b.smith",
		"c2": "Follow-up due in 46 hours",
		"c3": "Followed up 60 minutes ago by a.jones",
	} {
		rec := getAs(h, "agent", "/customers/"+customer+"/panel")
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("%s's panel lacks %q", customer, want)
		}
	}
}
