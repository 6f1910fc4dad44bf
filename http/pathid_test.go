package http_test

import (
	"context"
	"html"
	"iter"
	"net/http"
	"net/url"
	"regexp"
	"testing"
	"time"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/dedupe"
	httpapi "github.com/outreach/outreach/http"
)

// pathIDs are customer ids that a path must carry exactly: each is sent
// escaped once, as url.PathEscape and the page's encodeURIComponent do.
var pathIDs = []string{"c42", "a%41", "100%", "a%2541", "a/b", "../x", "kari@ex.no", "ü-Ωmega 東京", "a+b c", "x?y#z"}

// idRecorder records the ids and entries that handlers pass on.
type idRecorder struct {
	pageStore
	ids []string
}

func (r *idRecorder) Timeline(ctx context.Context, id string, page contact.Page) ([]contact.Event, contact.State, error) {
	r.ids = append(r.ids, id)
	return r.pageStore.Timeline(ctx, id, page)
}

func (r *idRecorder) NormalizePhone(raw string) (string, error) { return raw, nil }
func (r *idRecorder) ReplaceSuppressions(context.Context, string, iter.Seq2[dedupe.Suppression, error]) (int, error) {
	return 0, nil
}
func (r *idRecorder) AddSuppressions(context.Context, string, iter.Seq2[dedupe.Suppression, error]) (int, error) {
	return 0, nil
}
func (r *idRecorder) DeleteSuppression(_ context.Context, _ string, key dedupe.Suppression) (bool, error) {
	r.ids = append(r.ids, key.CustomerID)
	return true, nil
}
func (r *idRecorder) GetSuppression(context.Context, string, dedupe.Suppression) (dedupe.Suppression, error) {
	return dedupe.Suppression{}, contact.Errorf(contact.ENotFound, "none")
}
func (r *idRecorder) SuppressionCount(context.Context, string) (int, error) { return 0, nil }

// TestPathIDsAreDecodedOnce sends every id on every route that takes one
// and checks that the handler sees the id itself, decoded exactly once.
func TestPathIDsAreDecodedOnce(t *testing.T) {
	for _, id := range pathIDs {
		esc := url.PathEscape(id)
		for _, route := range []struct {
			method, path, form string
			status             int
		}{
			{"GET", "/v1/customers/" + esc + "/contacts", "", 200},
			{"GET", "/customers/" + esc + "/panel", "", 200},
			{"POST", "/customers/" + esc + "/check", "channel=call", 200},
			{"DELETE", "/v1/suppressions/dnc/customer:" + esc, "", 204},
		} {
			t.Run(route.method+" "+route.path, func(t *testing.T) {
				rec := &idRecorder{}
				ch := &memChecker{}
				h := httpapi.New(httpapi.Config{Producer: &memProducer{}, Timelines: rec, Checker: ch, Now: func() time.Time { return now },
					Lists: httpapi.ListsConfig{Suppressions: rec}}).Handler()
				ps := &pageServer{h: h}
				resp := ps.page(t, route.method, route.path, "", route.form)
				if resp.Code != route.status {
					t.Fatalf("status %d, want %d: %s", resp.Code, route.status, resp.Body)
				}
				got := rec.ids
				for _, r := range ch.got {
					got = append(got, r.CustomerID)
				}
				if len(got) == 0 {
					t.Fatal("the handler passed on no id")
				}
				for _, g := range got {
					if g != id {
						t.Errorf("the handler saw %q, want %q", g, id)
					}
				}
			})
		}
	}
}

// TestPagePathIDs checks the agent page's shell, its own links and its
// redirect for ids that need escaping.
func TestPagePathIDs(t *testing.T) {
	ps := newPageServer(t, nil, nil)
	for _, id := range pathIDs {
		esc := url.PathEscape(id)
		t.Run(id, func(t *testing.T) {
			body := pageHTML(t, ps.page(t, "GET", "/customers/"+esc, "", ""), 200)
			if got := attr(t, body, "data-customer"); got != id {
				t.Errorf("the shell's data-customer is %q, want %q", got, id)
			}
			panel := pageHTML(t, ps.page(t, "GET", "/customers/"+esc+"/panel", "", ""), 200)
			if got := attr(t, panel, "action"); got != "/customers/"+esc+"/check" {
				t.Errorf("the panel's check form posts to %q, want /customers/%s/check", got, esc)
			}
			rec := ps.page(t, "GET", "/?customer="+url.QueryEscape(id), "", "")
			if loc := rec.Header().Get("Location"); rec.Code != http.StatusSeeOther || loc != "/customers/"+esc {
				t.Errorf("the search redirects (%d) to %q, want /customers/%s", rec.Code, loc, esc)
			}
		})
	}
}

// attr returns the unescaped value of the first attribute name in body.
func attr(t *testing.T, body, name string) string {
	t.Helper()
	m := regexp.MustCompile(` ` + name + `="([^"]*)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no %s attribute", name)
	}
	return html.UnescapeString(m[1])
}
