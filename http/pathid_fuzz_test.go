package http_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/outreach/outreach/contact"
	httpapi "github.com/outreach/outreach/http"
)

// FuzzPathID sends a customer id through the router twice: escaped once,
// as clients do, where a valid id must reach the handler unchanged (round
// trip); and as a raw path segment, where the answer must be a 200 for the
// segment decoded once, or a 4xx JSON error naming customer_id; never a 5xx
// or a panic. Seeds: testdata/fuzz/FuzzPathID.
func FuzzPathID(f *testing.F) {
	rec := &idRecorder{}
	h := httpapi.New(httpapi.Config{Producer: &memProducer{}, Timelines: rec, Now: func() time.Time { return now }}).Handler()
	get := func(t *testing.T, escaped string) (*httptest.ResponseRecorder, []string) {
		t.Helper()
		u, err := url.Parse("/v1/customers/" + escaped + "/contacts")
		if err != nil {
			return nil, nil
		}
		rec.ids = nil
		req := httptest.NewRequest("GET", "/", nil)
		req.URL, req.RequestURI = u, u.RequestURI()
		resp := httptest.NewRecorder()
		h.ServeHTTP(resp, req)
		return resp, rec.ids
	}
	f.Fuzz(func(t *testing.T, s string) {
		// Escaped once, a valid id arrives as itself.
		resp, ids := get(t, url.PathEscape(s))
		if contact.ValidCustomerID(s) == nil {
			if resp.Code != http.StatusOK || len(ids) != 1 || ids[0] != s {
				t.Fatalf("id %q: status %d, the handler saw %q", s, resp.Code, ids)
			}
		} else if resp.Code != http.StatusBadRequest || !strings.Contains(resp.Body.String(), `"field":"customer_id"`) {
			t.Fatalf("invalid id %q: %d %s, want a 400 naming customer_id", s, resp.Code, resp.Body)
		}

		// A raw segment is decoded once, or refused.
		if strings.ContainsAny(s, "/?#") {
			return
		}
		resp, ids = get(t, s)
		if resp == nil || resp.Code == http.StatusNotFound || resp.Code == http.StatusMovedPermanently {
			return // not a URL, or not this route
		}
		switch {
		case resp.Code == http.StatusOK:
			want, err := url.PathUnescape(s)
			if err != nil || len(ids) != 1 || ids[0] != want {
				t.Fatalf("raw %q: the handler saw %q, want %q decoded once", s, ids, want)
			}
		case resp.Code >= 400 && resp.Code < 500:
			if !strings.Contains(resp.Body.String(), `"field":"customer_id"`) {
				t.Fatalf("raw %q: %d %s, want an error naming customer_id", s, resp.Code, resp.Body)
			}
		default:
			t.Fatalf("raw %q: status %d: %s", s, resp.Code, resp.Body)
		}
	})
}
