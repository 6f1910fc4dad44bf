package redis_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/contact/redis"
	"github.com/outreach/outreach/dedupe"
)

func check(tb testing.TB, s *redis.Store, reqs ...dedupe.Request) []dedupe.Result {
	tb.Helper()
	for i := range reqs {
		if err := reqs[i].Normalize(t0); err != nil {
			tb.Fatal(err)
		}
	}
	res, err := s.Check(context.Background(), dedupe.DefaultPolicy(), reqs)
	if err != nil {
		tb.Fatalf("Check: %v", err)
	}
	return res
}

func codes(r dedupe.Result) string {
	s := ""
	for i, x := range r.Reasons {
		if i > 0 {
			s += ","
		}
		s += x.Code
	}
	return s
}

func TestCheckReadsTheTimeline(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, redis.Options{})
	apply(t, s,
		ev("k1", "contact", "c1", t0.Add(-2*time.Hour), func(e *contact.Event) { e.Agent = "a.jones"; e.Team = "retention" }),
		ev("p1", "purchase", "c2", t0.Add(-24*time.Hour)),
	)
	res := check(t, s,
		dedupe.Request{CustomerID: "c1", Channel: contact.Call},
		dedupe.Request{CustomerID: "c1", Channel: contact.Email},
		dedupe.Request{CustomerID: "c2", Channel: contact.Call, Product: "fiber-500"},
		dedupe.Request{CustomerID: "c3", Channel: contact.Call},
	)
	want := []struct {
		customer, codes string
		allowed         bool
	}{
		{"c1", "recent_contact", false},
		{"c1", "", true},
		{"c2", "already_purchased", false},
		{"c3", "", true},
	}
	for i, w := range want {
		if res[i].CustomerID != w.customer || codes(res[i]) != w.codes || res[i].Allowed != w.allowed {
			t.Errorf("result %d = %s allowed=%v %q, want %s allowed=%v %q", i, res[i].CustomerID, res[i].Allowed, codes(res[i]), w.customer, w.allowed, w.codes)
		}
	}
	if r := res[0].Reasons[0]; r.EventID != "k1" || r.Agent != "a.jones" || r.Team != "retention" {
		t.Errorf("recent_contact evidence = %+v", r)
	}
}

func TestConcurrentClaimsExactlyOneWins(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, redis.Options{})
	const n = 50
	var wg sync.WaitGroup
	results := make([]dedupe.Result, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			req := dedupe.Request{CustomerID: "c1", Channel: contact.Call, Agent: "dialer", Claim: true}
			if err := req.Normalize(t0); err != nil {
				errs[i] = err
				return
			}
			res, err := s.Check(context.Background(), dedupe.DefaultPolicy(), []dedupe.Request{req})
			if err == nil {
				results[i] = res[0]
			}
			errs[i] = err
		})
	}
	wg.Wait()
	winners := 0
	for i, r := range results {
		if errs[i] != nil {
			t.Fatalf("check %d: %v", i, errs[i])
		}
		switch {
		case r.Allowed && r.Claim != nil && r.Claim.Token != "":
			winners++
		case !r.Allowed && codes(r) == "claimed" && r.Claim == nil:
			if ev := r.Reasons[0]; ev.Agent != "dialer" || ev.ExpiresAt == nil {
				t.Errorf("claimed evidence = %+v, want the holder and expiry", ev)
			}
		default:
			t.Errorf("check %d: allowed=%v reasons=%q claim=%v", i, r.Allowed, codes(r), r.Claim)
		}
	}
	if winners != 1 {
		t.Errorf("%d checks won the claim, want exactly 1", winners)
	}
}

func TestClaimLifecycle(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, redis.Options{})
	ctx := context.Background()
	claim := func() dedupe.Result {
		return check(t, s, dedupe.Request{CustomerID: "c1", Channel: contact.Call, Agent: "dialer-7", Campaign: "spring", Claim: true})[0]
	}
	first := claim()
	if !first.Allowed || first.Claim == nil {
		t.Fatalf("first claim: %+v", first)
	}
	if got := claim(); got.Allowed || codes(got) != "claimed" || got.Reasons[0].Campaign != "spring" {
		t.Fatalf("second claim: allowed=%v %q", got.Allowed, codes(got))
	}
	// A plain check sees the claim too, without its token.
	if got := check(t, s, dedupe.Request{CustomerID: "c1", Channel: contact.Call})[0]; codes(got) != "claimed" || got.Claim != nil {
		t.Errorf("check without claim: %q claim %v", codes(got), got.Claim)
	}

	released, err := s.ReleaseClaim(ctx, first.Claim.Token)
	if err != nil || !released {
		t.Fatalf("ReleaseClaim = %v, %v; want true", released, err)
	}
	if released, _ := s.ReleaseClaim(ctx, first.Claim.Token); released {
		t.Errorf("second ReleaseClaim released again")
	}
	second := claim()
	if second.Claim == nil {
		t.Fatalf("claim after release: %+v", second)
	}
	// A contact made under the claim ends it.
	apply(t, s, ev("k1", "contact", "c1", t0, func(e *contact.Event) { e.Channel = contact.Email; e.Claim = second.Claim.Token }))
	if third := claim(); third.Claim == nil {
		t.Errorf("claim after a contact event carrying the token: %q", codes(third))
	}

	for _, bad := range []string{"", "nope", "Yzk.zz", "Yzk." + "0123456789abcdef0123456789abcdeg"} {
		if _, err := s.ReleaseClaim(ctx, bad); contact.ErrorCode(err) != contact.EInvalid {
			t.Errorf("ReleaseClaim(%q) = %v, want invalid", bad, err)
		}
	}
}

func TestBlockedClaimIsNotHeld(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, redis.Options{})
	apply(t, s, ev("o1", "opt_out", "c1", t0.Add(-time.Hour)))
	got := check(t, s, dedupe.Request{CustomerID: "c1", Channel: contact.Call, Claim: true})[0]
	if got.Allowed || got.Claim != nil || codes(got) != "opted_out" {
		t.Fatalf("blocked claim: allowed=%v %q claim=%v", got.Allowed, codes(got), got.Claim)
	}
	// The claim taken in the pipeline was released: opting back in allows a claim.
	apply(t, s, ev("o2", "opt_in", "c1", t0.Add(-time.Minute)))
	if got := check(t, s, dedupe.Request{CustomerID: "c1", Channel: contact.Call, Claim: true})[0]; got.Claim == nil {
		t.Errorf("claim after opt-in: %q", codes(got))
	}
}

func TestCheckRedisDown(t *testing.T) {
	t.Parallel()
	s, r := newStore(t, redis.Options{})
	if r.Real() {
		t.Skip("stops the server")
	}
	r.Mini.Close()
	req := dedupe.Request{CustomerID: "c1", Channel: contact.Call}
	req.Normalize(t0)
	if _, err := s.Check(context.Background(), dedupe.DefaultPolicy(), []dedupe.Request{req}); contact.ErrorCode(err) != contact.EUnavailable {
		t.Errorf("Check with Redis down: %v, want unavailable", err)
	}
}
