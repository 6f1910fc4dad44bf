package main

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outreach/outreach/internal/testenv"
)

// redisRig is a rig over a redis-server of the test's own and the shared
// Kafka, with outreachd started, the probes' opt-outs stored, and a trickle
// of events flowing.
func redisRig(t *testing.T, o testenv.RedisServerOptions, env ...string) (*testenv.RedisServer, *rig, *testenv.Daemon, probes, *trickle) {
	t.Helper()
	testenv.RequireRealServers(t)
	srv := testenv.StartRedisServer(t, o)
	r := newRig(t, rigConfig{RedisAddr: srv.Addr, Brokers: strings.Split(os.Getenv(testenv.KafkaEnv), ","), Env: env})
	d := r.start()
	p := newProbes(20)
	if err := r.produce(p.optOuts()...); err != nil {
		t.Fatal(err)
	}
	p.waitAnswered(t, d.URL, 30*time.Second)
	return srv, r, d, p, r.startTrickle(20 * time.Millisecond)
}

// waitReady waits until /readyz?role=api answers want, and returns its body.
func waitReady(t *testing.T, d *testenv.Daemon, q string, want int, timeout time.Duration) string {
	t.Helper()
	var body string
	testenv.Eventually(t, timeout, "/readyz"+q+" answers "+strconv.Itoa(want), func() bool {
		var status int
		status, body = readyz(d.URL, q)
		return status == want
	})
	return body
}

// TestFaultRedisRestartedEmpty: Redis without persistence is killed and
// comes back empty while events flow. Checks answer unavailable while it is
// down and after it is back (the store epoch is gone), /readyz?role=api
// says so and an error is logged; outreachd replay rebuilds the store, and
// checks answer again with the facts of the events. A second empty restart
// is then acknowledged by an operator (POST /v1/admin/epoch).
func TestFaultRedisRestartedEmpty(t *testing.T) {
	start := time.Now()
	srv, r, d, p, tr := redisRig(t, testenv.RedisServerOptions{})
	loop := p.loop(func() []string { return []string{d.URL} }, 20*time.Millisecond)

	srv.Kill(t)
	killed := time.Now()
	waitReady(t, d, "?role=api", 503, 5*time.Second)
	testenv.Eventually(t, 5*time.Second, "every check unavailable while Redis is down", func() bool {
		return p.check(d.URL).allUnavailable()
	})
	if status, _ := readyz(d.URL, "?role=ingest"); status != 503 {
		t.Errorf("/readyz?role=ingest = %d while Redis is down, want 503: the consumer cannot apply", status)
	}

	srv.Restart(t) // empty
	back := time.Now()
	time.Sleep(2 * time.Second) // long enough for a silent recovery to show
	rd := p.check(d.URL)
	if !rd.allUnavailable() {
		t.Fatalf("after Redis came back empty, checks answered %+v; want every one unavailable", rd)
	}
	if !strings.Contains(rd.reasons[0], "reset") {
		t.Errorf("the unavailable reason after an empty restart = %q, want it to say that the store was reset", rd.reasons[0])
	}
	if status, body := readyz(d.URL, "?role=api"); status != 503 || !strings.Contains(body, "reset") {
		t.Errorf("/readyz?role=api after an empty restart = %d %s, want 503 naming the reset", status, body)
	}
	if logsHave(d, "ERROR", "the store was reset") == 0 {
		t.Errorf("no error logged about the reset; logs:\n%s", d.Logs())
	}

	// outreachd replay rebuilds the store from the topic.
	replayStart := time.Now()
	out, err := r.replay(2 * time.Minute)
	if err != nil {
		t.Fatalf("outreachd replay: %v\n%s", err, out)
	}
	replayed := time.Since(replayStart)
	p.waitAnswered(t, d.URL, 10*time.Second)
	waitReady(t, d, "?role=api", 200, 10*time.Second)
	answered := time.Now()
	v := tally(loop.Stop())
	v.mustBeSafe(t, true)

	produced := tr.Stop()
	r.waitStored(tr.customers, produced, 30*time.Second)
	t.Logf("Redis down %v, back empty for %v (checks unavailable, /readyz?role=api 503) until the replay (%v) ended; "+
		"checks: %v; trickle: %d events produced, all stored once",
		back.Sub(killed).Round(time.Millisecond), answered.Sub(back).Round(time.Millisecond), replayed.Round(time.Millisecond), v, produced)

	// A second empty restart, acknowledged by an operator: checks answer
	// again, on what the store holds now (nothing: the loss is accepted).
	srv.Kill(t)
	srv.Restart(t)
	testenv.Eventually(t, 10*time.Second, "checks unavailable after the second empty restart", func() bool {
		return p.check(d.URL).allUnavailable()
	})
	if status, body := post(d.URL+"/v1/admin/epoch", dialerKey, ""); status != 403 {
		t.Errorf("POST /v1/admin/epoch with a dialer key = %d %s, want 403", status, body)
	}
	status, body := post(d.URL+"/v1/admin/epoch", adminKey, "")
	if status != 200 || !strings.Contains(body, `"epoch"`) {
		t.Fatalf("POST /v1/admin/epoch = %d %s", status, body)
	}
	waitReady(t, d, "?role=api", 200, 5*time.Second)
	if rd := p.check(d.URL); rd.status != 200 || slices.Contains(rd.unavailable, true) {
		t.Errorf("checks after the acknowledgement: %+v, want them answered", rd)
	}
	t.Logf("test took %v", time.Since(start).Round(time.Millisecond))
}

// TestFaultRedisRestartedWithItsData: Redis with AOF is killed (-9) while
// events flow and restarted: every event is there, checks answer as
// before, and no reset is reported.
func TestFaultRedisRestartedWithItsData(t *testing.T) {
	start := time.Now()
	srv, r, d, p, tr := redisRig(t, testenv.RedisServerOptions{AOF: true})
	loop := p.loop(func() []string { return []string{d.URL} }, 20*time.Millisecond)
	time.Sleep(time.Second)

	srv.Kill(t)
	killed := time.Now()
	waitReady(t, d, "?role=api", 503, 5*time.Second)
	srv.Restart(t)
	back := time.Now()
	p.waitAnswered(t, d.URL, 10*time.Second)
	waitReady(t, d, "?role=api", 200, 5*time.Second)
	waitReady(t, d, "", 200, 15*time.Second)
	answered := time.Now()
	time.Sleep(time.Second)
	v := tally(loop.Stop())
	v.mustBeSafe(t, true)
	produced := tr.Stop()
	r.waitStored(tr.customers, produced, 30*time.Second)
	if n := logsHave(d, "ERROR", "reset"); n > 0 {
		t.Errorf("%d errors logged about a reset after a restart that kept the data", n)
	}
	t.Logf("Redis down %v; checks answered %v after it was back; checks: %v; trickle: %d events produced, all stored once; test took %v",
		back.Sub(killed).Round(time.Millisecond), answered.Sub(back).Round(time.Millisecond), v, produced, time.Since(start).Round(time.Millisecond))
}

// TestFaultRedisHung: a Redis that stops answering (SIGSTOP) holds no
// check longer than OUTREACH_CHECK_TIMEOUT and a small margin: they answer
// unavailable; after SIGCONT they answer again, and ingestion resumes.
func TestFaultRedisHung(t *testing.T) {
	const timeout, margin = 300 * time.Millisecond, 400 * time.Millisecond
	start := time.Now()
	srv, r, d, p, tr := redisRig(t, testenv.RedisServerOptions{}, "OUTREACH_CHECK_TIMEOUT="+timeout.String())

	srv.Pause()
	paused := time.Now()
	var mu sync.Mutex
	var took []time.Duration
	var rounds []round
	var wg sync.WaitGroup
	for range 4 { // concurrent checks, as a dialer's
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				rd := p.check(d.URL)
				mu.Lock()
				took, rounds = append(took, rd.end.Sub(rd.at)), append(rounds, rd)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	readyStart := time.Now()
	status, _ := readyz(d.URL, "?role=api")
	readyTook := time.Since(readyStart)
	srv.Resume()
	resumed := time.Now()

	for _, rd := range rounds {
		if !rd.allUnavailable() {
			t.Errorf("a check against a hung Redis answered %d %v %v, want every probe unavailable", rd.status, rd.err, rd.wrong)
			break
		}
	}
	slices.Sort(took)
	if worst := took[len(took)-1]; worst > timeout+margin {
		t.Errorf("the slowest check against a hung Redis took %v, more than the %v timeout and %v", worst, timeout, margin)
	}
	if status != 503 || readyTook > 3*time.Second {
		t.Errorf("/readyz?role=api against a hung Redis: %d after %v, want 503 within 3s", status, readyTook)
	}
	p.waitAnswered(t, d.URL, 10*time.Second)
	answered := time.Now()
	produced := tr.Stop()
	r.waitStored(tr.customers, produced, 30*time.Second)
	t.Logf("hung for %v: %d batch checks of %d probes answered unavailable in %v (median) to %v (slowest), timeout %v; "+
		"/readyz?role=api 503 in %v; checks answered again %v after SIGCONT; trickle: %d events produced, all stored once; test took %v",
		resumed.Sub(paused).Round(time.Millisecond), len(took), len(p.customers), took[len(took)/2].Round(time.Millisecond),
		took[len(took)-1].Round(time.Millisecond), timeout, readyTook.Round(time.Millisecond),
		answered.Sub(resumed).Round(time.Millisecond), produced, time.Since(start).Round(time.Millisecond))
}
