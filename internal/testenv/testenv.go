// Package testenv gives tests a Redis server and a Kafka cluster: the real
// ones named by OUTREACH_TEST_REDIS_ADDR and OUTREACH_TEST_KAFKA_BROKERS when
// they are set, else miniredis and kfake in the test process.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	goredis "github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
)

// Environment variables naming real servers.
const (
	RedisEnv = "OUTREACH_TEST_REDIS_ADDR"
	KafkaEnv = "OUTREACH_TEST_KAFKA_BROKERS"
)

// Redis is a Redis server for one test.
type Redis struct {
	Addr   string
	Client *goredis.Client
	Prefix string               // a key prefix of the test's own
	Mini   *miniredis.Miniredis // nil against a real server
}

// Real reports whether r is a real Redis server.
func (r *Redis) Real() bool { return r.Mini == nil }

// NewRedis returns the real Redis server if RedisEnv is set, else a fresh
// miniredis. Keys under the test's prefix are deleted at cleanup.
func NewRedis(tb testing.TB) *Redis {
	tb.Helper()
	r := &Redis{Addr: os.Getenv(RedisEnv), Prefix: "test:" + Unique(tb) + ":"}
	if r.Addr == "" {
		r.Mini = miniredis.RunT(tb)
		r.Addr = r.Mini.Addr()
	}
	r.Client = goredis.NewClient(&goredis.Options{Addr: r.Addr, MaxRetries: -1})
	tb.Cleanup(func() {
		if r.Real() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			iter := r.Client.Scan(ctx, 0, r.Prefix+"*", 1000).Iterator()
			for iter.Next(ctx) {
				r.Client.Del(ctx, iter.Val())
			}
		}
		r.Client.Close()
	})
	return r
}

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
	name := strings.NewReplacer("/", "-", " ", "-").Replace(tb.Name())
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
