package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// The fault tests start servers of their own, which they may kill, stop and
// restart: never the shared ones. Each helper here needs the server's
// binaries; without them the test is skipped, except under CI=true, where it
// fails, as CI installs them.

// RequireRealServers skips tb unless the real Redis and Kafka of RedisEnv
// and KafkaEnv are configured: the fault tests run outreachd against real
// servers only, and once per CI run (.ci/run's single-Redis pass, where
// RedisEnv is set).
func RequireRealServers(tb testing.TB) {
	tb.Helper()
	if os.Getenv(RedisEnv) == "" || os.Getenv(KafkaEnv) == "" {
		tb.Skipf("needs the real servers of %s and %s", RedisEnv, KafkaEnv)
	}
}

// RequireBinaries skips tb if a program is not on PATH, or fails it under
// CI=true.
func RequireBinaries(tb testing.TB, names ...string) {
	tb.Helper()
	for _, name := range names {
		if _, err := exec.LookPath(name); err != nil {
			if os.Getenv("CI") == "true" {
				tb.Fatalf("%s is not installed, and CI must run this test", name)
			}
			tb.Skipf("%s is not installed", name)
		}
	}
}

// RepoRoot returns the directory of the module's go.mod.
func RepoRoot(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("testenv: no go.mod above the working directory")
		}
		dir = parent
	}
}

// FreePort returns a loopback TCP port that nothing listens on now.
func FreePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// RedisServerOptions configures StartRedisServer.
type RedisServerOptions struct {
	// AOF turns on the append-only file (appendfsync everysec), so that a
	// restart, even after a kill, keeps every write Redis acknowledged.
	// Without it a restart comes back empty.
	AOF bool
}

// RedisServer is a redis-server process of one test, on a loopback port of
// its own. Its methods are safe for concurrent use.
type RedisServer struct {
	Addr string
	dir  string
	opts RedisServerOptions

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// StartRedisServer starts redis-server on a free loopback port with no
// snapshots, and waits until it answers. It is killed at cleanup.
func StartRedisServer(tb testing.TB, o RedisServerOptions) *RedisServer {
	tb.Helper()
	RequireBinaries(tb, "redis-server")
	s := &RedisServer{Addr: "127.0.0.1:" + strconv.Itoa(FreePort(tb)), dir: tb.TempDir(), opts: o}
	s.start(tb)
	tb.Cleanup(func() {
		s.signal(syscall.SIGCONT)
		s.Kill(tb)
	})
	return s
}

func (s *RedisServer) start(tb testing.TB) {
	tb.Helper()
	_, port, _ := net.SplitHostPort(s.Addr)
	aof := "no"
	if s.opts.AOF {
		aof = "yes"
	}
	cmd := exec.Command("redis-server", "--bind", "127.0.0.1", "--port", port, "--dir", s.dir,
		"--save", "", "--appendonly", aof, "--appendfsync", "everysec", "--daemonize", "no",
		"--protected-mode", "yes", "--logfile", filepath.Join(s.dir, "redis.log"))
	// The server dies with the test process, even if it is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start redis-server: %v", err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	if err := waitRedis(s.Addr, 10*time.Second); err != nil {
		log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
		tb.Fatalf("redis-server on %s: %v\n%s", s.Addr, err, log)
	}
}

// waitRedis waits until the server at addr answers PING.
func waitRedis(addr string, timeout time.Duration) error {
	c := goredis.NewClient(&goredis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer to PING after %v: %w", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *RedisServer) signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.cmd.Process.Signal(sig)
	}
}

// Kill kills the server (SIGKILL) and waits until it has exited.
func (s *RedisServer) Kill(tb testing.TB) { s.end(tb, syscall.SIGKILL) }

// Stop stops the server gracefully (SIGTERM: the AOF is flushed) and waits
// until it has exited.
func (s *RedisServer) Stop(tb testing.TB) { s.end(tb, syscall.SIGTERM) }

func (s *RedisServer) end(tb testing.TB, sig syscall.Signal) {
	tb.Helper()
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		<-done
		tb.Errorf("redis-server on %s did not exit within 15s of %v", s.Addr, sig)
	}
}

// Restart starts the server again on the same port and directory, after
// Kill or Stop: with its data if AOF is on, else empty.
func (s *RedisServer) Restart(tb testing.TB) {
	tb.Helper()
	s.mu.Lock()
	running := s.cmd != nil
	s.mu.Unlock()
	if running {
		tb.Fatal("testenv: Restart of a running redis-server")
	}
	s.start(tb)
}

// Pause stops the server's process (SIGSTOP): it holds its connections and
// answers nothing, as a hung server does, until Resume.
func (s *RedisServer) Pause() { s.signal(syscall.SIGSTOP) }

// Resume continues a paused server (SIGCONT).
func (s *RedisServer) Resume() { s.signal(syscall.SIGCONT) }
