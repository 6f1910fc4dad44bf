package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// startWith runs outreachd in process on the test's Redis and Kafka with
// the extra settings.
func startWith(t *testing.T, extra map[string]string) *Main {
	t.Helper()
	env, _, _ := testEnv(t)
	for k, v := range extra {
		env[k] = v
	}
	cfg, err := LoadConfig(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return startMain(t, cfg)
}

// rawRequest opens a connection and sends head, the request line and
// headers of a request whose body is to follow.
func rawRequest(t *testing.T, addr, head string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	return conn
}

// closedWithin reads conn until the server closes it, for at most limit,
// and returns how long that took and whether it happened.
func closedWithin(conn net.Conn, limit time.Duration) (time.Duration, bool) {
	start := time.Now()
	conn.SetReadDeadline(start.Add(limit))
	_, err := io.Copy(io.Discard, conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return time.Since(start), false
	}
	return time.Since(start), true
}

// TestSlowClientsAreCut sends the headers of a check and of a suppression
// upload, then a body that stalls or trickles one byte every 300ms: the
// server must drop each within its timeout (1s here), not hold it open.
func TestSlowClientsAreCut(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for timeouts")
	}
	m := startWith(t, map[string]string{"OUTREACH_HTTP_READ_TIMEOUT": "1s", "OUTREACH_HTTP_UPLOAD_IDLE_TIMEOUT": "1s"})
	const csvHead = "customer_id\nc1\nc2\n"
	heads := map[string]struct{ head, drip string }{
		"check": {"POST /v1/check HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + dialerKey +
			"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{", " "},
		"suppression PUT": {"PUT /v1/suppressions/slow HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + adminKey +
			"\r\nContent-Type: text/csv\r\nTransfer-Encoding: chunked\r\n\r\n" + fmt.Sprintf("%x\r\n%s\r\n", len(csvHead), csvHead), "1\r\nc\r\n"},
	}
	for name, h := range heads {
		for _, trickle := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s trickle=%v", name, trickle), func(t *testing.T) {
				t.Parallel()
				conn := rawRequest(t, m.HTTPAddr, h.head)
				stop := make(chan struct{})
				defer close(stop)
				if trickle {
					go func() {
						tick := time.NewTicker(300 * time.Millisecond)
						defer tick.Stop()
						for {
							select {
							case <-stop:
								return
							case <-tick.C:
								if _, err := io.WriteString(conn, h.drip); err != nil {
									return
								}
							}
						}
					}()
				}
				took, closed := closedWithin(conn, 10*time.Second)
				if !closed || took > 3*time.Second {
					t.Fatalf("the server held the connection for %v (closed: %v), want it cut after about 1s", took.Round(time.Millisecond), closed)
				}
				t.Logf("cut after %v", took.Round(10*time.Millisecond))
			})
		}
	}
}

// TestHealthyUploadsOutliveTheTimeouts streams a suppression list and two
// scrubs for longer than the read and write timeouts, making progress all
// the while: none may be cut.
func TestHealthyUploadsOutliveTheTimeouts(t *testing.T) {
	if testing.Short() {
		t.Skip("streams for seconds")
	}
	m := startWith(t, map[string]string{"OUTREACH_HTTP_READ_TIMEOUT": "1s", "OUTREACH_HTTP_WRITE_TIMEOUT": "1s",
		"OUTREACH_HTTP_UPLOAD_IDLE_TIMEOUT": "1s"})
	base := "http://" + m.HTTPAddr
	// slowly writes header, then n rows every 250ms for 3s.
	slowly := func(header string, row func(i int) string) io.Reader {
		pr, pw := io.Pipe()
		go func() {
			io.WriteString(pw, header)
			for i, end := 0, time.Now().Add(3*time.Second); time.Now().Before(end); i++ {
				var b strings.Builder
				for j := range 5000 {
					b.WriteString(row(i*5000 + j))
				}
				if _, err := io.WriteString(pw, b.String()); err != nil {
					return
				}
				time.Sleep(250 * time.Millisecond)
			}
			pw.Close()
		}()
		return pr
	}
	post := func(method, path, accept string, body io.Reader) (*http.Response, []byte, time.Duration) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, body)
		req.Header.Set("Authorization", "Bearer "+adminKey)
		req.Header.Set("Content-Type", "text/csv")
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("%s %s: reading the answer: %v", method, path, err)
		}
		return resp, b, time.Since(start)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		resp, b, took := post("PUT", "/v1/suppressions/long", "", slowly("customer_id,reason\n", func(i int) string { return fmt.Sprintf("l-%d,a long list\n", i) }))
		if resp.StatusCode != 200 || took < 2*time.Second {
			t.Errorf("suppression PUT: %d after %v: %s", resp.StatusCode, took, b)
		}
	})
	wg.Go(func() {
		resp, b, took := post("POST", "/v1/lists/scrub", "", slowly("customer_id\n", func(i int) string { return fmt.Sprintf("s-%d\n", i) }))
		if status := resp.Trailer.Get("X-Outreach-Scrub-Status"); resp.StatusCode != 200 || status != "ok" || took < 2*time.Second {
			t.Errorf("scrub: %d, trailer %q after %v: %.200s", resp.StatusCode, status, took, b)
		}
	})
	wg.Go(func() {
		resp, b, took := post("POST", "/v1/lists/scrub", "application/json", slowly("customer_id\n", func(i int) string { return fmt.Sprintf("j-%d\n", i) }))
		if resp.StatusCode != 200 || !strings.Contains(string(b), `"rows":`) || took < 2*time.Second {
			t.Errorf("summary scrub: %d after %v: %s", resp.StatusCode, took, b)
		}
	})
	wg.Wait()
}

// servedConns counts the connections the HTTP server is serving: one
// goroutine each runs net/http's conn.serve.
func servedConns() int {
	var b strings.Builder
	pprof.Lookup("goroutine").WriteTo(&b, 2)
	return strings.Count(b.String(), "net/http.(*conn).serve(")
}

// TestSlowlorisIsBounded opens many connections that send their headers a
// byte at a time. The server serves at most OUTREACH_HTTP_MAX_CONNS of them
// at once, cuts each after the read timeout, and holds none once they are
// gone.
func TestSlowlorisIsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for timeouts")
	}
	const maxConns, clients = 20, 200
	m := startWith(t, map[string]string{"OUTREACH_HTTP_READ_TIMEOUT": "1s", "OUTREACH_HTTP_MAX_CONNS": fmt.Sprint(maxConns)})
	time.Sleep(time.Second) // let the consumer settle
	before := runtime.NumGoroutine()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var cut atomic.Int64 // clients whose connection the server closed
	for range clients {
		conn, err := net.DialTimeout("tcp", m.HTTPAddr, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			defer conn.Close()
			if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n"); err != nil {
				return
			}
			for {
				select {
				case <-stop:
					return
				case <-time.After(200 * time.Millisecond):
				}
				if _, err := conn.Write([]byte("X")); err != nil {
					cut.Add(1)
					return
				}
			}
		})
	}
	peakConns, peakGoroutines := 0, 0
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		peakConns = max(peakConns, servedConns())
		peakGoroutines = max(peakGoroutines, runtime.NumGoroutine()-clients)
	}
	close(stop)
	wg.Wait()
	if peakConns > maxConns {
		t.Errorf("the server served %d connections at once, want at most %d", peakConns, maxConns)
	}
	if cut.Load() == 0 {
		t.Errorf("no slow connection was cut within 5s")
	}
	held := -1
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end) && held != 0; time.Sleep(100 * time.Millisecond) {
		held = servedConns()
	}
	if held != 0 {
		t.Errorf("the server still serves %d connections after the slow clients left", held)
	}
	after := runtime.NumGoroutine()
	resp, b := call(t, "GET", "http://"+m.HTTPAddr+"/healthz", "", "")
	if resp.StatusCode != 200 {
		t.Errorf("after the attack /healthz answers %d %s", resp.StatusCode, b)
	}
	t.Logf("slowloris: %d clients, OUTREACH_HTTP_MAX_CONNS=%d, read timeout 1s: at most %d connections served at once, %d cut within 5s; "+
		"goroutines %d before, at most %d during (clients' own not counted), %d after",
		clients, maxConns, peakConns, cut.Load(), before, peakGoroutines, after)
}
