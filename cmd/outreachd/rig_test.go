package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/outreach/outreach/internal/testenv"
)

// The fault tests run the real outreachd over real servers, break one of
// them, and watch what checks, readiness and ingestion do meanwhile. This
// file holds what they share: a rig (the binary, its environment, its
// topic and its Redis), known-answer checks, and a producer.

// rigConfig says where a rig's outreachd stores and consumes.
type rigConfig struct {
	RedisAddr  string // one server, or a cluster's nodes, comma-separated
	Cluster    bool
	Brokers    []string
	Partitions int      // of the events topic; default 3
	Env        []string // more OUTREACH_ settings, KEY=VALUE
}

// rig is an outreachd configuration over its own topic, group and key
// prefix, and clients to see what it stored.
type rig struct {
	t      *testing.T
	bin    string
	env    []string
	topic  string
	dlq    string
	group  string
	prefix string
	rdb    goredis.UniversalClient
	kafka  *testenv.Kafka
	w      *kafka.Writer
}

func newRig(t *testing.T, c rigConfig) *rig {
	t.Helper()
	if c.Partitions == 0 {
		c.Partitions = 3
	}
	r := &rig{t: t, bin: testenv.Build(t, "."), kafka: &testenv.Kafka{Brokers: c.Brokers},
		group: "g-" + testenv.Unique(t), prefix: "test:" + testenv.Unique(t) + ":"}
	r.topic = r.kafka.Topic(t, "events", c.Partitions)
	r.dlq = r.kafka.Topic(t, "dlq", 1)
	r.env = append([]string{
		"OUTREACH_REDIS_ADDR=" + c.RedisAddr,
		"OUTREACH_REDIS_PREFIX=" + r.prefix,
		"OUTREACH_REDIS_CLUSTER=" + strconv.FormatBool(c.Cluster),
		"OUTREACH_KAFKA_BROKERS=" + strings.Join(c.Brokers, ","),
		"OUTREACH_KAFKA_TOPICS=" + r.topic,
		"OUTREACH_KAFKA_DLQ_TOPIC=" + r.dlq,
		"OUTREACH_KAFKA_GROUP=" + r.group,
		"OUTREACH_API_KEYS_FILE=" + keysFile(t),
	}, c.Env...)
	addrs := strings.Split(c.RedisAddr, ",")
	if c.Cluster {
		// A short reload interval, as outreachd's, so that counting goes on
		// after a failover.
		r.rdb = goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: addrs, MaxRetries: -1, ClusterStateReloadInterval: time.Second})
	} else {
		r.rdb = goredis.NewClient(&goredis.Options{Addr: addrs[0], MaxRetries: -1})
	}
	r.w = &kafka.Writer{Addr: kafka.TCP(c.Brokers...), Topic: r.topic, Balancer: &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond, BatchSize: 1000}
	t.Cleanup(func() {
		r.w.Close()
		r.rdb.Close()
	})
	return r
}

// start runs the binary with the rig's environment and more settings.
func (r *rig) start(env ...string) *testenv.Daemon {
	r.t.Helper()
	return testenv.StartDaemon(r.t, r.bin, append(slices.Clone(r.env), env...)...)
}

// replay runs outreachd replay with the rig's environment, killed after
// timeout, and returns its output.
func (r *rig) replay(timeout time.Duration) ([]byte, error) {
	cmd := testenv.Command(r.bin, append(slices.Clone(r.env), "OUTREACH_LOG_FORMAT=json"), "replay")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	timer := time.AfterFunc(timeout, func() { cmd.Process.Kill() })
	defer timer.Stop()
	err := cmd.Wait()
	return out.Bytes(), err
}

// produce writes events to the rig's topic, keyed by customer.
func (r *rig) produce(events ...event) error {
	msgs := make([]kafka.Message, len(events))
	for i, e := range events {
		msgs[i] = kafka.Message{Key: []byte(e.customer), Value: e.value}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return r.w.WriteMessages(ctx, msgs...)
}

// stored counts the events in the histories of customers.
func (r *rig) stored(customers []string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	total := 0
	for chunk := range slices.Chunk(customers, 5000) {
		pipe := r.rdb.Pipeline()
		cmds := make([]*goredis.IntCmd, len(chunk))
		for i, c := range chunk {
			cmds[i] = pipe.ZCard(ctx, r.prefix+"{c:"+c+"}:h")
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return 0, err
		}
		for _, c := range cmds {
			total += int(c.Val())
		}
	}
	return total, nil
}

// waitStored waits until customers hold want events, and fails the test if
// they hold more.
func (r *rig) waitStored(customers []string, want int, timeout time.Duration) {
	r.t.Helper()
	var n int
	testenv.Eventually(r.t, timeout, fmt.Sprintf("%d events stored", want), func() bool {
		var err error
		n, err = r.stored(customers)
		return err == nil && n >= want
	})
	time.Sleep(300 * time.Millisecond) // a late duplicate would land now
	if n, _ = r.stored(customers); n != want {
		r.t.Fatalf("%d events stored, want exactly %d", n, want)
	}
}

// event is a message for the events topic.
type event struct {
	customer string
	value    []byte
}

func optOut(id, customer string) event {
	at := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339Nano)
	return event{customer, fmt.Appendf(nil, `{"id":%q,"type":"opt_out","customer_id":%q,"at":%q,"reason":"stop calling me"}`, id, customer, at)}
}

func emailed(id, customer string, at time.Time) event {
	return event{customer, fmt.Appendf(nil, `{"id":%q,"type":"contact","customer_id":%q,"at":%q,"channel":"email"}`,
		id, customer, at.UTC().Format(time.RFC3339Nano))}
}

// trickle produces an event every interval to customers of its own until
// stopped, and remembers what Kafka took.
type trickle struct {
	produced  atomic.Int64
	failed    atomic.Int64
	customers []string
	stop      chan struct{}
	done      chan struct{}
}

func (r *rig) startTrickle(interval time.Duration) *trickle {
	tr := &trickle{stop: make(chan struct{}), done: make(chan struct{})}
	for i := range 50 {
		tr.customers = append(tr.customers, fmt.Sprint("trickle-", i))
	}
	go func() {
		defer close(tr.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-tr.stop:
				return
			case <-tick.C:
			}
			e := emailed(fmt.Sprint("tr-", i), tr.customers[i%len(tr.customers)], time.Now().Add(-time.Minute))
			if err := r.produce(e); err != nil {
				tr.failed.Add(1)
				i-- // the same id again: an event Kafka did not take is not counted
				continue
			}
			tr.produced.Add(1)
		}
	}()
	r.t.Cleanup(func() { tr.Stop() })
	return tr
}

// Stop stops producing and returns how many events Kafka took.
func (tr *trickle) Stop() int {
	select {
	case <-tr.stop:
	default:
		close(tr.stop)
	}
	<-tr.done
	return int(tr.produced.Load())
}

// probes are customers whose right answers are known: the opted-out ones
// must never be allowed, and the others, without any event, must be
// allowed. Either may answer unavailable.
type probes struct {
	customers []string
	optedOut  []bool
}

func newProbes(n int) probes {
	var p probes
	for i := range n {
		p.customers = append(p.customers, fmt.Sprint("out-", i), fmt.Sprint("ok-", i))
		p.optedOut = append(p.optedOut, true, false)
	}
	return p
}

// optOuts are the events that make the opted-out probes so.
func (p probes) optOuts() []event {
	var events []event
	for i, c := range p.customers {
		if p.optedOut[i] {
			events = append(events, optOut("o-"+c, c))
		}
	}
	return events
}

// round is one batch check of every probe.
type round struct {
	at, end     time.Time
	status      int
	err         error
	unavailable []bool   // by probe
	reasons     []string // the message of each unavailable probe's reason
	wrong       []string // answers that are neither right nor unavailable
}

func (rd round) allAnswered() bool { return rd.status == 200 && !slices.Contains(rd.unavailable, true) }

func (rd round) allUnavailable() bool {
	return rd.status == 200 && !slices.Contains(rd.unavailable, false)
}

var checkClient = &http.Client{Timeout: 10 * time.Second}

// check asks url for every probe in one batch.
func (p probes) check(url string) round {
	var b strings.Builder
	b.WriteString(`{"checks":[`)
	for i, c := range p.customers {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"customer_id":%q,"channel":"call"}`, c)
	}
	b.WriteString(`]}`)
	rd := round{at: time.Now()}
	req, _ := http.NewRequest("POST", url+"/v1/check/batch", strings.NewReader(b.String()))
	req.Header.Set("Authorization", "Bearer "+dialerKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := checkClient.Do(req)
	rd.end = time.Now()
	if err != nil {
		rd.err = err
		return rd
	}
	defer resp.Body.Close()
	rd.status = resp.StatusCode
	var body struct {
		Results []struct {
			CustomerID string `json:"customer_id"`
			Allowed    bool   `json:"allowed"`
			Reasons    []struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"reasons"`
		} `json:"results"`
	}
	if rd.status != 200 {
		return rd
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || len(body.Results) != len(p.customers) {
		rd.err = fmt.Errorf("batch answer: %v, %d results", err, len(body.Results))
		return rd
	}
	rd.unavailable = make([]bool, len(p.customers))
	rd.reasons = make([]string, len(p.customers))
	for i, res := range body.Results {
		var codes []string
		for _, r := range res.Reasons {
			codes = append(codes, r.Code)
			if r.Code == "unavailable" {
				rd.reasons[i] = r.Message
			}
		}
		got := strings.Join(codes, ",")
		switch {
		case got == "unavailable" && !res.Allowed:
			rd.unavailable[i] = true
		case p.optedOut[i] && !res.Allowed && slices.Contains(codes, "opted_out"):
		case !p.optedOut[i] && res.Allowed && got == "":
		default:
			rd.wrong = append(rd.wrong, fmt.Sprintf("%s: allowed=%v %q", res.CustomerID, res.Allowed, got))
		}
	}
	return rd
}

// waitAnswered waits until a check of every probe at url answers right.
func (p probes) waitAnswered(t *testing.T, url string, timeout time.Duration) {
	t.Helper()
	var last round
	testenv.Eventually(t, timeout, "every probe answered", func() bool {
		last = p.check(url)
		return last.allAnswered() && len(last.wrong) == 0
	})
}

// checkLoop checks the probes again and again, at every url that urls
// returns, until stopped, and keeps every round.
type checkLoop struct {
	mu     sync.Mutex
	rounds []round
	stop   chan struct{}
	wg     sync.WaitGroup
}

func (p probes) loop(urls func() []string, every time.Duration) *checkLoop {
	l := &checkLoop{stop: make(chan struct{})}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for {
			for _, u := range urls() {
				rd := p.check(u)
				l.mu.Lock()
				l.rounds = append(l.rounds, rd)
				l.mu.Unlock()
			}
			select {
			case <-l.stop:
				return
			case <-time.After(every):
			}
		}
	}()
	return l
}

// Stop ends the loop and returns its rounds.
func (l *checkLoop) Stop() []round {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
	return l.Rounds()
}

// Rounds returns the rounds so far.
func (l *checkLoop) Rounds() []round {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.rounds)
}

// verdict tallies rounds: every answer must be right or unavailable, and
// no request may fail with a 5xx.
type verdict struct {
	rounds, checks, unavailable, failed int
	wrong                               []string
	statuses                            map[int]int
}

func tally(rounds []round) verdict {
	v := verdict{statuses: map[int]int{}}
	for _, rd := range rounds {
		v.rounds++
		v.statuses[rd.status]++
		if rd.err != nil || rd.status != 200 {
			v.failed++
			continue
		}
		v.checks += len(rd.unavailable)
		for _, u := range rd.unavailable {
			if u {
				v.unavailable++
			}
		}
		v.wrong = append(v.wrong, rd.wrong...)
	}
	return v
}

func (v verdict) String() string {
	return fmt.Sprintf("%d rounds, %d checks, %d unavailable, %d wrong, %d requests failed (statuses %v)",
		v.rounds, v.checks, v.unavailable, len(v.wrong), v.failed, v.statuses)
}

// mustBeSafe fails the test if any answer was wrong or any request got a
// 5xx (or, with noErrors, failed at all).
func (v verdict) mustBeSafe(t *testing.T, noErrors bool) {
	t.Helper()
	if len(v.wrong) > 0 {
		t.Errorf("%d wrong answers, such as %v", len(v.wrong), v.wrong[:min(5, len(v.wrong))])
	}
	for status, n := range v.statuses {
		if status >= 500 || (noErrors && status != 200) {
			t.Errorf("%d batch checks answered %d (0: no answer)", n, status)
		}
	}
}

// readyz returns the status and body of /readyz with the query q.
func readyz(url, q string) (int, string) {
	resp, err := checkClient.Get(url + "/readyz" + q)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metric returns the sum of the samples of a metric at url's /metrics.
func metric(url, name string) (float64, error) {
	resp, err := checkClient.Get(url + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, name); ok && (strings.HasPrefix(rest, " ") || strings.HasPrefix(rest, "{")) {
			f := strings.Fields(line)
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			if err != nil {
				return 0, fmt.Errorf("%s: %w", line, err)
			}
			sum += v
		}
	}
	return sum, sc.Err()
}

// logsHave counts the JSON log lines of d at level with msg in their
// message.
func logsHave(d *testenv.Daemon, level, msg string) int {
	n := 0
	for line := range strings.Lines(d.Logs()) {
		var l struct{ Level, Msg string }
		if json.Unmarshal([]byte(line), &l) == nil && l.Level == level && strings.Contains(l.Msg, msg) {
			n++
		}
	}
	return n
}

// post sends body to url with key and returns the status and body.
func post(url, key, body string) (int, string) {
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := checkClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(bytes.TrimSpace(b))
}

// scale returns n, or n/div when OUTREACH_TEST_FULL is not set and CI is
// (the full sizes are for a run by hand).
func scale(n, div int) int {
	if os.Getenv("CI") == "true" && os.Getenv("OUTREACH_TEST_FULL") == "" {
		return n / div
	}
	return n
}
