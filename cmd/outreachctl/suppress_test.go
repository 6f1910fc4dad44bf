package main

import (
	"net/http"
	"strings"
	"testing"
)

func TestSuppress(t *testing.T) {
	const list = "customer_id,phone,reason,expires_at\nc1,,asked us,\n,+4791234567,regulator,2027-01-01T00:00:00Z\n"
	srv := newFakeServer(t, true, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == "PUT" && strings.Contains(r.URL.Path, "bad"):
			writeJSONResponse(w, 400, `{"error":{"code":"invalid","message":"line 3: phone: cannot read \"12\" as a phone number","field":"list"}}`)
		case r.Method == "PUT" || r.Method == "POST":
			writeJSONResponse(w, 200, `{"list":"internal dnc","rows":2,"entries":2,"expired":1,"ignored_columns":["name"]}`)
		case r.Method == "GET" && r.URL.Query().Has("phone"):
			writeJSONResponse(w, 200, `{"list":"internal dnc","phone":"+4791234567","reason":"regulator","expires_at":"2027-01-01T00:00:00Z","expired":false}`)
		case r.Method == "GET" && r.URL.Query().Has("customer_id"):
			writeJSONResponse(w, 404, `{"error":{"code":"not_found","message":"list internal dnc has no such entry"}}`)
		case r.Method == "GET":
			writeJSONResponse(w, 200, `{"list":"internal dnc","entries":1200}`)
		case r.Method == "DELETE":
			w.WriteHeader(http.StatusNoContent)
		}
	})
	file := writeFile(t, "dnc.csv", list)

	r := runCtl(t, srv.env(), "", "suppress", "put", "internal dnc", file, "--reason", "asked not to be called")
	if r.code != exitOK || r.stdout != "suppress put internal dnc: 2 rows read, 2 entries written, 1 expired rows left out\nignored columns: name\n" {
		t.Errorf("put: %v", r)
	}
	req := srv.requests()[0]
	if req.method != "PUT" || req.path != "/v1/suppressions/internal%20dnc" || req.query != "reason=asked+not+to+be+called" ||
		req.contentType != "text/csv" || string(req.body) != list || req.auth != "Bearer test-key" {
		t.Errorf("put sent %s %s?%s (%s, %s): %q", req.method, req.path, req.query, req.contentType, req.auth, req.body)
	}
	if !strings.Contains(r.stderr, "suppress put: done: sent 94 B in ") {
		t.Errorf("no final progress line:\n%s", r.stderr)
	}

	if r := runCtl(t, srv.env(), "", "suppress", "add", "internal dnc", file); r.code != exitOK {
		t.Errorf("add: %v", r)
	}
	if req := srv.requests()[1]; req.method != "POST" || string(req.body) != list || req.query != "" {
		t.Errorf("add sent %s ?%s %q", req.method, req.query, req.body)
	}

	r = runCtl(t, srv.env(), "", "suppress", "get", "internal dnc", "--phone", "+47 912 34 567")
	if req := srv.requests()[2]; r.code != exitOK || req.method != "GET" || req.query != "phone=%2B47+912+34+567" ||
		!strings.HasPrefix(r.stdout, `internal dnc holds phone +4791234567: "regulator"; expires 2027-01-01 00:00 UTC (in `) {
		t.Errorf("get sent %s ?%s: %v", req.method, req.query, r)
	}
	r = runCtl(t, srv.env(), "", "suppress", "get", "internal dnc")
	if r.code != exitOK || r.stdout != "internal dnc holds 1200 entries\n" {
		t.Errorf("get of the size: %v", r)
	}
	r = runCtl(t, srv.env(), "", "suppress", "get", "internal dnc", "--customer-id", "c9")
	if r.code != exitFailed || !strings.Contains(r.stderr, "404 not_found: list internal dnc has no such entry") {
		t.Errorf("get of a missing entry: %v", r)
	}

	r = runCtl(t, srv.env(), "", "suppress", "delete", "internal dnc", "c1")
	if req := srv.requests()[5]; r.code != exitOK || req.method != "DELETE" || req.path != "/v1/suppressions/internal%20dnc/c1" ||
		r.stdout != "removed c1 from internal dnc\n" {
		t.Errorf("delete sent %s %s: %v", req.method, req.path, r)
	}

	r = runCtl(t, srv.env(), "", "suppress", "put", "bad", file)
	if r.code != exitFailed || !strings.Contains(r.stderr, `the server answered 400 invalid: list: line 3: phone: cannot read "12" as a phone number`) {
		t.Errorf("a refused list: %v", r)
	}
}
