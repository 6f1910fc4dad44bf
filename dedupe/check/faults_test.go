package check_test

import (
	"context"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/contact/redis"
	"github.com/outreach/outreach/dedupe"
	"github.com/outreach/outreach/dedupe/check"
	"github.com/outreach/outreach/internal/testenv"
)

// proxied is a check service whose store talks to Redis through a proxy
// that fails or holds the commands a test chooses.
func proxied(t *testing.T, timeout time.Duration) (*check.Service, *redis.Store, *testenv.RESPProxy) {
	t.Helper()
	r := testenv.NewSingleRedis(t)
	p := testenv.NewRESPProxy(t, r.Addr)
	rdb := goredis.NewClient(&goredis.Options{Addr: p.Addr, MaxRetries: -1, ContextTimeoutEnabled: true})
	t.Cleanup(func() { rdb.Close() })
	store := redis.New(rdb, redis.Options{Prefix: r.Prefix, Now: func() time.Time { return t0 }})
	svc := check.New(check.Config{Store: store, Policy: dedupe.DefaultPolicy, Now: func() time.Time { return t0 }, Timeout: timeout})
	return svc, store, p
}

// TestOneFailedCommandFailsOnlyItsCheck: finding 1 of issue 8, with a real
// fault: Redis fails one command of a batch's pipeline (the state of one
// customer); that check is unavailable, the other is decided, and the
// missing claim key of the first (redis.Nil) hides nothing.
func TestOneFailedCommandFailsOnlyItsCheck(t *testing.T) {
	t.Parallel()
	svc, store, p := proxied(t, 0)
	if _, err := store.Apply(context.Background(), []contact.Event{
		ev("o1", "opt_out", "c2", t0.Add(-time.Hour)), ev("k1", "contact", "c1", t0.Add(-time.Hour)),
	}); err != nil {
		t.Fatal(err)
	}
	p.Fail(func(c testenv.RESPCommand) bool {
		return c.Name == "HGETALL" && strings.HasSuffix(c.Args[0], "{c:c2}:s")
	})
	res, err := svc.Check(context.Background(), []dedupe.Request{
		{CustomerID: "c1", Channel: contact.Email}, {CustomerID: "c2", Channel: contact.Call},
	}, check.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Failed() == 0 {
		t.Fatal("the fault was not hit")
	}
	if !res[0].Allowed || codes(res[0]) != "" {
		t.Errorf("c1: allowed=%v %q, want allowed", res[0].Allowed, codes(res[0]))
	}
	if res[1].Allowed || codes(res[1]) != "unavailable" {
		t.Errorf("c2, whose state could not be read: allowed=%v %q, want unavailable", res[1].Allowed, codes(res[1]))
	}
}

// TestHungRedisAnswersWithinTheTimeout: a check against a Redis that does
// not answer answers unavailable once the check timeout has passed, not
// after the client's own seconds-long timeouts.
func TestHungRedisAnswersWithinTheTimeout(t *testing.T) {
	t.Parallel()
	svc, _, p := proxied(t, 300*time.Millisecond)
	p.Delay(5*time.Second, func(c testenv.RESPCommand) bool { return c.Name == "HGETALL" })
	start := time.Now()
	res, err := svc.Check(context.Background(), []dedupe.Request{{CustomerID: "c1", Channel: contact.Call}}, check.Options{})
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Allowed || codes(res[0]) != "unavailable" {
		t.Errorf("check against a hung Redis: allowed=%v %q, want unavailable", res[0].Allowed, codes(res[0]))
	}
	if took > 2*time.Second {
		t.Errorf("the check took %v; a 300ms timeout should bound it", took)
	}
	t.Logf("a check against a hung Redis answered unavailable after %v", took.Round(time.Millisecond))
}

// TestStoreResetSaysSo: a check whose store lost its data (Redis came back
// empty: the epoch of its slot is gone) answers unavailable with a reason
// that says so, under either on_unavailable, so that an agent and an
// operator know it is not a passing outage.
func TestStoreResetSaysSo(t *testing.T) {
	t.Parallel()
	for _, policy := range []string{"on_unavailable: closed", "on_unavailable: open"} {
		r := testenv.NewRedis(t)
		store := redis.New(r.Client, redis.Options{Prefix: r.Prefix, Epoch: true}) // no epoch written: reset
		p, err := dedupe.ParsePolicy([]byte(policy))
		if err != nil {
			t.Fatal(err)
		}
		svc := check.New(check.Config{Store: store, Policy: func() *dedupe.Policy { return p }})
		res, err := svc.Check(context.Background(), []dedupe.Request{{CustomerID: "c1", Channel: contact.Call}}, check.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if codes(res[0]) != "unavailable" || res[0].Allowed != p.FailOpen() || !strings.Contains(res[0].Reasons[0].Message, "reset") {
			t.Errorf("%s: check of a reset store = allowed %v %+v, want unavailable with a reason naming the reset", policy, res[0].Allowed, res[0].Reasons)
		}
	}
}
