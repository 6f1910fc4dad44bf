package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
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
// topic and its Redis), a producer and HTTP helpers; probes_test.go holds
// the checks of known answers.

// rigConfig says where a rig's outreachd stores and consumes.
type rigConfig struct {
	RedisAddr string // one server, or a cluster's nodes, comma-separated
	Cluster   bool
	// Prefix is the key prefix; on a shared server, that of a
	// testenv.Redis, which deletes its keys at cleanup. Default: a prefix
	// of the test's own, for a server that the test also owns.
	Prefix     string
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
		group: "g-" + testenv.Unique(t), prefix: cmp.Or(c.Prefix, "test:"+testenv.Unique(t)+":")}
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
		// The shared default decisions topic holds every test's records:
		// an insights aggregator would count them all.
		"OUTREACH_INSIGHTS=off",
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
		// The rig's topics go too: the fault tests write 100,000s of events.
		cl := &kafka.Client{Addr: kafka.TCP(c.Brokers...), Timeout: 30 * time.Second}
		if _, err := cl.DeleteTopics(context.Background(), &kafka.DeleteTopicsRequest{Topics: []string{r.topic, r.dlq}}); err != nil {
			t.Logf("delete the topics %s and %s: %v", r.topic, r.dlq, err)
		}
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
