package http_test

import (
	"encoding/json"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outreach/outreach/contact"
	httpapi "github.com/outreach/outreach/http"
)

func TestParseRateLimits(t *testing.T) {
	got, err := httpapi.ParseRateLimits(httpapi.DefaultRateLimits)
	if err != nil || got[httpapi.RoleDialer] != (httpapi.Rate{PerSecond: 2000, Burst: 2000}) || len(got) != 4 {
		t.Errorf("the default = %v, %v", got, err)
	}
	got, err = httpapi.ParseRateLimits(" agent = 0.5/3 , dialer=10")
	if err != nil || got[httpapi.RoleAgent] != (httpapi.Rate{PerSecond: 0.5, Burst: 3}) || got[httpapi.RoleDialer].Burst != 10 || len(got) != 2 {
		t.Errorf("agent=0.5/3,dialer=10 = %v, %v", got, err)
	}
	if got, err := httpapi.ParseRateLimits("off"); got != nil || err != nil {
		t.Errorf("off = %v, %v", got, err)
	}
	for _, bad := range []string{"", "dialer", "boss=5", "dialer=0", "dialer=-1", "dialer=x", "dialer=5/0", "dialer=5/1.5", "dialer=5,dialer=6", "dialer=+Inf"} {
		if _, err := httpapi.ParseRateLimits(bad); err == nil {
			t.Errorf("ParseRateLimits(%q) accepted it", bad)
		}
	}
}

// TestRateLimits checks that each key gets its role's budget of its own,
// that the next request is a 429 with Retry-After in the one error shape
// and is counted, and that health, readiness and metrics are never limited.
func TestRateLimits(t *testing.T) {
	reg := prometheus.NewRegistry()
	keys := keysFor(t, "dialer", "agent")
	h := httpapi.New(httpapi.Config{
		Producer: &memProducer{}, Timelines: &memTimelines{}, Checker: &memChecker{facts: map[string]contact.Facts{}}, Keys: keys,
		Now: func() time.Time { return now }, Registry: reg, Gatherer: reg,
		RateLimits: httpapi.RateLimits{httpapi.RoleDialer: {PerSecond: 0.01, Burst: 3}, httpapi.RoleAgent: {PerSecond: 0.01, Burst: 1}},
	}).Handler()
	check := func(key string) *httptest.ResponseRecorder {
		return send(t, h, "POST", "/v1/check", key, `{"customer_id":"c1","channel":"call"}`)
	}
	for i := range 3 {
		if rec := check("dialer-key"); rec.Code != 200 {
			t.Fatalf("dialer request %d: %d %s", i+1, rec.Code, rec.Body)
		}
	}
	rec := check("dialer-key")
	var e apiErr
	if rec.Code != 429 || !decodeErr(rec, &e) || e.Error.Code != "rate_limited" {
		t.Fatalf("past the burst: %d %s, want 429 rate_limited", rec.Code, rec.Body)
	}
	if s, err := strconv.Atoi(rec.Header().Get("Retry-After")); err != nil || s < 1 || s > 101 {
		t.Errorf("Retry-After %q, want the seconds until the next token (100)", rec.Header().Get("Retry-After"))
	}
	if rec := check("agent-key"); rec.Code != 200 {
		t.Errorf("the agent key was limited by the dialer's use: %d", rec.Code)
	}
	if rec := check("agent-key"); rec.Code != 429 {
		t.Errorf("the agent key past its burst of 1: %d", rec.Code)
	}
	if rec := check("nobody"); rec.Code != 401 {
		t.Errorf("an unknown key: %d, want 401", rec.Code)
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/openapi.yaml", "/", "/customers/c1"} {
		for range 20 {
			if rec := send(t, h, "GET", path, "", ""); rec.Code != 200 {
				t.Fatalf("GET %s: %d, want 200 whatever the limits", path, rec.Code)
			}
		}
	}
	for role, want := range map[string]float64{"dialer": 1, "agent": 1} {
		if got := rateLimited(t, reg, role); got != want {
			t.Errorf("outreach_http_rate_limited_total{role=%q} = %v, want %v", role, got, want)
		}
	}
}

// TestRateLimitsWithoutKeys limits each client address at the admin
// role's limit, and never trusts X-Forwarded-For.
func TestRateLimitsWithoutKeys(t *testing.T) {
	h := httpapi.New(httpapi.Config{
		Producer: &memProducer{}, Timelines: &memTimelines{}, Now: func() time.Time { return now },
		RateLimits: httpapi.RateLimits{httpapi.RoleAdmin: {PerSecond: 0.01, Burst: 2}},
	}).Handler()
	get := func(addr, forwarded string) int {
		req := httptest.NewRequest("GET", "/v1/customers/c1/contacts", nil)
		req.RemoteAddr = addr
		if forwarded != "" {
			req.Header.Set("X-Forwarded-For", forwarded)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	for i, want := range []int{200, 200, 429} {
		if got := get("10.0.0.1:4000", "192.0.2."+strconv.Itoa(i)); got != want {
			t.Errorf("request %d from 10.0.0.1: %d, want %d", i+1, got, want)
		}
	}
	if got := get("10.0.0.1:4001", ""); got != 429 {
		t.Errorf("another port of 10.0.0.1: %d, want 429", got)
	}
	if got := get("10.0.0.2:4000", ""); got != 200 {
		t.Errorf("10.0.0.2: %d, want 200", got)
	}
}

func decodeErr(rec *httptest.ResponseRecorder, e *apiErr) bool {
	return strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") && json.Unmarshal(rec.Body.Bytes(), e) == nil && e.Error.Message != ""
}

// rateLimited reads outreach_http_rate_limited_total{role} from reg.
func rateLimited(t *testing.T, reg *prometheus.Registry, role string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "outreach_http_rate_limited_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "role" && l.GetValue() == role {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no outreach_http_rate_limited_total{role=%q}", role)
	return 0
}
