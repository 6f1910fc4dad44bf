package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
)

// Default addresses of the servers the project's scripts start.
const (
	defaultRedis = "127.0.0.1:16379"
	defaultKafka = "127.0.0.1:19092"
)

// repoRoot finds the module's root from the working directory: go run and
// go test both run somewhere inside it.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(data), "module github.com/outreach/outreach\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run the harness inside the outreach module (go run ./bench/harness)")
		}
		dir = parent
	}
}

// servers resolves Redis and Kafka: the addresses given, or the scripts'
// defaults, started with the scripts when nothing answers there. stop stops
// only what it started.
type servers struct {
	redis   string
	brokers []string
	started []string // scripts to call with "stop"
	root    string
}

func startServers(ctx context.Context, cfg config, root string, pr *progress) (*servers, error) {
	s := &servers{root: root, redis: cfg.RedisAddr, brokers: splitList(cfg.KafkaBrokers)}
	if s.redis == "" {
		s.redis = defaultRedis
		if redisPing(ctx, s.redis) != nil {
			pr.Printf("no Redis on %s: starting one with scripts/redis-local.sh", s.redis)
			if err := s.script(ctx, "scripts/redis-local.sh", pr); err != nil {
				return s, err
			}
		}
	}
	if err := redisPing(ctx, s.redis); err != nil {
		return s, fmt.Errorf("redis %s: %w", s.redis, err)
	}
	if len(s.brokers) == 0 {
		s.brokers = []string{defaultKafka}
		if kafkaPing(ctx, s.brokers) != nil {
			pr.Printf("no Kafka on %s: starting one with scripts/kafka-local.sh (a few minutes the first time)", defaultKafka)
			if err := s.script(ctx, "scripts/kafka-local.sh", pr); err != nil {
				return s, err
			}
		}
	}
	if err := kafkaPing(ctx, s.brokers); err != nil {
		return s, fmt.Errorf("kafka %v: %w", s.brokers, err)
	}
	return s, nil
}

func (s *servers) script(ctx context.Context, name string, pr *progress) error {
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(s.root, name), "start")
	cmd.Stdout, cmd.Stderr = pr.w, pr.w
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s start: %w", name, err)
	}
	s.started = append(s.started, name)
	return nil
}

func (s *servers) stop(pr *progress) {
	for i := len(s.started) - 1; i >= 0; i-- {
		cmd := exec.Command("bash", filepath.Join(s.root, s.started[i]), "stop")
		cmd.Stdout, cmd.Stderr = pr.w, pr.w
		if err := cmd.Run(); err != nil {
			pr.Printf("%s stop: %v", s.started[i], err)
		}
	}
}

func redisPing(ctx context.Context, addr string) error {
	c := goredis.NewClient(&goredis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 2 * time.Second})
	defer c.Close()
	return c.Ping(ctx).Err()
}

func kafkaPing(ctx context.Context, brokers []string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cl := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 5 * time.Second}
	_, err := cl.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{}})
	return err
}

func splitList(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// build compiles the main packages at pkgs (relative to root) into dir, at
// once, and returns their paths in order.
func build(ctx context.Context, root, dir string, pkgs ...string) ([]string, error) {
	paths := make([]string, len(pkgs))
	errs := make([]error, len(pkgs))
	var wg sync.WaitGroup
	for i, pkg := range pkgs {
		paths[i] = filepath.Join(dir, filepath.Base(pkg))
		wg.Go(func() {
			cmd := exec.CommandContext(ctx, "go", "build", "-o", paths[i], "./"+pkg)
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("go build ./%s: %v\n%s", pkg, err, out)
			}
		})
	}
	wg.Wait()
	return paths, errors.Join(errs...)
}

// proc is a server the harness runs: outreachd or the floor.
type proc struct {
	name string
	url  string
	cmd  *exec.Cmd
	once sync.Once
}

// startProc runs bin with env (added to this process's environment without
// its OUTREACH_ variables) and waits until addr(line) finds its HTTP address
// in a line of its output. Lines that look like errors are shown.
func startProc(ctx context.Context, name, bin string, args, env []string, pr *progress, addr func(line string) string) (*proc, error) {
	p := &proc{name: name, cmd: exec.Command(bin, args...)}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OUTREACH_") {
			p.cmd.Env = append(p.cmd.Env, kv)
		}
	}
	p.cmd.Env = append(p.cmd.Env, env...)
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p.cmd.Stderr = p.cmd.Stdout
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if a := addr(line); a != "" {
				select {
				case found <- a:
				default:
				}
			}
			if strings.Contains(line, `"level":"ERROR"`) || strings.Contains(line, "panic") {
				pr.Printf("%s: %s", name, line)
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	select {
	case a := <-found:
		p.url = "http://" + a
		return p, nil
	case <-time.After(60 * time.Second):
	case <-ctx.Done():
	}
	p.stop()
	return nil, fmt.Errorf("%s did not start listening", name)
}

// stop stops the process with SIGTERM, then SIGKILL after 20s.
func (p *proc) stop() {
	p.once.Do(func() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { p.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			p.cmd.Process.Kill()
			<-done
		}
	})
}

// statusKB reads a field of the process's /proc/PID/status, in kB.
func (p *proc) statusKB(field string) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, p.cmd.Process.Pid)
}

// resetPeakRSS makes VmHWM start again from the current RSS (Linux 4.0 on),
// so that a peak belongs to one scenario. It reports whether it could.
func (p *proc) resetPeakRSS() bool {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", p.cmd.Process.Pid), []byte("5"), 0) == nil
}

// startOutreachd runs the real outreachd on loopback against the run's
// Redis prefix and Kafka topics, without keys or rate limits.
func startOutreachd(ctx context.Context, bin string, s *servers, run *runNames, pr *progress) (*proc, error) {
	env := []string{
		"OUTREACH_HTTP_ADDR=127.0.0.1:0", "OUTREACH_AUTH=off", "OUTREACH_RATE_LIMITS=off",
		"OUTREACH_LOG_FORMAT=json", "OUTREACH_LOG_LEVEL=info",
		"OUTREACH_REDIS_ADDR=" + s.redis, "OUTREACH_REDIS_PREFIX=" + run.prefix,
		"OUTREACH_KAFKA_BROKERS=" + strings.Join(s.brokers, ","), "OUTREACH_KAFKA_TOPICS=" + run.topic,
		"OUTREACH_KAFKA_GROUP=" + run.group, "OUTREACH_KAFKA_DLQ_TOPIC=" + run.dlq,
		"OUTREACH_KAFKA_DECISIONS_TOPIC=" + run.decisions, "OUTREACH_INSIGHTS_GROUP=" + run.group + "-insights",
		"OUTREACH_KAFKA_PARTITIONS=" + strconv.Itoa(partitions),
	}
	return startProc(ctx, "outreachd", bin, nil, env, pr, func(line string) string {
		var l struct{ Msg, Addr string }
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "http listening" {
			return l.Addr
		}
		return ""
	})
}

// startFloor runs bench/floor on loopback against the run's Redis prefix.
func startFloor(ctx context.Context, bin string, s *servers, run *runNames, pr *progress) (*proc, error) {
	args := []string{"-redis", s.redis, "-prefix", run.prefix}
	return startProc(ctx, "floor", bin, args, nil, pr, func(line string) string {
		a, _ := strings.CutPrefix(line, "listening ")
		if a == line {
			return ""
		}
		return a
	})
}

// metric reads one counter or gauge, without labels, from a /metrics page.
func metric(ctx context.Context, url, name string) (float64, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/metrics", nil)
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, sc.Err()
}

// client makes the harness's own requests (not vegeta's): it keeps enough
// idle connections for the freshness probes' polling.
var client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}, Timeout: 30 * time.Second}
