package testenv

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// DefaultFault is the error a RESPProxy answers a failed command with.
// go-redis does not retry it.
const DefaultFault = "ERR injected fault"

// RESPProxy forwards connections to one Redis server, as Proxy does, and
// reads the clients' commands, so that a test can fail or hold the commands
// it chooses while every other command is forwarded. Replies keep the order
// of the commands, pipelined or not: a failed command gets the injected
// error in its place and the others the server's replies. It understands
// RESP2 and RESP3 replies; a RESP3 push frame, an inline command or a reply
// it cannot parse closes the connection and fails the test at cleanup.
//
// It fronts one server, never a Redis Cluster: a client behind it would be
// redirected past it. Down and Up cut all connections and refuse new ones,
// then listen again. Its methods are safe for concurrent use, and the
// rules may change at any time; a command is judged when the proxy reads
// it, so a change applies from the next command read.
type RESPProxy struct {
	*Proxy

	fail    atomic.Pointer[func(RESPCommand) bool]
	delay   atomic.Pointer[delayRule]
	fault   atomic.Pointer[string]
	failed  atomic.Int64
	delayed atomic.Int64

	mu  sync.Mutex
	err error // the first protocol error
}

type delayRule struct {
	d     time.Duration
	match func(RESPCommand) bool
}

// NewRESPProxy starts a RESP-aware proxy on a loopback port to the Redis
// server at target. It forwards every command until Fail or Delay is set.
func NewRESPProxy(tb testing.TB, target string) *RESPProxy {
	tb.Helper()
	p := &RESPProxy{}
	p.SetFault(DefaultFault)
	p.Proxy = newProxy(tb, target, p.open)
	tb.Cleanup(func() {
		if err := p.Err(); err != nil {
			tb.Errorf("RESP proxy to %s: %v", target, err)
		}
	})
	return p
}

// Fail makes the proxy answer every command for which match returns true
// with the fault instead of forwarding it. nil fails none. match is called
// from several connections at once. Handshake commands (HELLO, CLIENT
// SETINFO, AUTH, SELECT) are judged too: match them only on purpose.
func (p *RESPProxy) Fail(match func(RESPCommand) bool) {
	if match == nil {
		p.fail.Store(nil)
		return
	}
	p.fail.Store(&match)
}

// Delay holds every command for which match returns true for d before it
// forwards or fails it; the commands that the client sent after it on the
// same connection wait behind it, as behind a slow server. A held command
// is still forwarded after its client gave up, as a slow server would still
// run it. nil, or d <= 0, holds none. Down releases held commands at once,
// without forwarding them.
func (p *RESPProxy) Delay(d time.Duration, match func(RESPCommand) bool) {
	if match == nil || d <= 0 {
		p.delay.Store(nil)
		return
	}
	p.delay.Store(&delayRule{d: d, match: match})
}

// SetFault sets the error failed commands are answered with, without the
// leading "-", such as "ERR injected fault" or "LOADING loading". It
// panics on an empty message or one with a line break.
func (p *RESPProxy) SetFault(msg string) {
	if msg == "" || strings.ContainsAny(msg, "\r\n") {
		panic(fmt.Sprintf("testenv: fault %q must be one non-empty line", msg))
	}
	p.fault.Store(&msg)
}

// Failed returns how many commands the proxy answered with the fault.
func (p *RESPProxy) Failed() int64 { return p.failed.Load() }

// Delayed returns how many commands the proxy held.
func (p *RESPProxy) Delayed() int64 { return p.delayed.Load() }

// Err returns the first protocol error the proxy met, if any.
func (p *RESPProxy) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

func (p *RESPProxy) open(client, server net.Conn) proxyConn {
	c := &respConn{p: p, client: client, server: server, done: make(chan struct{})}
	c.queue.cond = sync.NewCond(&c.queue.mu)
	return c
}

// respConn is one client connection. readCommands forwards or fails the
// client's commands and queues, in order, where each reply comes from;
// writeReplies writes the replies to the client in that order.
type respConn struct {
	p              *RESPProxy
	client, server net.Conn
	done           chan struct{} // closed by close
	once           sync.Once
	queue          replyQueue
}

func (c *respConn) serve() {
	go c.writeReplies()
	c.readCommands()
}

func (c *respConn) Close() error {
	c.close(nil)
	return nil
}

// close ends the connection, and records err if it is a protocol error.
func (c *respConn) close(err error) {
	if pe := (*protocolError)(nil); errors.As(err, &pe) {
		c.p.mu.Lock()
		if c.p.err == nil {
			c.p.err = err
		}
		c.p.mu.Unlock()
	}
	c.once.Do(func() {
		close(c.done)
		c.client.Close()
		c.server.Close()
		c.queue.close()
	})
}

func (c *respConn) readCommands() {
	in := bufio.NewReader(c.client)
	out := bufio.NewWriter(c.server)
	var raw bytes.Buffer
	for {
		if in.Buffered() == 0 { // the client's pipeline is read: send it on
			if err := out.Flush(); err != nil {
				c.close(err)
				return
			}
		}
		raw.Reset()
		cmd, err := readCommand(in, &raw)
		if err != nil {
			c.close(err)
			return
		}
		if rule := c.p.delay.Load(); rule != nil && rule.match(cmd) {
			c.p.delayed.Add(1)
			if err := out.Flush(); err != nil {
				c.close(err)
				return
			}
			select {
			case <-time.After(rule.d):
			case <-c.done:
				return
			}
		}
		if match := c.p.fail.Load(); match != nil && (*match)(cmd) {
			c.p.failed.Add(1)
			c.queue.push("-" + *c.p.fault.Load() + "\r\n")
			continue
		}
		if _, err := out.Write(raw.Bytes()); err != nil {
			c.close(err)
			return
		}
		c.queue.push("")
	}
}

func (c *respConn) writeReplies() {
	in := bufio.NewReader(c.server)
	out := bufio.NewWriter(c.client)
	for {
		fault, ok := c.queue.pop(func() error { return out.Flush() })
		if !ok {
			c.close(nil)
			return
		}
		var err error
		if fault != "" {
			_, err = out.WriteString(fault)
		} else {
			if in.Buffered() == 0 { // the server's reply may take a while
				err = out.Flush()
			}
			if err == nil {
				err = copyReply(out, in)
			}
		}
		if err != nil {
			c.close(err)
			return
		}
	}
}

// replyQueue is the unbounded queue of where the replies come from: "" for
// the server, else the fault to answer. It is unbounded because a client may
// write a whole pipeline before it reads a reply.
type replyQueue struct {
	mu     sync.Mutex
	cond   *sync.Cond
	items  []string
	closed bool
}

func (q *replyQueue) push(s string) {
	q.mu.Lock()
	q.items = append(q.items, s)
	q.mu.Unlock()
	q.cond.Signal()
}

// pop returns the next item. Before it waits for one, it calls idle (to
// flush what was written); it returns false once the queue is closed.
func (q *replyQueue) pop(idle func() error) (string, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 && !q.closed {
		q.mu.Unlock()
		err := idle()
		q.mu.Lock()
		if err != nil {
			return "", false
		}
	}
	for len(q.items) == 0 && !q.closed {
		q.cond.Wait()
	}
	if q.closed {
		return "", false
	}
	s := q.items[0]
	q.items[0] = ""
	q.items = q.items[1:]
	return s, true
}

func (q *replyQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.cond.Broadcast()
}
