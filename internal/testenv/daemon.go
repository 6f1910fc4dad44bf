package testenv

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var builds sync.Map // package dir → *build

type build struct {
	once sync.Once
	path string
	err  error
}

// Build compiles the main package in dir (relative to the test's package)
// once per test binary and returns the executable's path.
func Build(tb testing.TB, dir string) string {
	tb.Helper()
	abs, err := filepath.Abs(dir)
	if err != nil {
		tb.Fatal(err)
	}
	v, _ := builds.LoadOrStore(abs, &build{})
	b := v.(*build)
	b.once.Do(func() {
		out, err := os.MkdirTemp("", "outreach-bin")
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(out, filepath.Base(abs))
		if msg, err := exec.Command("go", "build", "-o", b.path, abs).CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build %s: %v\n%s", dir, err, msg)
		}
	})
	if b.err != nil {
		tb.Fatal(b.err)
	}
	return b.path
}

// Daemon is a running outreachd.
type Daemon struct {
	Addr  string // the HTTP address, host:port
	URL   string // http://Addr
	Kafka string // the embedded broker's address, if it runs one

	cmd  *exec.Cmd
	logs syncBuffer
	done chan struct{} // closed when the process has exited
	once sync.Once
}

// Command returns the command that runs the binary at bin with args, with
// none of this process's OUTREACH_ variables and then env ("KEY=VALUE").
func Command(bin string, env []string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OUTREACH_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

// StartDaemon runs the outreachd binary at bin on free loopback ports, with
// JSON logs, none of this process's OUTREACH_ variables and then env
// ("KEY=VALUE"), and waits until it serves HTTP. It is stopped with SIGTERM
// at cleanup, and its logs are shown if the test failed.
func StartDaemon(tb testing.TB, bin string, env ...string) *Daemon {
	tb.Helper()
	d := &Daemon{done: make(chan struct{})}
	d.cmd = Command(bin, append([]string{"OUTREACH_HTTP_ADDR=127.0.0.1:0", "OUTREACH_EMBEDDED_KAFKA_ADDR=127.0.0.1:0", "OUTREACH_LOG_FORMAT=json"}, env...))
	stderr, err := d.cmd.StderrPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	ready := make(chan [2]string, 1)
	go func() {
		defer func() {
			d.cmd.Wait() // after stderr is read to its end, as Wait closes it
			close(d.done)
		}()
		var kafkaAddr string
		dec := json.NewDecoder(io.TeeReader(stderr, &d.logs))
		for {
			var line struct{ Msg, Addr string }
			if dec.Decode(&line) != nil {
				io.Copy(&d.logs, stderr)
				return
			}
			switch line.Msg {
			case "embedded kafka broker listening":
				kafkaAddr = line.Addr
			case "http listening":
				ready <- [2]string{line.Addr, kafkaAddr}
				// The rest is only kept: decoding it would slow a daemon
				// that logs much, as its writes wait for this reader.
				io.Copy(&d.logs, stderr)
				return
			}
		}
	}()
	tb.Cleanup(func() {
		d.Stop()
		if tb.Failed() {
			tb.Logf("outreachd logs:\n%s", d.Logs())
		}
	})
	select {
	case a := <-ready:
		d.Addr, d.Kafka = a[0], a[1]
		d.URL = "http://" + d.Addr
		return d
	case <-d.done:
		tb.Fatalf("outreachd exited at start (%v); logs:\n%s", d.cmd.ProcessState, d.Logs())
	case <-time.After(60 * time.Second):
		tb.Fatalf("outreachd did not start; logs:\n%s", d.Logs())
	}
	return nil
}

// Stop stops the daemon gracefully, with SIGTERM, and waits for it.
func (d *Daemon) Stop() { d.end(syscall.SIGTERM) }

// Kill kills the daemon without a graceful stop, and waits for it.
func (d *Daemon) Kill() { d.end(syscall.SIGKILL) }

func (d *Daemon) end(sig syscall.Signal) {
	d.once.Do(func() { d.cmd.Process.Signal(sig) })
	<-d.done
}

// Signal sends sig to the daemon and returns at once.
func (d *Daemon) Signal(sig os.Signal) error { return d.cmd.Process.Signal(sig) }

// Wait waits up to timeout for the daemon to exit, and returns its exit
// code, or -1 if it is still running (or was killed by a signal).
func (d *Daemon) Wait(timeout time.Duration) int {
	select {
	case <-d.done:
		return d.cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		return -1
	}
}

// Logs returns what the daemon has logged so far.
func (d *Daemon) Logs() string { return d.logs.String() }

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
