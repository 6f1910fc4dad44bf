package testenv_test

import (
	"context"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/outreach/outreach/internal/testenv"
)

// TestRedisServer kills, restarts and pauses redis-servers of the test's
// own: with AOF a restart keeps the data, without it comes back empty, and
// a paused server answers nothing until it is resumed.
func TestRedisServer(t *testing.T) {
	ctx := context.Background()
	for _, aof := range []bool{true, false} {
		s := testenv.StartRedisServer(t, testenv.RedisServerOptions{AOF: aof})
		c := goredis.NewClient(&goredis.Options{Addr: s.Addr, MaxRetries: -1})
		defer c.Close()
		if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
		s.Kill(t)
		if err := c.Ping(ctx).Err(); err == nil {
			t.Errorf("AOF %v: PING answered after Kill", aof)
		}
		s.Restart(t)
		n, err := c.Exists(ctx, "k").Result()
		if err != nil || (n == 1) != aof {
			t.Errorf("AOF %v: after a restart the key exists: %d, %v", aof, n, err)
		}
	}
	s := testenv.StartRedisServer(t, testenv.RedisServerOptions{})
	c := goredis.NewClient(&goredis.Options{Addr: s.Addr, MaxRetries: -1, ContextTimeoutEnabled: true})
	defer c.Close()
	s.Pause()
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if err := c.Ping(short).Err(); err == nil {
		t.Error("a paused server answered PING")
	}
	s.Resume()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Errorf("PING after Resume: %v", err)
	}
}
