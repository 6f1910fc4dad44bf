package check_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/contact/redis"
	"github.com/outreach/outreach/dedupe"
	"github.com/outreach/outreach/dedupe/check"
	"github.com/outreach/outreach/internal/testenv"
)

var t0 = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

// env is a check service over a store of the test's own, at t0.
type env struct {
	store *redis.Store
	svc   *check.Service
	r     *testenv.Redis
	logs  *bytes.Buffer
}

func newEnv(tb testing.TB, policy *dedupe.Policy) *env {
	tb.Helper()
	r := testenv.NewRedis(tb)
	logs := &bytes.Buffer{}
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&mu, logs}, nil))
	store := redis.New(r.Client, redis.Options{Prefix: r.Prefix, Now: func() time.Time { return t0 }, Logger: log})
	if policy == nil {
		policy = dedupe.DefaultPolicy()
	}
	// A generous timeout: these tests are about decisions, and run in
	// parallel under the race detector on a shared machine.
	svc := check.New(check.Config{Store: store, Policy: func() *dedupe.Policy { return policy }, Now: func() time.Time { return t0 }, Logger: log,
		Timeout: 5 * time.Second})
	return &env{store: store, svc: svc, r: r, logs: logs}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func ev(id, typ, customer string, at time.Time, mod ...func(*contact.Event)) contact.Event {
	e := contact.Event{ID: id, Type: contact.Type(typ), CustomerID: customer, At: at}
	switch e.Type {
	case contact.TypeContact:
		e.Channel = contact.Call
	case contact.TypePurchase:
		e.Product = "fiber-500"
	case contact.TypeComplaint:
		e.CaseID = "case-1"
	}
	for _, m := range mod {
		m(&e)
	}
	if err := e.Normalize(contact.Defaults{}); err != nil {
		panic(err)
	}
	return e
}

func (e *env) apply(tb testing.TB, events ...contact.Event) {
	tb.Helper()
	if _, err := e.store.Apply(context.Background(), events); err != nil {
		tb.Fatal(err)
	}
}

func (e *env) check(tb testing.TB, reqs ...dedupe.Request) []dedupe.Result {
	tb.Helper()
	res, err := e.svc.Check(context.Background(), reqs, check.Options{})
	if err != nil {
		tb.Fatalf("Check: %v", err)
	}
	return res
}

func codes(r dedupe.Result) string {
	var s []string
	for _, x := range r.Reasons {
		s = append(s, x.Code)
	}
	return strings.Join(s, ",")
}

func TestCheckReadsTheState(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.apply(t,
		ev("k1", "contact", "c1", t0.Add(-2*time.Hour), func(e *contact.Event) { e.Agent = "a.jones"; e.Team = "retention" }),
		ev("p1", "purchase", "c2", t0.Add(-24*time.Hour)),
	)
	res := e.check(t,
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

// TestAtIsAPlanNeverAnEscape: finding 2. A check cannot look at the past to
// dodge an opt-out, and a planned check takes no live claim.
func TestAtIsAPlanNeverAnEscape(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.apply(t, ev("o1", "opt_out", "c1", t0.Add(-time.Hour)), ev("k1", "contact", "c2", t0.Add(-time.Hour)))
	_, err := e.svc.Check(context.Background(), []dedupe.Request{{CustomerID: "c1", Channel: contact.Call, At: t0.Add(-2 * time.Hour)}}, check.Options{})
	if ce := asError(err); ce == nil || ce.Field != "at" || ce.Code != contact.EInvalid {
		t.Errorf("a check two hours in the past: %v, want invalid at", err)
	}
	if got := e.check(t, dedupe.Request{CustomerID: "c1", Channel: contact.Call, At: t0.Add(-time.Minute)})[0]; codes(got) != "opted_out" {
		t.Errorf("a check a minute in the past (within the clock skew): %q, want opted_out", codes(got))
	}
	_, err = e.svc.Check(context.Background(), []dedupe.Request{{CustomerID: "c2", Channel: contact.Call, At: t0.Add(30 * 24 * time.Hour), Claim: true}}, check.Options{})
	if ce := asError(err); ce == nil || ce.Field != "at" {
		t.Errorf("a claiming check 30 days ahead: %v, want invalid at", err)
	}
	if n := e.r.Client.Exists(context.Background(), e.r.Prefix+"{c:c2}:claim").Val(); n != 0 {
		t.Error("a refused planned check took a claim")
	}
	// Planned without a claim: judged at its time, with every fact known now.
	got := e.check(t, dedupe.Request{CustomerID: "c2", Channel: contact.Call, At: t0.Add(30 * 24 * time.Hour)},
		dedupe.Request{CustomerID: "c1", Channel: contact.Call, At: t0.Add(30 * 24 * time.Hour)})
	if !got[0].Allowed || got[0].Claim != nil || codes(got[1]) != "opted_out" {
		t.Errorf("planned checks: %q %v / %q, want allowed then opted_out", codes(got[0]), got[0].Claim, codes(got[1]))
	}
}

func asError(err error) *contact.Error {
	var ce *contact.Error
	if errors.As(err, &ce) {
		return ce
	}
	return nil
}

func TestInvalidRequestNamesItsIndex(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	_, err := e.svc.Check(context.Background(), []dedupe.Request{{CustomerID: "c1", Channel: contact.Call}, {CustomerID: "c2", Channel: contact.Call, Phone: "n/a"}}, check.Options{})
	var ie *check.IndexError
	if !errors.As(err, &ie) || ie.Index != 1 || asError(err).Field != "phone" {
		t.Errorf("Check with a bad phone in the second request: %v, want an IndexError 1 naming phone", err)
	}
}

// TestPartialFailureFailsOnlyItsCheck: finding 1. A read that fails for one
// customer of a batch makes that check unavailable, and only that one: a
// missing claim key (redis.Nil) of another customer must not hide it.
func TestPartialFailureFailsOnlyItsCheck(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	e.apply(t, ev("o1", "opt_out", "bad", t0.Add(-time.Hour)), ev("k1", "contact", "good", t0.Add(-time.Hour)))
	// Make the opted-out customer's state unreadable: a string where a
	// hash belongs.
	key := e.r.Prefix + "{c:bad}:s"
	e.r.Client.Del(ctx, key)
	e.r.Client.Set(ctx, key, "not a hash", 0)
	res := e.check(t, dedupe.Request{CustomerID: "good", Channel: contact.Email}, dedupe.Request{CustomerID: "bad", Channel: contact.Call})
	if !res[0].Allowed || codes(res[0]) != "" {
		t.Errorf("the readable customer: allowed=%v %q, want allowed", res[0].Allowed, codes(res[0]))
	}
	if res[1].Allowed || codes(res[1]) != "unavailable" {
		t.Errorf("the unreadable customer: allowed=%v %q, want unavailable", res[1].Allowed, codes(res[1]))
	}
	alone := e.check(t, dedupe.Request{CustomerID: "bad", Channel: contact.Call, Claim: true})[0]
	if alone.Allowed || codes(alone) != "unavailable" || alone.Claim != nil {
		t.Errorf("alone with a claim: allowed=%v %q claim %v", alone.Allowed, codes(alone), alone.Claim)
	}
	// The claim is released in the background, off the check's path.
	testenv.Eventually(t, 5*time.Second, "an unavailable check releases the claim it took", func() bool {
		return e.r.Client.Exists(ctx, e.r.Prefix+"{c:bad}:claim").Val() == 0
	})
}

// TestUndecodableRecordsFailClosed: finding 7. A stored value that cannot
// be read makes the check unavailable and is logged with its key; it is
// never skipped.
func TestUndecodableRecordsFailClosed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tt := range []struct{ name, key, field, value string }{
		{"state slot", "{c:c1}:s", "o:call", "\x00garbage"},
		{"unknown state slot", "{c:c1}:s", "?", "x"},
		{"offer", "{c:c1}:f", "", "o9\x1fgarbage"},
		{"claim", "{c:c1}:claim", "", "{not json"},
		{"suppression entry", "{c:c1}:dnc", "internal:1", "{not json"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, nil)
			key := e.r.Prefix + tt.key
			switch {
			case strings.HasSuffix(tt.key, ":f"):
				e.r.Client.ZAdd(ctx, key, goredisZ(float64(t0.Add(time.Hour).UnixMilli()), tt.value))
			case tt.field == "":
				e.r.Client.Set(ctx, key, tt.value, 0)
			default:
				e.r.Client.HSet(ctx, key, tt.field, tt.value)
				e.r.Client.HSet(ctx, e.r.Prefix+"{dnc}:lists", "internal", "1")
			}
			res := e.check(t, dedupe.Request{CustomerID: "c1", Channel: contact.Call}, dedupe.Request{CustomerID: "c2", Channel: contact.Call})
			if res[0].Allowed || codes(res[0]) != "unavailable" {
				t.Errorf("check over an undecodable %s: allowed=%v %q, want unavailable", tt.name, res[0].Allowed, codes(res[0]))
			}
			if !res[1].Allowed {
				t.Errorf("the other customer: %q, want allowed", codes(res[1]))
			}
			if !strings.Contains(e.logs.String(), key) {
				t.Errorf("the log does not name the key %s:\n%s", key, e.logs.String())
			}
		})
	}
}

func TestConcurrentClaimsExactlyOneWins(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	const n = 50
	var wg sync.WaitGroup
	results := make([]dedupe.Result, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			req := dedupe.Request{CustomerID: "c1", Channel: contact.Call, Agent: "dialer", Claim: true}
			res, err := e.svc.Check(context.Background(), []dedupe.Request{req}, check.Options{})
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
	e := newEnv(t, nil)
	ctx := context.Background()
	claim := func() dedupe.Result {
		return e.check(t, dedupe.Request{CustomerID: "c1", Channel: contact.Call, Agent: "dialer-7", Campaign: "spring", Claim: true})[0]
	}
	first := claim()
	if !first.Allowed || first.Claim == nil {
		t.Fatalf("first claim: %+v", first)
	}
	if got := claim(); got.Allowed || codes(got) != "claimed" || got.Reasons[0].Campaign != "spring" {
		t.Fatalf("second claim: allowed=%v %q", got.Allowed, codes(got))
	}
	// A plain check sees the claim too, without its token.
	if got := e.check(t, dedupe.Request{CustomerID: "c1", Channel: contact.Call})[0]; codes(got) != "claimed" || got.Claim != nil {
		t.Errorf("check without claim: %q claim %v", codes(got), got.Claim)
	}
	if err := e.svc.ReleaseClaim(ctx, first.Claim.Token); err != nil {
		t.Fatalf("ReleaseClaim = %v", err)
	}
	if err := e.svc.ReleaseClaim(ctx, first.Claim.Token); contact.ErrorCode(err) != contact.ENotFound {
		t.Errorf("second ReleaseClaim = %v, want not found", err)
	}
	second := claim()
	if second.Claim == nil {
		t.Fatalf("claim after release: %+v", second)
	}
	// A contact made under the claim ends it.
	e.apply(t, ev("k1", "contact", "c1", t0, func(e *contact.Event) { e.Channel = contact.Email; e.Claim = second.Claim.Token }))
	if third := claim(); third.Claim == nil {
		t.Errorf("claim after a contact event carrying the token: %q", codes(third))
	}
	for _, bad := range []string{"", "nope", "Yzk.zz", "Yzk." + "0123456789abcdef0123456789abcdeg"} {
		if err := e.svc.ReleaseClaim(ctx, bad); contact.ErrorCode(err) != contact.EInvalid {
			t.Errorf("ReleaseClaim(%q) = %v, want invalid", bad, err)
		}
	}
}

func TestBlockedClaimIsNotHeld(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.apply(t, ev("o1", "opt_out", "c1", t0.Add(-time.Hour)))
	got := e.check(t, dedupe.Request{CustomerID: "c1", Channel: contact.Call, Claim: true})[0]
	if got.Allowed || got.Claim != nil || codes(got) != "opted_out" {
		t.Fatalf("blocked claim: allowed=%v %q claim=%v", got.Allowed, codes(got), got.Claim)
	}
	// The claim taken in the pipeline was released: opting back in allows a claim.
	e.apply(t, ev("o2", "opt_in", "c1", t0.Add(-time.Minute)))
	if got := e.check(t, dedupe.Request{CustomerID: "c1", Channel: contact.Call, Claim: true})[0]; got.Claim == nil {
		t.Errorf("claim after opt-in: %q", codes(got))
	}
}

func TestRedisDownIsUnavailable(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	if e.r.Real() {
		t.Skip("stops the server; miniredis only")
	}
	e.r.Mini.Close()
	got := e.check(t, dedupe.Request{CustomerID: "c1", Channel: contact.Call}, dedupe.Request{CustomerID: "c2", Channel: contact.Call})
	for i, r := range got {
		if r.Allowed || codes(r) != "unavailable" {
			t.Errorf("check %d with Redis down: allowed=%v %q, want unavailable", i, r.Allowed, codes(r))
		}
	}
	open := newEnvWithPolicy(t, "on_unavailable: open")
	open.r.Mini.Close()
	if r := open.check(t, dedupe.Request{CustomerID: "c1", Channel: contact.Call})[0]; !r.Allowed || !r.Reasons[0].Warning {
		t.Errorf("fail-open policy: allowed=%v %+v", r.Allowed, r.Reasons)
	}
}

func newEnvWithPolicy(tb testing.TB, yaml string) *env {
	tb.Helper()
	p, err := dedupe.ParsePolicy([]byte(yaml))
	if err != nil {
		tb.Fatal(err)
	}
	return newEnv(tb, p)
}

func goredisZ(score float64, member string) goredis.Z { return goredis.Z{Score: score, Member: member} }

// trail is an audit trail in memory, that fails when told to.
type trail struct {
	mu   sync.Mutex
	recs []dedupe.Record
	err  error
	slow time.Duration // how long Kafka takes to answer, unless the context ends first
}

func (t *trail) Record(ctx context.Context, recs []dedupe.Record) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(t.slow):
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err != nil {
		return t.err
	}
	t.recs = append(t.recs, recs...)
	return nil
}

func withTrail(tb testing.TB, tr *trail, required bool) *env {
	tb.Helper()
	e := newEnv(tb, nil)
	e.svc = check.New(check.Config{Store: e.store, Policy: dedupe.DefaultPolicy, Now: func() time.Time { return t0 },
		Auditor: tr, AuditRequired: required, Instance: "test-1"})
	return e
}

// TestEveryLiveCheckIsRecorded: a record per check of a batch, with who
// asked, the request without its phone, the answer, every reason with its
// evidence, the claim and the policy's version.
func TestEveryLiveCheckIsRecorded(t *testing.T) {
	t.Parallel()
	tr := &trail{}
	e := withTrail(t, tr, false)
	e.apply(t, ev("k1", "contact", "c1", t0.Add(-2*time.Hour), func(e *contact.Event) { e.Team = "retention"; e.Campaign = "winback" }))
	res, err := e.svc.Check(context.Background(), []dedupe.Request{
		{CustomerID: "c1", Channel: contact.Call, Campaign: "autumn", Team: "sales-north", Phone: "+4791234567"},
		{CustomerID: "c2", Channel: contact.Call, Claim: true, Agent: "dialer-7"},
	}, check.Options{Caller: check.Caller{Role: "dialer", KeyID: "abc123"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.recs) != 2 {
		t.Fatalf("%d records, want 2", len(tr.recs))
	}
	r := tr.recs[0]
	if r.Kind != dedupe.RecordCheck || r.Role != "dialer" || r.KeyID != "abc123" || r.Instance != "test-1" || r.Policy != "default" ||
		r.Allowed || r.Request.Campaign != "autumn" || r.Request.Team != "sales-north" {
		t.Errorf("record = %+v", r)
	}
	if len(r.Reasons) != 1 || r.Reasons[0].Code != "recent_contact" || r.Reasons[0].EventIDs[0] != "k1" ||
		r.Reasons[0].Team != "retention" || r.Reasons[0].Campaign != "winback" {
		t.Errorf("reasons = %+v, want recent_contact with its evidence k1 of team retention", r.Reasons)
	}
	if b, _ := json.Marshal(r); strings.Contains(string(b), "4791234567") {
		t.Errorf("the record holds the phone number: %s", b)
	}
	if r := tr.recs[1]; !r.Allowed || r.Claim == "" || r.Claim != res[1].Claim.Token {
		t.Errorf("second record = %+v, want the claim's token", r)
	}
}

// TestRequiredAuditFailsClosed: in required mode a check that cannot be
// recorded is unavailable, and the claim it took is released; in
// best-effort mode it is answered.
func TestRequiredAuditFailsClosed(t *testing.T) {
	t.Parallel()
	for _, required := range []bool{true, false} {
		e := withTrail(t, &trail{err: errors.New("kafka is down")}, required)
		res := e.check(t, dedupe.Request{CustomerID: "c1", Channel: contact.Call, Claim: true})[0]
		if required {
			if res.Allowed || res.Claim != nil || codes(res) != "unavailable" {
				t.Errorf("required: allowed=%v %q claim %v, want unavailable without a claim", res.Allowed, codes(res), res.Claim)
			}
			testenv.Eventually(t, 5*time.Second, "the claim is released", func() bool {
				return e.r.Client.Exists(context.Background(), e.r.Prefix+"{c:c1}:claim").Val() == 0
			})
		} else if !res.Allowed || res.Claim == nil {
			t.Errorf("best effort: allowed=%v claim %v, want the check answered", res.Allowed, res.Claim)
		}
	}
}

// TestRequiredAuditWaitsNoLongerThanTheCheck: in required mode a check
// waits for its record at most the check's timeout, then is unavailable.
func TestRequiredAuditWaitsNoLongerThanTheCheck(t *testing.T) {
	t.Parallel()
	e := withTrail(t, &trail{slow: 5 * time.Second}, true)
	res := e.check(t, dedupe.Request{CustomerID: "c1", Channel: contact.Call})[0]
	if res.Allowed || codes(res) != "unavailable" {
		t.Errorf("allowed=%v %q, want unavailable once the check's timeout has passed", res.Allowed, codes(res))
	}
}
