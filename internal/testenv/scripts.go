package testenv

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// script runs a script of scripts/ with env added, within timeout, and
// returns its stdout; stderr is in the error.
func script(tb testing.TB, timeout time.Duration, env []string, name string, args ...string) (string, error) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{filepath.Join(RepoRoot(tb), "scripts", name)}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(stdout.String()), nil
}

// RedisCluster is a Redis Cluster of one test: 3 masters and 3 replicas
// started by scripts/redis-cluster.sh on loopback ports and in a directory
// of its own, and stopped at cleanup.
type RedisCluster struct {
	Addrs []string
	env   []string
}

// StartRedisCluster starts a fresh cluster and waits until it is ok. Its
// nodes fail over a master that does not answer for 2s.
func StartRedisCluster(tb testing.TB) *RedisCluster {
	tb.Helper()
	RequireBinaries(tb, "redis-server", "redis-cli")
	base := clusterBase(tb)
	c := &RedisCluster{env: []string{
		"REDIS_CLUSTER_PORT=" + strconv.Itoa(base),
		"REDIS_CLUSTER_HOME=" + tb.TempDir(),
		"REDIS_CLUSTER_NODE_TIMEOUT=2000",
		"REDIS_CLUSTER_READY_TIMEOUT=60",
	}}
	tb.Cleanup(func() {
		if _, err := script(tb, 2*time.Minute, c.env, "redis-cluster.sh", "stop"); err != nil {
			tb.Errorf("stop the test's Redis Cluster: %v", err)
		}
	})
	out, err := script(tb, 2*time.Minute, c.env, "redis-cluster.sh", "start")
	if err != nil {
		tb.Fatalf("start a Redis Cluster on ports %d-%d: %v", base, base+5, err)
	}
	c.Addrs = strings.Split(out, ",")
	return c
}

// clusterBase finds 6 free ports, and their cluster bus ports 10000 above,
// below the kernel's ephemeral range.
func clusterBase(tb testing.TB) int {
	tb.Helper()
	for range 50 {
		base := 21000 + rand.N(1000)/6*6
		if portsFree(base, 6) && portsFree(base+10000, 6) {
			return base
		}
	}
	tb.Fatal("testenv: no free ports for a Redis Cluster")
	return 0
}

func portsFree(first, n int) bool {
	for p := first; p < first+n; p++ {
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			return false
		}
		ln.Close()
	}
	return true
}

// Kill kills the node at addr with SIGKILL.
func (c *RedisCluster) Kill(tb testing.TB, addr string) {
	tb.Helper()
	_, port, _ := net.SplitHostPort(addr)
	if _, err := script(tb, 30*time.Second, c.env, "redis-cluster.sh", "kill", port); err != nil {
		tb.Fatal(err)
	}
}

// KafkaBroker is a Kafka broker of one test, started by
// scripts/kafka-local.sh on loopback ports and in a directory of its own,
// with the jars of the shared broker when they are there. It is stopped at
// cleanup.
type KafkaBroker struct {
	Addr string
	env  []string
}

// StartKafkaBroker starts a fresh single-node broker (KRaft) and waits until
// it answers; it takes 10 to 20 seconds.
func StartKafkaBroker(tb testing.TB) *KafkaBroker {
	tb.Helper()
	RequireBinaries(tb, "java")
	port, controller := FreePort(tb), FreePort(tb)
	b := &KafkaBroker{Addr: "127.0.0.1:" + strconv.Itoa(port), env: []string{
		"OUTREACH_KAFKA_HOME=" + tb.TempDir(),
		"KAFKA_PORT=" + strconv.Itoa(port),
		"KAFKA_CONTROLLER_PORT=" + strconv.Itoa(controller),
		"KAFKA_HEAP=384m",
		"KAFKA_READY_TIMEOUT=90",
		"KAFKA_STOP_TIMEOUT=20",
	}}
	shared := os.Getenv("OUTREACH_KAFKA_HOME")
	if shared == "" {
		shared = "/tmp/outreach-kafka"
	}
	if jars, _ := filepath.Glob(filepath.Join(shared, "libs", "kafka_2.13-*.jar")); len(jars) > 0 {
		b.env = append(b.env, "KAFKA_LIBS="+filepath.Join(shared, "libs"))
	}
	tb.Cleanup(func() {
		if _, err := script(tb, time.Minute, b.env, "kafka-local.sh", "stop"); err != nil {
			tb.Errorf("stop the test's Kafka broker: %v", err)
		}
	})
	if _, err := script(tb, 3*time.Minute, b.env, "kafka-local.sh", "start"); err != nil {
		tb.Fatalf("start a Kafka broker on %s: %v", b.Addr, err)
	}
	return b
}

// Stop stops the broker gracefully (SIGTERM, then SIGKILL after 20s).
func (b *KafkaBroker) Stop(tb testing.TB) {
	tb.Helper()
	if _, err := script(tb, time.Minute, b.env, "kafka-local.sh", "stop"); err != nil {
		tb.Fatal(err)
	}
}

// Restart starts the broker again on its data, after Stop.
func (b *KafkaBroker) Restart(tb testing.TB) {
	tb.Helper()
	if _, err := script(tb, 3*time.Minute, b.env, "kafka-local.sh", "restart"); err != nil {
		tb.Fatal(err)
	}
}
