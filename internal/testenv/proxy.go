package testenv

import (
	"io"
	"net"
	"sync"
	"testing"
)

// Proxy forwards TCP connections to a server and can cut them, to test what
// happens when the server goes away without stopping a shared server.
// Its methods are safe for concurrent use.
type Proxy struct {
	Addr   string
	target string
	open   func(client, server net.Conn) proxyConn

	mu    sync.Mutex
	ln    net.Listener
	conns map[proxyConn]struct{}
}

// proxyConn is one client's connection through a proxy.
type proxyConn interface {
	serve() // until the connection ends
	io.Closer
}

// NewProxy starts a proxy on a loopback port to target.
func NewProxy(tb testing.TB, target string) *Proxy {
	tb.Helper()
	return newProxy(tb, target, func(client, server net.Conn) proxyConn { return pipes{client, server} })
}

func newProxy(tb testing.TB, target string, open func(client, server net.Conn) proxyConn) *Proxy {
	tb.Helper()
	p := &Proxy{target: target, open: open, conns: map[proxyConn]struct{}{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p.Addr = ln.Addr().String()
	p.serve(ln)
	tb.Cleanup(p.Down)
	return p
}

// Down closes the listener, so that new connections are refused, and
// every open connection.
func (p *Proxy) Down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// Up listens again on the same address.
func (p *Proxy) Up(tb testing.TB) {
	tb.Helper()
	ln, err := net.Listen("tcp", p.Addr)
	if err != nil {
		tb.Fatalf("proxy up: %v", err)
	}
	p.serve(ln)
}

func (p *Proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", p.target)
			if err != nil {
				in.Close()
				continue
			}
			p.mu.Lock()
			if p.ln != ln {
				p.mu.Unlock()
				in.Close()
				out.Close()
				return
			}
			c := p.open(in, out)
			p.conns[c] = struct{}{}
			p.mu.Unlock()
			go func() {
				c.serve()
				c.Close()
				p.mu.Lock()
				delete(p.conns, c)
				p.mu.Unlock()
			}()
		}
	}()
}

// pipes copies bytes both ways until either side closes.
type pipes struct{ client, server net.Conn }

func (c pipes) serve() {
	done := make(chan struct{})
	go func() {
		pipe(c.server, c.client)
		close(done)
	}()
	pipe(c.client, c.server)
	<-done
}

func (c pipes) Close() error {
	c.client.Close()
	return c.server.Close()
}

func pipe(dst, src net.Conn) {
	io.Copy(dst, src)
	dst.Close()
	src.Close()
}
