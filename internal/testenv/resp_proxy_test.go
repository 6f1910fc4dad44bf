package testenv_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	goredis "github.com/redis/go-redis/v9"

	"github.com/outreach/outreach/internal/testenv"
)

// server is a Redis server to test the proxy against, with a key prefix of
// the test's own.
type server struct {
	name, addr, prefix string
	real               bool
}

// servers returns miniredis and, when testenv.RedisEnv is set, the real
// server.
func servers(t *testing.T) []server {
	t.Helper()
	list := []server{{name: "miniredis", addr: miniredis.RunT(t).Addr(), prefix: "p:"}}
	if os.Getenv(testenv.RedisEnv) != "" {
		r := testenv.NewSingleRedis(t)
		list = append(list, server{name: "redis", addr: r.Addr, prefix: r.Prefix, real: true})
	}
	return list
}

// eachClient runs test as a subtest against each server, with a RESP2 and a
// RESP3 client, each over a proxy of its own.
func eachClient(t *testing.T, test func(t *testing.T, s server, p *testenv.RESPProxy, c *goredis.Client)) {
	for _, s := range servers(t) {
		for _, protocol := range []int{2, 3} {
			t.Run(fmt.Sprintf("%s/RESP%d", s.name, protocol), func(t *testing.T) {
				p := testenv.NewRESPProxy(t, s.addr)
				c := goredis.NewClient(&goredis.Options{Addr: p.Addr, Protocol: protocol, MaxRetries: -1})
				t.Cleanup(func() { c.Close() })
				s := s
				s.prefix += fmt.Sprintf("resp%d:", protocol) // the two clients share the server
				test(t, s, p, c)
			})
		}
	}
}

// keyIs matches the commands name whose first argument is key.
func keyIs(name, key string) func(testenv.RESPCommand) bool {
	return func(c testenv.RESPCommand) bool { return c.Name == name && len(c.Args) > 0 && c.Args[0] == key }
}

func isFault(err error) bool { return err != nil && err.Error() == testenv.DefaultFault }

func TestRESPProxyPipelineOfForwardedAndFailedCommands(t *testing.T) {
	eachClient(t, func(t *testing.T, s server, p *testenv.RESPProxy, c *goredis.Client) {
		ctx := context.Background()
		k := func(name string) string { return s.prefix + "{c:1}:" + name }
		if err := c.HSet(ctx, k("h"), "f", "v").Err(); err != nil {
			t.Fatal(err)
		}
		c.SAdd(ctx, k("s"), "m1", "m2")
		c.ZAdd(ctx, k("z"), goredis.Z{Score: 1.5, Member: "m"})
		c.Set(ctx, k("b"), "bee", 0)

		p.Fail(func(cmd testenv.RESPCommand) bool {
			return keyIs("GET", k("b"))(cmd) || keyIs("HGETALL", k("h2"))(cmd) || keyIs("SMEMBERS", k("s"))(cmd)
		})
		pipe := c.Pipeline()
		set := pipe.Set(ctx, k("a"), "1", time.Minute)
		getA := pipe.Get(ctx, k("a"))
		getB := pipe.Get(ctx, k("b")) // failed
		hgetall := pipe.HGetAll(ctx, k("h"))
		hgetall2 := pipe.HGetAll(ctx, k("h2")) // failed
		smembers := pipe.SMembers(ctx, k("s")) // failed
		missing := pipe.Get(ctx, k("missing"))
		incr := pipe.Incr(ctx, k("n"))
		zscore := pipe.ZScore(ctx, k("z"), "m")
		wrongType := pipe.LPush(ctx, k("a"), "x") // the server's own error
		eval := pipe.Eval(ctx, "return {1, {2, 'x'}, redis.call('GET', KEYS[1])}", []string{k("a")})
		getA2 := pipe.Get(ctx, k("a"))
		pipe.Exec(ctx)

		if set.Err() != nil || getA.Val() != "1" || getA2.Val() != "1" {
			t.Errorf("SET, GET, GET: %v, %v, %v", set.Err(), getA, getA2)
		}
		for _, cmd := range []goredis.Cmder{getB, hgetall2, smembers} {
			if !isFault(cmd.Err()) {
				t.Errorf("%v: want the injected fault", cmd)
			}
		}
		if v := hgetall.Val(); hgetall.Err() != nil || len(v) != 1 || v["f"] != "v" {
			t.Errorf("HGETALL: %v", hgetall)
		}
		if missing.Err() != goredis.Nil {
			t.Errorf("GET of a missing key: %v, want redis.Nil", missing)
		}
		if incr.Val() != 1 || zscore.Val() != 1.5 {
			t.Errorf("INCR, ZSCORE: %v, %v", incr, zscore)
		}
		if err := wrongType.Err(); err == nil || !strings.HasPrefix(err.Error(), "WRONGTYPE") {
			t.Errorf("LPUSH on a string: %v, want the server's WRONGTYPE", err)
		}
		if got := fmt.Sprint(eval.Val()); eval.Err() != nil || got != "[1 [2 x] 1]" {
			t.Errorf("EVAL: %v", eval)
		}
		if n := p.Failed(); n != 3 {
			t.Errorf("Failed() = %d, want 3", n)
		}
		if v, err := c.SMembers(ctx, k("s")).Result(); !isFault(err) || v != nil {
			t.Errorf("SMEMBERS alone: %v %v, want the fault", v, err)
		}
		p.Fail(nil)
		if v, err := c.SMembers(ctx, k("s")).Result(); err != nil || len(v) != 2 {
			t.Errorf("SMEMBERS once the rule is cleared: %v %v", v, err)
		}
		if n := p.Failed(); n != 4 {
			t.Errorf("Failed() = %d, want 4", n)
		}
	})
}

func TestRESPProxyRESP3Replies(t *testing.T) {
	for _, s := range servers(t) {
		if !s.real {
			continue // miniredis's Lua knows none of the RESP3 return types
		}
		p := testenv.NewRESPProxy(t, s.addr)
		c := goredis.NewClient(&goredis.Options{Addr: p.Addr, Protocol: 3, MaxRetries: -1})
		defer c.Close()
		ctx := context.Background()
		p.Fail(func(cmd testenv.RESPCommand) bool { return cmd.Name == "EVAL" && strings.Contains(cmd.Args[0], "fail") })
		pipe := c.Pipeline()
		scripts := []string{
			"redis.setresp(3); return true",
			"return {double=3.5}",
			"return 'fail'",
			"return {big_number='123456789012345678901234567890'}",
			"return {map={a=1}}",
			"return 'fail'",
			"return {set={x=true}}",
			"return {verbatim_string={format='txt', string='hi'}}",
			"redis.setresp(3); return redis.call('GET', 'no such key " + s.prefix + "')",
		}
		var cmds []*goredis.Cmd
		for _, src := range scripts {
			cmds = append(cmds, pipe.Eval(ctx, src, nil))
		}
		pipe.Exec(ctx)
		want := []string{"true", "3.5", "fault", "123456789012345678901234567890", "map[a:1]", "fault", "[x]", "hi", "nil"}
		for i, cmd := range cmds {
			got := fmt.Sprint(cmd.Val())
			switch {
			case isFault(cmd.Err()):
				got = "fault"
			case cmd.Err() == goredis.Nil:
				got = "nil"
			case cmd.Err() != nil:
				got = cmd.Err().Error()
			}
			if got != want[i] {
				t.Errorf("%s: got %s, want %s", scripts[i], got, want[i])
			}
		}
	}
}

func TestRESPProxyLargeValues(t *testing.T) {
	eachClient(t, func(t *testing.T, s server, p *testenv.RESPProxy, c *goredis.Client) {
		ctx := context.Background()
		big1, big2 := make([]byte, 1<<20), make([]byte, 1<<20)
		rand.Read(big1)
		rand.Read(big2)
		k1, k2, k3 := s.prefix+"big1", s.prefix+"big2", s.prefix+"big3"
		p.Fail(keyIs("SET", k3))
		pipe := c.Pipeline()
		pipe.Set(ctx, k1, big1, time.Minute)
		failedSet := pipe.Set(ctx, k3, big1, time.Minute) // a failed command with a large argument
		pipe.Set(ctx, k2, big2, time.Minute)
		get1, get3, get2 := pipe.Get(ctx, k1), pipe.Get(ctx, k3), pipe.Get(ctx, k2)
		if _, err := pipe.Exec(ctx); !isFault(err) {
			t.Errorf("Exec: %v, want the fault as the first error", err)
		}
		if !isFault(failedSet.Err()) || get3.Err() != goredis.Nil {
			t.Errorf("failed SET, GET: %v, %v", failedSet.Err(), get3.Err())
		}
		if get1.Val() != string(big1) || get2.Val() != string(big2) {
			t.Errorf("the 1 MiB values came back different (%d and %d bytes)", len(get1.Val()), len(get2.Val()))
		}
	})
}

func TestRESPProxyManyClientsWhileTheRulesChange(t *testing.T) {
	eachClient(t, func(t *testing.T, s server, p *testenv.RESPProxy, c *goredis.Client) {
		ctx := context.Background()
		const keys = 20
		for i := range keys {
			c.Set(ctx, fmt.Sprint(s.prefix, "k", i), fmt.Sprint("v", i), time.Minute)
		}
		stop := make(chan struct{})
		var flips sync.WaitGroup
		flips.Go(func() { // the rules and the fault change all the time
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-time.After(time.Millisecond):
				}
				mod := fmt.Sprint(i % 3)
				p.Fail(func(cmd testenv.RESPCommand) bool { return cmd.Name == "GET" && strings.HasSuffix(cmd.Args[0], mod) })
				p.SetFault(testenv.DefaultFault)
			}
		})
		var faults atomic.Int64
		var clients sync.WaitGroup
		for range 8 {
			clients.Go(func() {
				for range 50 {
					pipe := c.Pipeline()
					var gets []*goredis.StringCmd
					for i := range keys {
						gets = append(gets, pipe.Get(ctx, fmt.Sprint(s.prefix, "k", i)))
					}
					pipe.Exec(ctx)
					for i, g := range gets {
						if isFault(g.Err()) {
							faults.Add(1)
						} else if g.Val() != fmt.Sprint("v", i) {
							t.Errorf("GET k%d = %v, want v%d or the fault", i, g, i)
							return
						}
					}
				}
			})
		}
		clients.Wait()
		close(stop)
		flips.Wait()
		if faults.Load() == 0 || faults.Load() != p.Failed() {
			t.Errorf("the clients saw %d faults, the proxy counts %d", faults.Load(), p.Failed())
		}
	})
}

func TestRESPProxyDelay(t *testing.T) {
	eachClient(t, func(t *testing.T, s server, p *testenv.RESPProxy, c *goredis.Client) {
		ctx := context.Background()
		slow, fast := s.prefix+"slow", s.prefix+"fast"
		c.Set(ctx, slow, "s", time.Minute)
		c.Set(ctx, fast, "f", time.Minute)
		const delay = 300 * time.Millisecond
		p.Delay(delay, keyIs("GET", slow))

		done := make(chan error, 1)
		start := time.Now()
		go func() {
			v, err := c.Get(ctx, slow).Result()
			if err == nil && v != "s" {
				err = fmt.Errorf("got %q", v)
			}
			done <- err
		}()
		// Another connection is not held.
		testenv.Eventually(t, 5*time.Second, "the slow GET is held", func() bool { return p.Delayed() == 1 })
		if v, err := c.Get(ctx, fast).Result(); err != nil || v != "f" {
			t.Errorf("GET fast: %q %v", v, err)
		}
		select {
		case err := <-done:
			t.Fatalf("the slow GET returned (%v) before the fast one", err)
		default:
		}
		if err := <-done; err != nil {
			t.Errorf("slow GET: %v", err)
		}
		if elapsed := time.Since(start); elapsed < delay {
			t.Errorf("the slow GET took %v, less than the delay %v", elapsed, delay)
		}

		// A held and failed command: the fault comes after the delay.
		p.Fail(keyIs("GET", slow))
		start = time.Now()
		if err := c.Get(ctx, slow).Err(); !isFault(err) || time.Since(start) < delay {
			t.Errorf("held and failed GET: %v after %v", err, time.Since(start))
		}

		// A hung server: the client times out, and Down releases the command.
		p.Fail(nil)
		p.Delay(time.Hour, keyIs("GET", slow))
		hung := goredis.NewClient(&goredis.Options{Addr: p.Addr, ReadTimeout: 100 * time.Millisecond, MaxRetries: -1})
		defer hung.Close()
		var netErr interface{ Timeout() bool }
		if err := hung.Get(ctx, slow).Err(); !errors.As(err, &netErr) || !netErr.Timeout() {
			t.Errorf("GET on a hung server: %v, want a timeout", err)
		}
		if n := p.Delayed(); n != 3 {
			t.Errorf("Delayed() = %d, want 3", n)
		}
	})
}

func TestRESPProxyDownAndUp(t *testing.T) {
	eachClient(t, func(t *testing.T, s server, p *testenv.RESPProxy, c *goredis.Client) {
		ctx := context.Background()
		key := s.prefix + "kept"
		if err := c.Set(ctx, key, "v", time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		p.Down()
		if err := c.Get(ctx, key).Err(); err == nil || err == goredis.Nil {
			t.Errorf("GET with the proxy down: %v, want a connection error", err)
		}
		p.Up(t)
		testenv.Eventually(t, 5*time.Second, "GET works again", func() bool { return c.Get(ctx, key).Val() == "v" })

		p.SetFault("LOADING Redis is loading the dataset in memory")
		p.Fail(keyIs("GET", key))
		if err := c.Get(ctx, key).Err(); err == nil || err.Error() != "LOADING Redis is loading the dataset in memory" {
			t.Errorf("GET with a custom fault: %v", err)
		}
	})
}
