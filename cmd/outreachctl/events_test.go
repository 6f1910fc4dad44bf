package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outreach/outreach/contact"
)

func event(id string) string {
	return fmt.Sprintf(`{"id":%q,"type":"contact","customer_id":"c1","at":"2026-11-23T09:00:00Z","channel":"call"}`, id)
}

// eventsServer answers POST /v1/events as outreachd does: all or none,
// with the index of the first invalid event. fault, if it returns true,
// has answered instead.
func eventsServer(t *testing.T, fault func(w http.ResponseWriter, ids []string) bool) (*fakeServer, *[]string) {
	t.Helper()
	var accepted []string
	srv := newFakeServer(t, true, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != "POST" || r.URL.Path != "/v1/events" {
			writeJSONResponse(w, 404, `{"error":{"code":"not_found","message":"no such route"}}`)
			return
		}
		var raws []json.RawMessage
		if err := json.NewDecoder(r.Body).Decode(&raws); err != nil {
			writeJSONResponse(w, 400, `{"error":{"code":"invalid","message":"malformed JSON array"}}`)
			return
		}
		var ids []string
		for i, raw := range raws {
			e, err := contact.Decode(raw, contact.Defaults{})
			if err != nil {
				writeJSONResponse(w, 400, fmt.Sprintf(`{"error":{"code":"invalid","message":%q,"index":%d}}`, err.Error(), i))
				return
			}
			ids = append(ids, e.ID)
		}
		if fault != nil && fault(w, ids) {
			return
		}
		accepted = append(accepted, ids...)
		writeJSONResponse(w, 202, fmt.Sprintf(`{"accepted":%d}`, len(ids)))
	})
	return srv, &accepted
}

func TestEventsSendReportsInvalidLinesByNumber(t *testing.T) {
	srv, accepted := eventsServer(t, nil)
	file := writeFile(t, "events.ndjson", strings.Join([]string{
		"\uFEFF" + event("e1"),
		"",
		`{"id":"x","type":"contact"`,
		event("e2") + "\r",
		`{"type":"contact","customer_id":"c1","at":"2026-11-23T09:00:00Z","channel":"call"}`,
		"   " + event("e3"),
		`{"id":"x","type":"contact","customer_id":"c1","at":"yesterday","channel":"call"}`,
		event("e4"),
		`[` + event("x") + `]`,
		event("e5"), // no newline at the end
	}, "\n"))

	r := runCtl(t, srv.env(), "", "events", "send", "--batch", "2", file)
	if r.code != exitFailed {
		t.Errorf("exit code %d, want %d when lines are invalid\n%v", r.code, exitFailed, r)
	}
	for _, want := range []string{
		"line 3: malformed JSON",
		"line 5: id: is required",
		`line 7: at: must be an RFC 3339 time such as 2026-01-02T15:04:05Z; got "yesterday"`,
		"line 9: must be a JSON struct",
		"4 lines were invalid or rejected; see above",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr does not say %q:\n%s", want, r.stderr)
		}
	}
	if strings.Contains(r.stderr, "line 2:") {
		t.Errorf("a blank line was reported:\n%s", r.stderr)
	}
	if got := strings.Join(*accepted, ","); got != "e1,e2,e3,e4,e5" {
		t.Errorf("accepted %s, want every valid event", got)
	}
	reqs := srv.requests()
	if len(reqs) != 3 {
		t.Errorf("%d requests, want 3 batches of up to 2", len(reqs))
	}
	for _, q := range reqs {
		if q.contentType != "application/json" || q.auth != "Bearer test-key" {
			t.Errorf("request headers: Content-Type %q, Authorization %q", q.contentType, q.auth)
		}
	}
	if !strings.Contains(r.stdout, "sent 5 events in 3 requests; 4 lines not sent") {
		t.Errorf("stdout: %s", r.stdout)
	}

	t.Run("all valid", func(t *testing.T) {
		srv, accepted := eventsServer(t, nil)
		var lines []string
		for i := range 2500 {
			lines = append(lines, event(fmt.Sprint("v", i)))
		}
		r := runCtl(t, srv.env(), "", "events", "send", writeFile(t, "ok.ndjson", strings.Join(lines, "\n")+"\n"))
		if r.code != exitOK || len(*accepted) != 2500 || len(srv.requests()) != 3 {
			t.Errorf("exit %d, %d accepted in %d requests, want 0, 2500 in 3 (of up to 1,000)\n%v", r.code, len(*accepted), len(srv.requests()), r)
		}
	})

	t.Run("stdin", func(t *testing.T) {
		srv, accepted := eventsServer(t, nil)
		r := runCtl(t, srv.env(), event("s1")+"\n"+event("s2")+"\n", "events", "send", "-")
		if r.code != exitOK || len(*accepted) != 2 {
			t.Errorf("%v", r)
		}
	})

	t.Run("dry run", func(t *testing.T) {
		srv, _ := eventsServer(t, nil)
		r := runCtl(t, srv.env(), "", "events", "send", "--dry-run", file)
		if r.code != exitFailed || !strings.Contains(r.stdout, "5 events valid, 4 lines invalid; nothing was sent") ||
			!strings.Contains(r.stderr, "line 5: id: is required") {
			t.Errorf("%v", r)
		}
		if n := len(srv.requests()); n != 0 {
			t.Errorf("--dry-run sent %d requests", n)
		}
	})
}

func TestEventsSendServerAnswers(t *testing.T) {
	lines := strings.Join([]string{event("a"), event("reject-me"), event("b"), event("c"), event("d")}, "\n")

	t.Run("a rejected event is reported by its line and the rest sent again", func(t *testing.T) {
		srv, accepted := eventsServer(t, func(w http.ResponseWriter, ids []string) bool {
			for i, id := range ids {
				if id == "reject-me" {
					writeJSONResponse(w, 400, fmt.Sprintf(`{"error":{"code":"invalid","message":"is already taken","field":"id","index":%d}}`, i))
					return true
				}
			}
			return false
		})
		r := runCtl(t, srv.env(), "", "events", "send", writeFile(t, "e.ndjson", lines))
		if r.code != exitFailed || !strings.Contains(r.stderr, "line 2: rejected by the server: id: is already taken") {
			t.Errorf("%v", r)
		}
		if got := strings.Join(*accepted, ","); got != "a,b,c,d" {
			t.Errorf("accepted %s, want a,b,c,d", got)
		}
	})

	t.Run("a batch too large is split", func(t *testing.T) {
		srv, accepted := eventsServer(t, func(w http.ResponseWriter, ids []string) bool {
			if len(ids) > 2 {
				writeJSONResponse(w, 413, `{"error":{"code":"too_large","message":"the request body is larger than 300 bytes"}}`)
				return true
			}
			return false
		})
		r := runCtl(t, srv.env(), "", "events", "send", writeFile(t, "e.ndjson", lines))
		if r.code != exitOK || len(*accepted) != 5 {
			t.Errorf("accepted %v: %v", *accepted, r)
		}
	})

	t.Run("an outage is retried", func(t *testing.T) {
		var calls atomic.Int32
		srv, accepted := eventsServer(t, func(w http.ResponseWriter, ids []string) bool {
			if calls.Add(1) <= 2 {
				writeJSONResponse(w, 503, `{"error":{"code":"unavailable","message":"kafka is unavailable"}}`)
				return true
			}
			return false
		})
		r := runCtl(t, srv.env(), "", "events", "send", writeFile(t, "e.ndjson", lines))
		if r.code != exitOK || len(*accepted) != 5 || !strings.Contains(r.stderr, "kafka is unavailable; trying again") {
			t.Errorf("accepted %v: %v", *accepted, r)
		}
	})

	t.Run("a refusal stops at its line", func(t *testing.T) {
		srv, _ := eventsServer(t, func(w http.ResponseWriter, ids []string) bool {
			if slices.Contains(ids, "c") {
				writeJSONResponse(w, 403, `{"error":{"code":"forbidden","message":"the agent role may not use this endpoint"}}`)
				return true
			}
			return false
		})
		r := runCtl(t, srv.env(), "", "events", "send", "--batch", "2", writeFile(t, "e.ndjson", lines))
		want := "stopped at line 3: the server answered 403 forbidden: the agent role may not use this endpoint\n" +
			"The events before line 3 were sent (2 events); sending the file again is safe"
		if r.code != exitFailed || !strings.Contains(r.stderr, want) {
			t.Errorf("want exit 1 and %q: %v", want, r)
		}
		if n := len(srv.requests()); n != 2 {
			t.Errorf("%d requests after a refusal, want 2", n)
		}
	})
}

func TestEventsSendPlainProgress(t *testing.T) {
	srv, _ := eventsServer(t, func(w http.ResponseWriter, ids []string) bool {
		time.Sleep(20 * time.Millisecond)
		return false
	})
	var lines []string
	for i := range 10 {
		lines = append(lines, event(fmt.Sprint("p", i)))
	}
	r := runCtl(t, srv.env(), "", "--progress-every", "5ms", "events", "send", "--batch", "1", writeFile(t, "e.ndjson", strings.Join(lines, "\n")))
	if r.code != exitOK {
		t.Fatalf("%v", r)
	}
	periodic := regexp.MustCompile(`(?m)^events send: \d+ events(, [\d,]+ events/s)?; sent (\d+ B of \d+ B \(\d+%\), ETA .*|all \d+ B)$`)
	if n := len(periodic.FindAllString(r.stderr, -1)); n < 2 {
		t.Errorf("%d periodic progress lines, want several:\n%s", n, r.stderr)
	}
	final := regexp.MustCompile(`(?m)^events send: done: 10 events in [\d.]+m?s, [\d,]+ events/s; sent \d+ B$`)
	if !final.MatchString(r.stderr) {
		t.Errorf("no final progress line:\n%s", r.stderr)
	}
	if strings.Contains(r.stderr, "\r") || strings.Contains(r.stderr, "\x1b") {
		t.Errorf("plain progress draws like a terminal bar:\n%q", r.stderr)
	}
	if strings.Contains(r.stdout, "events send:") {
		t.Errorf("progress went to stdout:\n%s", r.stdout)
	}
}

func TestEventsSendProgressBar(t *testing.T) {
	srv, accepted := eventsServer(t, nil)
	var lines []string
	for i := range 3000 {
		lines = append(lines, event(fmt.Sprint("b", i)))
		if i == 1500 {
			lines = append(lines, `{"id":"broken"`)
		}
	}
	r := runCtl(t, srv.env(), "", "--progress", "bar", "events", "send", "--batch", "100", writeFile(t, "e.ndjson", strings.Join(lines, "\n")))
	if r.code != exitFailed || len(*accepted) != 3000 {
		t.Fatalf("%d accepted: %v", len(*accepted), r)
	}
	if !regexp.MustCompile(`[\r\n]line 1502: malformed JSON`).MatchString(r.stderr) {
		t.Errorf("the invalid line is not on a line of its own:\n%q", r.stderr)
	}
	if !strings.Contains(r.stderr, "\r") || !strings.Contains(r.stderr, "3,000 events") || !strings.Contains(r.stderr, "\nevents send: done: 3,000 events in ") {
		t.Errorf("no progress bar:\n%q", r.stderr)
	}
}
