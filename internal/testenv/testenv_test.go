package testenv_test

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/outreach/outreach/internal/testenv"
)

// TestRedisKeysAndCleanup writes keys of many slots, which a cluster
// spreads over its masters, and checks that Keys finds them all and that
// cleanup deletes them all.
func TestRedisKeysAndCleanup(t *testing.T) {
	const n = 100
	ctx := context.Background()
	var prefix string
	t.Run("writes", func(t *testing.T) {
		r := testenv.NewRedis(t)
		prefix = r.Prefix
		for i := range n {
			if err := r.Client.Set(ctx, fmt.Sprintf("%s{c:%d}:x", r.Prefix, i), "v", time.Minute).Err(); err != nil {
				t.Fatal(err)
			}
		}
		r.Client.Set(ctx, "other:"+r.Prefix, "v", time.Minute) // not under the prefix
		defer r.Client.Del(ctx, "other:"+r.Prefix)
		if keys := r.Keys(t, r.Prefix+"*"); len(keys) != n {
			t.Errorf("Keys found %d keys, want %d", len(keys), n)
		}
		if c, ok := r.Client.(*goredis.ClusterClient); ok {
			var masters atomic.Int32
			c.ForEachMaster(ctx, func(context.Context, *goredis.Client) error {
				masters.Add(1)
				return nil
			})
			if !r.Cluster || masters.Load() < 2 {
				t.Errorf("a cluster client with %d masters, Cluster = %v", masters.Load(), r.Cluster)
			}
		}
	})
	r := testenv.NewRedis(t) // the same server, unless it is a miniredis of its own
	if !r.Real() {
		return
	}
	if keys := r.Keys(t, prefix+"*"); len(keys) != 0 {
		t.Errorf("cleanup left %d keys, such as %s", len(keys), keys[0])
	}
}

func TestDaemonEnv(t *testing.T) {
	r := testenv.NewRedis(t)
	env := r.DaemonEnv()
	want := []string{"OUTREACH_REDIS_ADDR=" + r.Addr, "OUTREACH_REDIS_PREFIX=" + r.Prefix}
	if r.Cluster {
		want = append(want, "OUTREACH_REDIS_CLUSTER=true")
	}
	if !slices.Equal(env, want) {
		t.Errorf("DaemonEnv() = %q, want %q", env, want)
	}
}
