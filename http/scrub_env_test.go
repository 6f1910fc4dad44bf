package http_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"io"
	"mime/multipart"
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

// listsEnv is a server whose checks and suppression lists are the Redis
// store on the test's Redis (real or miniredis), holding a few customers:
//
//	c1  called 2h ago                       recent_contact on call
//	c2  bought fiber-500 30 days ago        already_purchased of fiber-500
//	c3  opted out of every channel          opted_out
//	c4  nothing                             allowed
//	c5  on the list litigators              do_not_call
//	c6  an open complaint                   open_complaint for sales
//
// and the phone +4791234567 on the list regulator until a day from now.
type listsEnv struct {
	store   *redis.Store
	checker *check.Service
	redis   *testenv.Redis
	srv     *httpapi.Server
	h       http.Handler
}

type listsOptions struct {
	keys    *httpapi.Keys
	presets map[string]*dedupe.Policy
	batch   int
	maxBody int64
	store   check.Store // default the Redis store
	noLists bool        // no suppression store
}

func newListsEnv(t *testing.T, o listsOptions) *listsEnv {
	t.Helper()
	r := testenv.NewRedis(t)
	store := redis.New(r.Client, redis.Options{Prefix: r.Prefix, Now: func() time.Time { return now }})
	env := &listsEnv{store: store, redis: r}
	ctx := context.Background()
	ev := func(id, typ, customer string, at time.Time, mod func(*contact.Event)) contact.Event {
		e := contact.Event{ID: id, Type: contact.Type(typ), CustomerID: customer, At: at}
		if mod != nil {
			mod(&e)
		}
		if err := e.Normalize(contact.Defaults{}); err != nil {
			t.Fatal(err)
		}
		return e
	}
	if _, err := store.Apply(ctx, []contact.Event{
		ev("k1", "contact", "c1", now.Add(-2*time.Hour), func(e *contact.Event) { e.Channel = contact.Call; e.Agent = "a.jones" }),
		ev("p1", "purchase", "c2", now.Add(-30*24*time.Hour), func(e *contact.Event) { e.Product = "fiber-500"; e.OrderID = "991" }),
		ev("o1", "opt_out", "c3", now.Add(-24*time.Hour), nil),
		ev("x1", "complaint", "c6", now.Add(-24*time.Hour), func(e *contact.Event) { e.CaseID = "77" }),
	}); err != nil {
		t.Fatal(err)
	}
	until := now.Add(24 * time.Hour)
	if _, err := store.ReplaceSuppressions(ctx, "litigators", seqOf(dedupe.Suppression{CustomerID: "c5", Reason: "sued us"})); err != nil {
		t.Fatal(err)
	}
	if _, err := store.ReplaceSuppressions(ctx, "regulator", seqOf(dedupe.Suppression{Phone: "+4791234567", Reason: "national register", ExpiresAt: &until})); err != nil {
		t.Fatal(err)
	}
	var facts check.Store = store
	if o.store != nil {
		facts = o.store
	}
	checker := check.New(check.Config{Store: facts, Policy: dedupe.DefaultPolicy, Now: func() time.Time { return now }})
	env.checker = checker
	lists := httpapi.ListsConfig{Suppressions: store, ScrubBatch: o.batch}
	if o.noLists {
		lists.Suppressions = nil
	}
	if o.presets != nil {
		lists.Presets = func() map[string]*dedupe.Policy { return o.presets }
	}
	env.srv = httpapi.New(httpapi.Config{
		Producer: &memProducer{}, Timelines: &memTimelines{}, Checker: checker, Keys: o.keys,
		Now: func() time.Time { return now }, MaxBody: o.maxBody, Lists: lists,
	})
	env.h = env.srv.Handler()
	return env
}

func seqOf(es ...dedupe.Suppression) func(func(dedupe.Suppression, error) bool) {
	return func(yield func(dedupe.Suppression, error) bool) {
		for _, e := range es {
			if !yield(e, nil) {
				return
			}
		}
	}
}

// upload sends body to path with the given headers ("Name: value").
func upload(t *testing.T, h http.Handler, method, path string, body io.Reader, headers ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, body)
	req.Header.Set("Content-Type", "text/csv")
	for _, hv := range headers {
		k, v, _ := strings.Cut(hv, ": ")
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// readCSV parses a scrub's answer.
func readCSV(t *testing.T, body []byte) [][]string {
	t.Helper()
	rows, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(body, []byte("\xef\xbb\xbf")))).ReadAll()
	if err != nil {
		t.Fatalf("the answer is not CSV: %v\n%s", err, body)
	}
	return rows
}

// multipartBody returns a body with a policy part (if policy is not nil)
// and a list part, and its Content-Type.
func multipartBody(t *testing.T, policy *string, list string) (io.Reader, string) {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	if policy != nil {
		pw, _ := w.CreateFormFile("policy", "policy.yaml")
		io.WriteString(pw, *policy)
	}
	lw, _ := w.CreateFormFile("list", "list.csv")
	io.WriteString(lw, list)
	w.Close()
	return &b, w.FormDataContentType()
}
