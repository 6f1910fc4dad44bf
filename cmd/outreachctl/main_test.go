package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// result is what one run of outreachctl did.
type result struct {
	code           int
	stdout, stderr string
}

// runCtl runs outreachctl in-process with args, the environment env (and
// nothing else) and stdin.
func runCtl(t *testing.T, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	a := &app{stdin: strings.NewReader(stdin), stdout: &stdout, stderr: &stderr,
		getenv: func(k string) string { return env[k] }, retryWait: time.Millisecond, now: time.Now}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := a.run(ctx, args)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

func (r result) String() string {
	return "exit " + itoa(r.code) + "\n--- stdout:\n" + r.stdout + "--- stderr:\n" + r.stderr
}

func itoa(n int) string { return commas(int64(n)) }

// fakeServer is an httptest server that records the requests it gets.
type fakeServer struct {
	*httptest.Server
	mu    sync.Mutex
	reqs  []recorded
	notes []string // what handlers noted
}

func (f *fakeServer) note(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.notes = append(f.notes, s)
}

func (f *fakeServer) noted() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.notes...)
}

type recorded struct {
	method, path, query, auth, contentType, accept string
	body                                           []byte
}

// newFakeServer serves handler, after recording each request; handler may
// read the body itself when read is false.
func newFakeServer(t *testing.T, read bool, handler http.HandlerFunc) *fakeServer {
	t.Helper()
	f := &fakeServer{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := recorded{method: r.Method, path: r.URL.EscapedPath(), query: r.URL.RawQuery, auth: r.Header.Get("Authorization"),
			contentType: r.Header.Get("Content-Type"), accept: r.Header.Get("Accept")}
		if read {
			rec.body, _ = io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(rec.body))
		}
		f.mu.Lock()
		f.reqs = append(f.reqs, rec)
		f.mu.Unlock()
		handler(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeServer) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.reqs...)
}

// env returns the environment that points outreachctl at f.
func (f *fakeServer) env() map[string]string {
	return map[string]string{"OUTREACH_SERVER": f.URL, "OUTREACH_KEY": "test-key"}
}

func writeJSONResponse(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestUsageErrorsExit2(t *testing.T) {
	srv := newFakeServer(t, true, func(w http.ResponseWriter, r *http.Request) {
		writeJSONResponse(w, 200, `{}`)
	})
	list := writeFile(t, "list.csv", "customer_id\nc1\n")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no command", nil, "missing command"},
		{"unknown command", []string{"dial"}, `unknown command "dial"`},
		{"unknown flag", []string{"check", "c1", "--channel", "call", "--colour"}, "unknown flag: --colour"},
		{"missing required flag", []string{"check", "c1"}, `required flag(s) "channel" not set`},
		{"missing argument", []string{"check", "--channel", "call"}, "missing CUSTOMER"},
		{"extra argument", []string{"check", "c1", "c2", "--channel", "call"}, `unexpected argument "c2"`},
		{"bad channel", []string{"check", "c1", "--channel", "pigeon"}, "--channel must be one of call, sms"},
		{"bad purpose", []string{"check", "c1", "--channel", "call", "--purpose", "fun"}, "--purpose must be one of"},
		{"bad currency", []string{"check", "c1", "--channel", "call", "--price", "3", "--currency", "euro"}, "--currency must be an ISO 4217 code"},
		{"bad time zone", []string{"check", "c1", "--channel", "call", "--timezone", "Mars/Olympus"}, "--timezone must be an IANA time zone"},
		{"bad at", []string{"check", "c1", "--channel", "call", "--at", "tomorrow"}, "--at must be an RFC 3339 time"},
		{"bad price", []string{"scrub", list, "--price", "cheap"}, `--price must be a number, 0 or more, such as 49.90; got "cheap"`},
		{"negative price", []string{"scrub", list, "--price", "-1"}, `--price must be a number, 0 or more, such as 49.90; got "-1"`},
		{"scrub without file", []string{"scrub"}, "missing LIST.csv"},
		{"scrub of a missing file", []string{"scrub", filepath.Join(t.TempDir(), "nope.csv")}, "no such file or directory"},
		{"scrub of a directory", []string{"scrub", t.TempDir()}, "is a directory"},
		{"scrub summary and only allowed", []string{"scrub", list, "--summary-only", "--only-allowed"}, "do not go together"},
		{"scrub to an unwritable place", []string{"scrub", list, "-o", filepath.Join(t.TempDir(), "no", "dir", "out.csv")}, "cannot write -o"},
		{"contacts limit", []string{"contacts", "c1", "--limit", "0"}, "--limit must be from 1 to 1000"},
		{"contacts before", []string{"contacts", "c1", "--before", "yesterday"}, "--before is not a cursor from this API"},
		{"events without subcommand", []string{"events"}, "missing command"},
		{"events unknown subcommand", []string{"events", "push", "x"}, `unknown command "push"`},
		{"events batch", []string{"events", "send", list, "--batch", "1001"}, "--batch must be from 1 to 1000"},
		{"suppress get by both", []string{"suppress", "get", "dnc", "--customer-id", "c1", "--phone", "+4791234567"}, "give --customer-id or --phone, not both"},
		{"suppress put without a file", []string{"suppress", "put", "dnc"}, "missing FILE.csv"},
		{"bad progress", []string{"--progress", "loud", "check", "c1", "--channel", "call"}, "--progress must be auto, bar, plain or none"},
		{"bad server", []string{"--server", "ftp://example.com", "check", "c1", "--channel", "call"}, "--server must be an http or https URL"},
		{"bad timeout", []string{"--timeout", "soon", "check", "c1", "--channel", "call"}, `invalid argument "soon" for "--timeout"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runCtl(t, srv.env(), "", tc.args...)
			if r.code != exitUsage {
				t.Errorf("exit code %d, want %d\n%v", r.code, exitUsage, r)
			}
			if !strings.Contains(r.stderr, tc.want) || !strings.Contains(r.stderr, "--help' for usage") {
				t.Errorf("stderr does not say %q and point to --help:\n%s", tc.want, r.stderr)
			}
		})
	}
	if n := len(srv.requests()); n != 0 {
		t.Errorf("usage errors sent %d requests, want none", n)
	}
}

// TestHelpOnEveryCommand runs --help on every command.
func TestHelpOnEveryCommand(t *testing.T) {
	var walk func(path []string, c *cobra.Command)
	walk = func(path []string, c *cobra.Command) {
		for _, sub := range c.Commands() {
			if sub.Hidden || sub.Name() == "help" {
				continue
			}
			walk(append(append([]string(nil), path...), sub.Name()), sub)
		}
		t.Run(strings.Join(append([]string{"outreachctl"}, path...), " "), func(t *testing.T) {
			r := runCtl(t, nil, "", append(path, "--help")...)
			if r.code != exitOK || !strings.Contains(r.stdout, "Usage:") || r.stderr != "" {
				t.Errorf("--help: %v", r)
			}
		})
	}
	walk(nil, (&app{}).rootCommand())
}

func TestServerAndKeyFromEnvAndFlags(t *testing.T) {
	srv := newFakeServer(t, true, func(w http.ResponseWriter, r *http.Request) {
		writeJSONResponse(w, 200, `{"customer_id":"c1","allowed":true,"reasons":[],"claim":null}`)
	})
	other := newFakeServer(t, true, func(w http.ResponseWriter, r *http.Request) {
		writeJSONResponse(w, 200, `{"customer_id":"c1","allowed":true,"reasons":[],"claim":null}`)
	})

	if r := runCtl(t, srv.env(), "", "check", "c1", "--channel", "call"); r.code != 0 {
		t.Fatalf("check: %v", r)
	}
	if got := srv.requests()[0].auth; got != "Bearer test-key" {
		t.Errorf("Authorization = %q, want the key of OUTREACH_KEY", got)
	}

	// Flags win over the environment.
	if r := runCtl(t, srv.env(), "", "--server", other.URL, "--key", "flag-key", "check", "c1", "--channel", "call"); r.code != 0 {
		t.Fatalf("check: %v", r)
	}
	if n := len(srv.requests()); n != 1 {
		t.Errorf("the OUTREACH_SERVER server got %d requests, want 1: --server wins", n)
	}
	if got := other.requests()[0].auth; got != "Bearer flag-key" {
		t.Errorf("Authorization = %q, want the key of --key", got)
	}

	// A server without a scheme is http; without a key no header is sent.
	host := strings.TrimPrefix(srv.URL, "http://")
	if r := runCtl(t, nil, "", "--server", host, "check", "c1", "--channel", "call"); r.code != 0 {
		t.Fatalf("check: %v", r)
	}
	if got := srv.requests()[1].auth; got != "" {
		t.Errorf("Authorization = %q without a key, want none", got)
	}
}

func TestRequestFailuresExit1(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   string
		want   []string
	}{
		{"error JSON", 403, `{"error":{"code":"forbidden","message":"the agent role may not use this endpoint"}}`,
			[]string{"the server answered 403 forbidden: the agent role may not use this endpoint"}},
		{"error JSON with a field", 400, `{"error":{"code":"invalid","message":"must be an IANA time zone","field":"timezone"}}`,
			[]string{"400 invalid: timezone: must be an IANA time zone"}},
		{"no key", 401, `{"error":{"code":"unauthorized","message":"send a valid API key as Authorization: Bearer KEY"}}`,
			[]string{"401 unauthorized", "set --key or OUTREACH_KEY"}},
		{"older server", 404, `{"error":{"code":"not_found","message":"no such route: POST /v1/check"}}`,
			[]string{"404 not_found", "older than this outreachctl"}},
		{"not the API's shape", 502, "<html><body>Bad gateway</body></html>",
			[]string{"the server answered 502 Bad Gateway: <html><body>Bad gateway</body></html>"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFakeServer(t, true, func(w http.ResponseWriter, r *http.Request) {
				writeJSONResponse(w, tc.status, tc.body)
			})
			r := runCtl(t, srv.env(), "", "check", "c1", "--channel", "call")
			if r.code != exitFailed {
				t.Errorf("exit code %d, want %d\n%v", r.code, exitFailed, r)
			}
			for _, want := range tc.want {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("stderr does not say %q:\n%s", want, r.stderr)
				}
			}
			if strings.Contains(r.stderr, "test-key") {
				t.Errorf("stderr shows the key:\n%s", r.stderr)
			}
		})
	}

	t.Run("no server", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		srv.Close()
		r := runCtl(t, map[string]string{"OUTREACH_SERVER": srv.URL}, "", "check", "c1", "--channel", "call")
		if r.code != exitFailed || !strings.Contains(r.stderr, "connection refused") {
			t.Errorf("want exit 1 naming the refused connection: %v", r)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		srv := newFakeServer(t, true, func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		})
		r := runCtl(t, srv.env(), "", "--timeout", "50ms", "check", "c1", "--channel", "call")
		if r.code != exitFailed || !strings.Contains(r.stderr, "no answer within --timeout 50ms") {
			t.Errorf("want exit 1 naming the timeout: %v", r)
		}
	})
}
