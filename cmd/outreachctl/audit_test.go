package main

import (
	"net/http"
	"strings"
	"testing"
)

func TestAudit(t *testing.T) {
	t.Parallel()
	srv := newFakeServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		writeJSONResponse(w, 200, `{"customer_id":"c42","partial":false,"decisions":[
 {"kind":"check","time":"2026-11-23T10:00:00Z","role":"dialer","key_id":"a1b2c3","customer_id":"c42","policy":"default",
  "request":{"channel":"call","purpose":"sales","campaign":"autumn","agent":"b.lee"},"allowed":false,
  "reasons":[{"code":"recent_contact","event_ids":["k1"]},{"code":"open_complaint","warning":true,"event_ids":["x1"]}]},
 {"kind":"erasure","time":"2026-11-22T10:00:00Z","role":"admin","customer_id":"c42","policy":"default","allowed":false}]}`)
	})
	r := runCtl(t, srv.env(), "", "audit", "c42", "--since", "7d")
	if r.code != 0 {
		t.Fatalf("audit: %v", r)
	}
	if req := srv.requests()[0]; req.method != "GET" || req.path != "/v1/customers/c42/decisions" || !strings.Contains(req.query, "since=7d") {
		t.Errorf("request = %+v", req)
	}
	for _, s := range []string{"TIME", "dialer (key a1b2c3)", "call sales, campaign autumn, agent b.lee", "blocked",
		"recent_contact (k1), ~open_complaint (x1)", "erasure", "erased"} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("output has no %q:\n%s", s, r.stdout)
		}
	}
	if r := runCtl(t, srv.env(), "", "audit", "c42", "--since", "soon"); r.code != exitUsage {
		t.Errorf("--since soon: %v, want a usage error", r)
	}
}

func TestForget(t *testing.T) {
	t.Parallel()
	srv := newFakeServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		writeJSONResponse(w, 202, `{"customer_id":"c42","event_id":"forget-1"}`)
	})
	// Not confirmed: nothing is sent.
	if r := runCtl(t, srv.env(), "c41\n", "forget", "c42"); r.code != 1 || !strings.Contains(r.stderr, "not confirmed") {
		t.Errorf("a wrong confirmation: %v", r)
	}
	if n := len(srv.requests()); n != 0 {
		t.Fatalf("%d requests sent without confirmation", n)
	}
	for _, args := range [][]string{{"forget", "c42"}, {"forget", "c42", "--yes"}} {
		r := runCtl(t, srv.env(), "c42\n", args...)
		if r.code != 0 || !strings.Contains(r.stdout, "erasure written (event forget-1)") {
			t.Errorf("%v: %v", args, r)
		}
	}
	if reqs := srv.requests(); len(reqs) != 2 || reqs[0].method != "DELETE" || reqs[0].path != "/v1/customers/c42" {
		t.Errorf("requests = %+v", reqs)
	}
}
