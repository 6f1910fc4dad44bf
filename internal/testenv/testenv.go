// Package testenv gives tests a Redis server and a Kafka cluster: the real
// ones named by OUTREACH_TEST_REDIS_ADDR (or OUTREACH_TEST_REDIS_CLUSTER) and
// OUTREACH_TEST_KAFKA_BROKERS when they are set, else miniredis and kfake in
// the test process.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	goredis "github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
)

// Environment variables naming real servers. RedisClusterEnv lists the
// nodes of a Redis Cluster (scripts/redis-cluster.sh start prints them);
// when it is set, NewRedis returns the cluster even if RedisEnv is set too,
// and RedisEnv then serves only NewSingleRedis.
const (
	RedisEnv        = "OUTREACH_TEST_REDIS_ADDR"
	RedisClusterEnv = "OUTREACH_TEST_REDIS_CLUSTER"
	KafkaEnv        = "OUTREACH_TEST_KAFKA_BROKERS"
)

// Redis is a Redis server, or a Redis Cluster, for one test.
type Redis struct {
	Addr    string // the server's address; a cluster's node addresses, comma-separated
	Cluster bool   // Addr is a Redis Cluster, and Client a *goredis.ClusterClient
	Client  goredis.UniversalClient
	Prefix  string               // a key prefix of the test's own, without a hash tag
	Mini    *miniredis.Miniredis // nil against a real server
}

// Real reports whether r is a real Redis server or cluster.
func (r *Redis) Real() bool { return r.Mini == nil }

// NewRedis returns the Redis Cluster of RedisClusterEnv if it is set, else
// the real Redis server of RedisEnv if it is set, else a fresh miniredis.
// Keys under the test's prefix are deleted at cleanup, on every master of a
// cluster.
func NewRedis(tb testing.TB) *Redis {
	tb.Helper()
	if v := os.Getenv(RedisClusterEnv); v != "" {
		addrs := strings.Split(v, ",")
		r := &Redis{Addr: v, Cluster: true, Prefix: prefix(tb)}
		r.Client = goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: addrs, MaxRetries: -1})
		tb.Cleanup(func() { r.cleanup(tb) })
		return r
	}
	return NewSingleRedis(tb)
}

// NewSingleRedis returns the real Redis server of RedisEnv if it is set,
// else a fresh miniredis; never a cluster. Tests that need one server, such
// as those behind a RESPProxy, use it.
func NewSingleRedis(tb testing.TB) *Redis {
	tb.Helper()
	r := &Redis{Addr: os.Getenv(RedisEnv), Prefix: prefix(tb)}
	if r.Addr == "" {
		r.Mini = miniredis.RunT(tb)
		r.Addr = r.Mini.Addr()
	}
	r.Client = goredis.NewClient(&goredis.Options{Addr: r.Addr, MaxRetries: -1})
	tb.Cleanup(func() { r.cleanup(tb) })
	return r
}

// DaemonEnv returns the OUTREACH_REDIS_* environment ("KEY=VALUE") of an
// outreachd over r, with the test's prefix, for StartDaemon.
func (r *Redis) DaemonEnv() []string {
	env := []string{"OUTREACH_REDIS_ADDR=" + r.Addr, "OUTREACH_REDIS_PREFIX=" + r.Prefix}
	if r.Cluster {
		env = append(env, "OUTREACH_REDIS_CLUSTER=true")
	}
	return env
}

// Keys returns every key that matches pattern, from each master of a
// cluster: KEYS or SCAN through a cluster client asks a single node.
func (r *Redis) Keys(tb testing.TB, pattern string) []string {
	tb.Helper()
	var mu sync.Mutex
	var keys []string
	err := r.scan(context.Background(), pattern, func(_ *goredis.Client, key string) error {
		mu.Lock()
		defer mu.Unlock()
		keys = append(keys, key)
		return nil
	})
	if err != nil {
		tb.Fatalf("keys %s: %v", pattern, err)
	}
	return keys
}

// scan calls fn with each key that matches pattern and the node that holds
// it: the server, or each master of a cluster, concurrently.
func (r *Redis) scan(ctx context.Context, pattern string, fn func(node *goredis.Client, key string) error) error {
	scanNode := func(ctx context.Context, node *goredis.Client) error {
		iter := node.Scan(ctx, 0, pattern, 1000).Iterator()
		for iter.Next(ctx) {
			if err := fn(node, iter.Val()); err != nil {
				return err
			}
		}
		return iter.Err()
	}
	if c, ok := r.Client.(*goredis.ClusterClient); ok {
		return c.ForEachMaster(ctx, scanNode)
	}
	return scanNode(ctx, r.Client.(*goredis.Client))
}

// cleanup deletes the test's keys from a real server, or from every master
// of a cluster, and closes the client.
func (r *Redis) cleanup(tb testing.TB) {
	defer r.Client.Close()
	if !r.Real() {
		return
	}
	// A minute: a fault test leaves some 100,000 keys, and a shared machine
	// may be slow.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// One key per UNLINK, for keys of several slots may not share a
	// command; pipelined per node, as a test may leave many keys.
	var mu sync.Mutex
	pipes := map[*goredis.Client]goredis.Pipeliner{}
	err := r.scan(ctx, r.Prefix+"*", func(node *goredis.Client, key string) error {
		mu.Lock()
		defer mu.Unlock()
		p, ok := pipes[node]
		if !ok {
			p = node.Pipeline()
			pipes[node] = p
		}
		p.Unlink(ctx, key)
		if p.Len() < 1000 {
			return nil
		}
		_, err := p.Exec(ctx)
		return err
	})
	for _, p := range pipes {
		if _, perr := p.Exec(ctx); perr != nil && err == nil {
			err = perr
		}
	}
	if err != nil {
		tb.Logf("testenv: deleting the keys under %q: %v", r.Prefix, err)
	}
}

// prefix returns a key prefix of the test's own.
func prefix(tb testing.TB) string { return "test:" + Unique(tb) + ":" }

// Kafka is a Kafka cluster for one test.
type Kafka struct {
	Brokers []string
	Fake    *kfake.Cluster // nil against a real cluster
}

// Real reports whether k is a real Kafka cluster.
func (k *Kafka) Real() bool { return k.Fake == nil }

// NewKafka returns the real cluster if KafkaEnv is set, else a fresh kfake
// cluster that allows automatic topic creation.
func NewKafka(tb testing.TB) *Kafka {
	tb.Helper()
	if v := os.Getenv(KafkaEnv); v != "" {
		return &Kafka{Brokers: strings.Split(v, ",")}
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(3))
	if err != nil {
		tb.Fatalf("kfake: %v", err)
	}
	tb.Cleanup(c.Close)
	return &Kafka{Brokers: c.ListenAddrs(), Fake: c}
}

// Topic creates a topic of the test's own with the given partitions.
func (k *Kafka) Topic(tb testing.TB, name string, partitions int) string {
	tb.Helper()
	topic := name + "." + Unique(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := &kafka.Client{Addr: kafka.TCP(k.Brokers...)}
	resp, err := cl.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: topic, NumPartitions: partitions, ReplicationFactor: 1,
	}}})
	if err != nil {
		tb.Fatalf("create topic %s: %v", topic, err)
	}
	if err := resp.Errors[topic]; err != nil {
		tb.Fatalf("create topic %s: %v", topic, err)
	}
	return topic
}

// Produce writes values to topic with the given key, synchronously.
func (k *Kafka) Produce(tb testing.TB, topic, key string, values ...[]byte) {
	tb.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(k.Brokers...), Topic: topic, Balancer: &kafka.Murmur2Balancer{},
		BatchTimeout: time.Millisecond, RequiredAcks: kafka.RequireAll}
	defer w.Close()
	msgs := make([]kafka.Message, len(values))
	for i, v := range values {
		msgs[i] = kafka.Message{Key: []byte(key), Value: v}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		tb.Fatalf("produce to %s: %v", topic, err)
	}
}

// Unique returns a short name unique to this test run.
func Unique(tb testing.TB) string {
	b := make([]byte, 4)
	rand.Read(b)
	// No braces: a key prefix must not carry a cluster hash tag.
	name := strings.NewReplacer("/", "-", " ", "-", "{", "-", "}", "-").Replace(tb.Name())
	if len(name) > 40 {
		name = name[:40]
	}
	return name + "-" + hex.EncodeToString(b)
}

// Eventually calls cond every 10ms until it returns true or timeout passes,
// then fails the test with msg.
func Eventually(tb testing.TB, timeout time.Duration, msg string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v: %s", timeout, msg)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
