package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// scrubServer answers POST /v1/lists/scrub as the issue describes it,
// streaming: c1 was called recently, c2 bought the product and has a
// cheaper offer, c3 has an open complaint (a warning), an empty id is
// invalid, "boom" breaks the connection, and anyone else may be called.
// Each row waits delay.
func scrubServer(t *testing.T, delay time.Duration) *fakeServer {
	t.Helper()
	var srv *fakeServer
	srv = newFakeServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != "POST" || r.URL.Path != "/v1/lists/scrub" {
			writeJSONResponse(w, 404, `{"error":{"code":"not_found","message":"no such route: `+r.Method+` `+r.URL.Path+`"}}`)
			return
		}
		rc := http.NewResponseController(w)
		rc.EnableFullDuplex()
		policy := "live"
		if p := r.URL.Query().Get("policy"); p != "" {
			policy = p
		}
		var body io.Reader = r.Body
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "multipart/form-data" {
			mr, err := r.MultipartReader()
			if err != nil {
				t.Errorf("multipart: %v", err)
				return
			}
			part, _ := mr.NextPart()
			inline, _ := io.ReadAll(part)
			srv.note(part.FormName() + ": " + string(inline))
			if body, err = mr.NextPart(); err != nil {
				t.Errorf("multipart: %v", err)
				return
			}
			srv.note(body.(*multipart.Part).FormName() + " " + body.(*multipart.Part).Header.Get("Content-Type"))
			policy = "inline"
		}
		cr := csv.NewReader(body)
		cr.ReuseRecord = true
		header, err := cr.Read()
		if err != nil {
			writeJSONResponse(w, 400, `{"error":{"code":"invalid","message":"line 1: want a header row"}}`)
			return
		}
		header[0] = strings.TrimPrefix(header[0], "\uFEFF")
		id := -1
		for i, h := range header {
			if h == "customer_id" {
				id = i
			}
		}
		if id < 0 {
			writeJSONResponse(w, 400, `{"error":{"code":"invalid","message":"line 1: the header has no customer_id column","field":"customer_id"}}`)
			return
		}
		q := r.URL.Query()
		summary := r.Header.Get("Accept") == "application/json"
		var cw *csv.Writer
		if !summary {
			w.Header().Set("Content-Type", "text/csv")
			w.Header().Set("Trailer", "X-Outreach-Scrub-Status")
			cw = csv.NewWriter(w)
			cw.Write(append(append([]string{}, header...), "allowed", "reasons", "detail"))
			cw.Flush()
			rc.Flush()
		}
		var rows, allowedRows, invalid int
		blocked := map[string]int{}
		for {
			rec, err := cr.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				panic(http.ErrAbortHandler)
			}
			switch rec[id] {
			case "stop": // the server stops the scrub after the answer has begun
				w.Header().Set("X-Outreach-Scrub-Status", "error: line 4: 3 fields where the header has 2")
				cw.Write([]string{"", "", "false", "error", "the scrub stopped here: line 4: 3 fields where the header has 2; the rows above were checked, the rest of the list was not"})
				cw.Flush()
				return
			case "stop-trailer": // the same, told by the trailer alone
				w.Header().Set("X-Outreach-Scrub-Status", "error: the store is unavailable")
				return
			}
			allowed, reasons, detail := "true", "", ""
			switch rec[id] {
			case "":
				allowed, reasons, detail = "false", "invalid", "customer_id is required"
				invalid++
			case "c1":
				allowed, reasons, detail = "false", "recent_contact", "called by a.jones (retention) 2h ago"
			case "c2":
				allowed, reasons, detail = "false", "already_purchased|better_offer", "bought fiber-500 on 2026-11-01"
			case "c3":
				reasons, detail = "open_complaint", "open complaint 77 (owner b.smith) since 3d ago"
			case "boom":
				panic(http.ErrAbortHandler)
			}
			rows++
			if allowed == "true" {
				allowedRows++
			} else {
				for _, c := range strings.Split(reasons, "|") {
					blocked[c]++
				}
			}
			time.Sleep(delay)
			if summary || (q.Get("only") == "allowed" && allowed != "true") {
				continue
			}
			cw.Write(append(append([]string{}, rec...), allowed, reasons, detail))
			cw.Flush()
			rc.Flush()
		}
		if summary {
			b, _ := json.Marshal(map[string]any{"rows": rows, "allowed": allowedRows, "blocked": blocked, "invalid": invalid, "policy": policy})
			writeJSONResponse(w, 200, string(b))
			return
		}
		w.Header().Set("X-Outreach-Scrub-Status", "ok")
	})
	return srv
}

const scrubList = "customer_id,name\r\nc1,\"Jones, Ann\"\r\nc2,Bo\r\nc3,Cy\r\nc4,Di\r\n,Ed\r\nc5,Flo\r\n"

const scrubbed = "customer_id,name,allowed,reasons,detail\n" +
	"c1,\"Jones, Ann\",false,recent_contact,called by a.jones (retention) 2h ago\n" +
	"c2,Bo,false,already_purchased|better_offer,bought fiber-500 on 2026-11-01\n" +
	"c3,Cy,true,open_complaint,open complaint 77 (owner b.smith) since 3d ago\n" +
	"c4,Di,true,,\n" +
	",Ed,false,invalid,customer_id is required\n" +
	"c5,Flo,true,,\n"

func TestScrubToFile(t *testing.T) {
	srv := scrubServer(t, 0)
	dir := t.TempDir()
	list := filepath.Join(dir, "list.csv")
	os.WriteFile(list, []byte(scrubList), 0o600)
	out := filepath.Join(dir, "out.csv")

	r := runCtl(t, srv.env(), "", "scrub", list, "-o", out, "--channel", "call", "--product", "fiber-500", "--price", "49",
		"--purpose", "sales", "--campaign", "autumn", "--at", "2026-11-24T10:00:00Z")
	if r.code != exitOK {
		t.Fatalf("scrub: %v", r)
	}
	req := srv.requests()[0]
	q, _ := url.ParseQuery(req.query)
	for k, v := range map[string]string{"channel": "call", "product": "fiber-500", "price": "49", "purpose": "sales",
		"campaign": "autumn", "at": "2026-11-24T10:00:00Z"} {
		if q.Get(k) != v {
			t.Errorf("query %s = %q, want %q (query %s)", k, q.Get(k), v, req.query)
		}
	}
	if q.Has("only") {
		t.Errorf("query has only= without --only-allowed: %s", req.query)
	}
	if req.contentType != "text/csv" || req.accept != "text/csv" || req.auth != "Bearer test-key" {
		t.Errorf("headers: Content-Type %q, Accept %q, Authorization %q", req.contentType, req.accept, req.auth)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != scrubbed {
		t.Errorf("out.csv =\n%s\nwant\n%s", got, scrubbed)
	}
	wantSummary := `
RESULT       ROWS   SHARE
allowed         3   50.0%
not allowed     3   50.0%
total           6  100.0%

REASON             ROWS   SHARE
already_purchased     1   16.7%
better_offer          1   16.7%
invalid               1   16.7%
recent_contact        1   16.7%

WARNING         ROWS   SHARE
open_complaint     1   16.7%
A row can have several reasons; it counts under each.
`
	if r.stdout != wantSummary {
		t.Errorf("summary on stdout =\n%s\nwant\n%s", r.stdout, wantSummary)
	}
	if !regexp.MustCompile(`(?m)^scrub: done: 6 rows in [\d.]+m?s(, [\d,]+ rows/s)?; sent \d+ B$`).MatchString(r.stderr) {
		t.Errorf("no final progress line on stderr:\n%s", r.stderr)
	}
	if files, _ := filepath.Glob(filepath.Join(dir, ".out.csv.partial-*")); len(files) != 0 {
		t.Errorf("left %v behind", files)
	}
}

func TestScrubToStdout(t *testing.T) {
	srv := scrubServer(t, 0)
	list := writeFile(t, "list.csv", scrubList)
	r := runCtl(t, srv.env(), "", "scrub", list, "--channel", "call")
	if r.code != exitOK || r.stdout != scrubbed {
		t.Errorf("stdout is not the scrubbed list alone: %v", r)
	}
	if !strings.Contains(r.stderr, "RESULT       ROWS   SHARE") || !strings.Contains(r.stderr, "scrub: done: 6 rows") {
		t.Errorf("progress and summary are not on stderr:\n%s", r.stderr)
	}

	t.Run("stdin", func(t *testing.T) {
		r := runCtl(t, srv.env(), scrubList, "scrub", "-", "--channel", "call")
		if r.code != exitOK || r.stdout != scrubbed {
			t.Errorf("%v", r)
		}
	})

	t.Run("only allowed", func(t *testing.T) {
		r := runCtl(t, srv.env(), "", "scrub", list, "--channel", "call", "--only-allowed")
		want := "customer_id,name,allowed,reasons,detail\n" +
			"c3,Cy,true,open_complaint,open complaint 77 (owner b.smith) since 3d ago\nc4,Di,true,,\nc5,Flo,true,,\n"
		if r.code != exitOK || r.stdout != want {
			t.Errorf("%v", r)
		}
		if q := srv.requests()[len(srv.requests())-1].query; !strings.Contains(q, "only=allowed") {
			t.Errorf("query %s has no only=allowed", q)
		}
		if !strings.Contains(r.stderr, "3 rows to call; --only-allowed left the others out") {
			t.Errorf("summary:\n%s", r.stderr)
		}
	})

	t.Run("raw", func(t *testing.T) {
		if q := srv.requests()[len(srv.requests())-1].query; strings.Contains(q, "raw") {
			t.Errorf("query %s asks for raw cells without --raw", q)
		}
		r := runCtl(t, srv.env(), "", "scrub", list, "--channel", "call", "--raw")
		if r.code != exitOK || r.stdout != scrubbed {
			t.Errorf("%v", r)
		}
		if q := srv.requests()[len(srv.requests())-1].query; !strings.Contains(q, "raw=true") {
			t.Errorf("query %s has no raw=true", q)
		}
	})

	t.Run("summary only", func(t *testing.T) {
		r := runCtl(t, srv.env(), "", "scrub", list, "--channel", "call", "--summary-only")
		if r.code != exitOK {
			t.Fatalf("%v", r)
		}
		if a := srv.requests()[len(srv.requests())-1].accept; a != "application/json" {
			t.Errorf("Accept = %q, want application/json", a)
		}
		for _, want := range []string{"allowed         3   50.0%", "total           6  100.0%", "already_purchased     1   16.7%", "invalid               1   16.7%"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("stdout has no %q:\n%s", want, r.stdout)
			}
		}
		if !regexp.MustCompile(`(?m)^scrub: done: sent \d+ B in `).MatchString(r.stderr) {
			t.Errorf("progress:\n%s", r.stderr)
		}
	})

	t.Run("-o -", func(t *testing.T) {
		r := runCtl(t, srv.env(), "", "scrub", list, "-o", "-")
		if r.code != exitOK || r.stdout != scrubbed || !strings.Contains(r.stderr, "RESULT") {
			t.Errorf("%v", r)
		}
	})
}

func TestScrubFailures(t *testing.T) {
	srv := scrubServer(t, 0)
	dir := t.TempDir()
	out := filepath.Join(dir, "out.csv")
	noFile := func(t *testing.T) {
		t.Helper()
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("a failed scrub left %v", entries)
		}
	}

	t.Run("the server refuses the list", func(t *testing.T) {
		r := runCtl(t, srv.env(), "", "scrub", writeFile(t, "list.csv", "id,name\nc1,Ann\n"), "-o", out)
		if r.code != exitFailed || !strings.Contains(r.stderr, "the server answered 400 invalid: customer_id: line 1: the header has no customer_id column") {
			t.Errorf("%v", r)
		}
		noFile(t)
	})

	t.Run("the answer breaks off", func(t *testing.T) {
		r := runCtl(t, srv.env(), "", "scrub", writeFile(t, "list.csv", "customer_id\nc1\nc4\nboom\nc5\n"), "-o", out)
		if r.code != exitFailed || !strings.Contains(r.stderr, "the answer broke off after 2 rows") {
			t.Errorf("%v", r)
		}
		noFile(t)
	})

	t.Run("the server stops the scrub", func(t *testing.T) {
		r := runCtl(t, srv.env(), "", "scrub", writeFile(t, "list.csv", "customer_id,name\nc1,Ann\nc4,Di\nstop,x\nc5,Flo\n"), "-o", out)
		want := "the scrub stopped early after 2 rows: the scrub stopped here: line 4: 3 fields where the header has 2; the rows above were checked"
		if r.code != exitFailed || !strings.Contains(r.stderr, want) {
			t.Errorf("want exit 1 and %q: %v", want, r)
		}
		noFile(t)
	})

	t.Run("the trailer says the scrub stopped", func(t *testing.T) {
		r := runCtl(t, srv.env(), "", "scrub", writeFile(t, "list.csv", "customer_id\nc1\nstop-trailer\n"), "-o", out)
		if r.code != exitFailed || !strings.Contains(r.stderr, "the scrub stopped early after 1 rows: the store is unavailable") {
			t.Errorf("%v", r)
		}
		noFile(t)
	})

	t.Run("an older server", func(t *testing.T) {
		old := newFakeServer(t, false, func(w http.ResponseWriter, r *http.Request) {
			writeJSONResponse(w, 404, `{"error":{"code":"not_found","message":"no such route: POST /v1/lists/scrub"}}`)
		})
		r := runCtl(t, old.env(), "", "scrub", writeFile(t, "list.csv", scrubList), "-o", out)
		if r.code != exitFailed || !strings.Contains(r.stderr, "older than this outreachctl") {
			t.Errorf("%v", r)
		}
		noFile(t)
	})

	t.Run("the server stalls", func(t *testing.T) {
		stall := newFakeServer(t, false, func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "text/csv")
			io.WriteString(w, "customer_id,allowed,reasons,detail\n")
			http.NewResponseController(w).Flush()
			<-r.Context().Done()
		})
		r := runCtl(t, stall.env(), "", "scrub", writeFile(t, "list.csv", scrubList), "-o", out, "--idle-timeout", "200ms")
		if r.code != exitFailed || !strings.Contains(r.stderr, "nothing was sent or received for 200ms (--idle-timeout)") {
			t.Errorf("%v", r)
		}
		noFile(t)
	})

	t.Run("not the scrub's columns", func(t *testing.T) {
		odd := newFakeServer(t, false, func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "customer_id,ok\nc1,yes\n")
		})
		r := runCtl(t, odd.env(), "", "scrub", writeFile(t, "list.csv", scrubList), "-o", out)
		if r.code != exitFailed || !strings.Contains(r.stderr, "no allowed and reasons columns") {
			t.Errorf("%v", r)
		}
		noFile(t)
	})
}

func TestScrubWhatIf(t *testing.T) {
	srv := scrubServer(t, 0)
	list := writeFile(t, "list.csv", scrubList)

	r := runCtl(t, srv.env(), "", "scrub", list, "--summary-only", "--policy", "lenient")
	if r.code != exitOK || !strings.Contains(srv.requests()[0].query, "policy=lenient") ||
		!strings.Contains(r.stdout, "What if, under the policy lenient (the policy in force is unchanged):") {
		t.Errorf("--policy: query %s: %v", srv.requests()[0].query, r)
	}

	policy := writeFile(t, "policy.yaml", "cooldowns:\n  call: 24h\n")
	r = runCtl(t, srv.env(), "", "scrub", list, "--policy-file", policy, "-o", filepath.Join(t.TempDir(), "out.csv"))
	if r.code != exitOK {
		t.Fatalf("--policy-file: %v", r)
	}
	if got := strings.Join(srv.noted(), "\n"); got != "policy: cooldowns:\n  call: 24h\n\nlist text/csv" {
		t.Errorf("the server got the parts:\n%s", got)
	}
	if !strings.Contains(srv.requests()[1].contentType, "multipart/form-data; boundary=") {
		t.Errorf("Content-Type = %q", srv.requests()[1].contentType)
	}
	if !strings.Contains(r.stdout, "total           6  100.0%") {
		t.Errorf("summary:\n%s", r.stdout)
	}

	if r := runCtl(t, srv.env(), "", "scrub", list, "--policy", "x", "--policy-file", policy); r.code != exitUsage {
		t.Errorf("--policy with --policy-file: %v", r)
	}
	if r := runCtl(t, srv.env(), "", "scrub", list, "--policy-file", policy+".missing"); r.code != exitUsage {
		t.Errorf("a missing --policy-file: %v", r)
	}
}

func TestScrubPlainProgress(t *testing.T) {
	srv := scrubServer(t, 2*time.Millisecond)
	var b strings.Builder
	b.WriteString("customer_id\n")
	for i := range 100 {
		fmt.Fprintf(&b, "c%d\n", 10+i)
	}
	r := runCtl(t, srv.env(), "", "--progress-every", "20ms", "scrub", writeFile(t, "list.csv", b.String()), "-o", filepath.Join(t.TempDir(), "out.csv"))
	if r.code != exitOK {
		t.Fatalf("%v", r)
	}
	periodic := regexp.MustCompile(`(?m)^scrub: [\d,]+ rows(, [\d,]+ rows/s)?; sent (\d+ B of \d+ B \(\d+%\), ETA .*|all \d+ B)$`)
	lines := periodic.FindAllString(r.stderr, -1)
	if len(lines) < 3 {
		t.Errorf("%d periodic progress lines, want several:\n%s", len(lines), r.stderr)
	}
	if !strings.Contains(r.stderr, "scrub: done: 100 rows in ") {
		t.Errorf("no final line:\n%s", r.stderr)
	}
	if strings.ContainsAny(r.stderr, "\r\x1b") {
		t.Errorf("plain progress draws like a terminal bar:\n%q", r.stderr)
	}
	if !strings.Contains(r.stdout, "allowed       100  100.0%") {
		t.Errorf("summary:\n%s", r.stdout)
	}
}

func TestScrubProgressBar(t *testing.T) {
	srv := scrubServer(t, 2*time.Millisecond)
	var b strings.Builder
	b.WriteString("customer_id\n")
	for i := range 200 {
		fmt.Fprintf(&b, "c%d\n", 10+i)
	}
	r := runCtl(t, srv.env(), "", "--progress", "bar", "scrub", writeFile(t, "list.csv", b.String()), "-o", filepath.Join(t.TempDir(), "out.csv"))
	if r.code != exitOK {
		t.Fatalf("%v", r)
	}
	if !strings.Contains(r.stderr, "\r") || !strings.Contains(r.stderr, "100%") || !strings.Contains(r.stderr, "200 rows") {
		t.Errorf("no progress bar on stderr:\n%q", r.stderr)
	}
	if !strings.Contains(r.stderr, "\nscrub: done: 200 rows in ") {
		t.Errorf("no final line after the bar:\n%q", r.stderr)
	}
}

func TestScrubProgressBarOfStdin(t *testing.T) {
	srv := scrubServer(t, time.Millisecond)
	var b strings.Builder
	b.WriteString("customer_id\n")
	for i := range 300 {
		fmt.Fprintf(&b, "c%d\n", 10+i)
	}
	// The size of stdin is not known: a spinner instead of a bar.
	r := runCtl(t, srv.env(), b.String(), "--progress", "bar", "scrub", "-", "-o", filepath.Join(t.TempDir(), "out.csv"))
	if r.code != exitOK || !strings.Contains(r.stderr, "300 rows") || !strings.Contains(r.stderr, "\nscrub: done: 300 rows in ") {
		t.Errorf("%q", r.stderr)
	}
}

func TestScrubSummaryCountsEachReason(t *testing.T) {
	s := newScrubSummary()
	s.add(false, "recent_contact|frequency_cap")
	s.add(false, "recent_contact")
	s.add(false, "invalid")
	s.add(true, "")
	var b bytes.Buffer
	s.write(&b)
	want := `
RESULT       ROWS   SHARE
allowed         1   25.0%
not allowed     3   75.0%
total           4  100.0%

REASON          ROWS   SHARE
recent_contact     2   50.0%
frequency_cap      1   25.0%
invalid            1   25.0%
A row can have several reasons; it counts under each.
`
	if b.String() != want {
		t.Errorf("summary =\n%s\nwant\n%s", b.String(), want)
	}
	if s.invalid != 1 || s.rows != 4 || s.allowed != 1 {
		t.Errorf("counts: %+v", s)
	}
}
