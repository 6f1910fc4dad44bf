package redis_test

import (
	"context"
	"fmt"
	"iter"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/contact/redis"
	"github.com/outreach/outreach/dedupe"
	checksvc "github.com/outreach/outreach/dedupe/check"
	"github.com/outreach/outreach/internal/testenv"
)

// entries yields es, then err if it is not nil.
func entries(err error, es ...dedupe.Suppression) iter.Seq2[dedupe.Suppression, error] {
	return func(yield func(dedupe.Suppression, error) bool) {
		for _, e := range es {
			if !yield(e, nil) {
				return
			}
		}
		if err != nil {
			yield(dedupe.Suppression{}, err)
		}
	}
}

func byID(id, reason string) dedupe.Suppression {
	return dedupe.Suppression{CustomerID: id, Reason: reason}
}

func byPhone(e164, reason string) dedupe.Suppression {
	return dedupe.Suppression{Phone: e164, Reason: reason}
}

func replace(tb testing.TB, s *redis.Store, list string, es ...dedupe.Suppression) {
	tb.Helper()
	n, err := s.ReplaceSuppressions(context.Background(), list, entries(nil, es...))
	if err != nil || n != len(es) {
		tb.Fatalf("ReplaceSuppressions(%s) = %d, %v; want %d", list, n, err, len(es))
	}
}

// check answers reqs through the check service over s, at t0.
func check(tb testing.TB, s *redis.Store, reqs ...dedupe.Request) []dedupe.Result {
	tb.Helper()
	svc := checksvc.New(checksvc.Config{Store: s, Policy: dedupe.DefaultPolicy, Now: func() time.Time { return t0 }})
	res, err := svc.Check(context.Background(), reqs, checksvc.Options{})
	if err != nil {
		tb.Fatalf("Check: %v", err)
	}
	return res
}

// suppressedBy checks customer (and phone) at time at and returns the lists
// of its do_not_call reasons, comma-separated.
func suppressedBy(tb testing.TB, s *redis.Store, customer, phone string, at time.Time) string {
	tb.Helper()
	req := dedupe.Request{CustomerID: customer, Channel: contact.Call, Phone: phone, At: at}
	res := check(tb, s, req)[0]
	var lists []string
	for _, r := range res.Reasons {
		if r.Code == dedupe.CodeDoNotCall {
			lists = append(lists, r.List)
		}
	}
	return strings.Join(lists, ",")
}

func TestSuppressionHitsByIDAndPhone(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, redis.Options{})
	until := t0.Add(48 * time.Hour)
	replace(t, s, "litigators",
		byID("c1", "sued us in 2025"),
		dedupe.Suppression{Phone: "+4791234567", Reason: "asked to stop", ExpiresAt: &until},
	)
	replace(t, s, "internal", byID("c1", ""), dedupe.Suppression{CustomerID: "c3", ExpiresAt: new(t0.Add(-time.Hour))})

	tests := []struct {
		name, customer, phone string
		at                    time.Time
		want                  string
	}{
		{"by id, on two lists", "c1", "", t0, "internal,litigators"},
		{"by phone", "c2", "+4791234567", t0, "litigators"},
		{"by phone written locally", "c2", "912 34 567", t0, "litigators"},
		{"by id and phone", "c1", "+4791234567", t0, "internal,litigators,litigators"},
		{"phone entry expired", "c2", "+4791234567", until, ""},
		{"phone entry before expiry, checked in the future", "c2", "+4791234567", until.Add(-time.Minute), "litigators"},
		{"expired id entry", "c3", "", t0, ""},
		{"not listed", "c4", "+4791234568", t0, ""},
	}
	for _, tt := range tests {
		if got := suppressedBy(t, s, tt.customer, tt.phone, tt.at); got != tt.want {
			t.Errorf("%s: do_not_call lists %q, want %q", tt.name, got, tt.want)
		}
	}

	// The evidence: the list, and the reason in the sentence.
	res := check(t, s, dedupe.Request{CustomerID: "c2", Channel: contact.Call, Phone: "+4791234567"})[0]
	if res.Allowed || len(res.Reasons) != 1 {
		t.Fatalf("reasons = %+v", res.Reasons)
	}
	r := res.Reasons[0]
	if r.List != "litigators" || !strings.Contains(r.Message, "asked to stop") || r.ExpiresAt == nil || !r.ExpiresAt.Equal(until) {
		t.Errorf("do_not_call evidence = %+v", r)
	}
}

func TestReplaceSuppressions(t *testing.T) {
	t.Parallel()
	s, r := newStore(t, redis.Options{})
	ctx := context.Background()
	replace(t, s, "dnc", byID("c1", "a"), byID("c2", "b"), byPhone("+4791234567", "c"))
	replace(t, s, "dnc", byID("c2", "b2"), byID("c3", "c"), byID("c3", "later rows win"))

	for _, tt := range []struct{ customer, want string }{{"c1", ""}, {"c2", "dnc"}, {"c3", "dnc"}} {
		if got := suppressedBy(t, s, tt.customer, "", t0); got != tt.want {
			t.Errorf("%s: lists %q, want %q", tt.customer, got, tt.want)
		}
	}
	if got := suppressedBy(t, s, "c9", "+4791234567", t0); got != "" {
		t.Errorf("a phone left out of the new version still hits: %q", got)
	}
	if e, err := s.GetSuppression(ctx, "dnc", dedupe.Suppression{CustomerID: "c3"}); err != nil || e.Reason != "later rows win" || e.List != "dnc" {
		t.Errorf("GetSuppression(c3) = %+v, %v", e, err)
	}
	if n, err := s.SuppressionCount(ctx, "dnc"); err != nil || n != 2 {
		t.Errorf("SuppressionCount = %d, %v; want 2", n, err)
	}
	// The old version is gone from Redis, not only ignored.
	if n := r.Client.HLen(ctx, r.Prefix+"{c:c1}:dnc").Val(); n != 0 {
		t.Errorf("c1 still has %d suppression fields", n)
	}
	if n := r.Client.HLen(ctx, r.Prefix+"{c:c2}:dnc").Val(); n != 1 {
		t.Errorf("c2 has %d suppression fields, want 1", n)
	}
	if gens := memberSetGenerations(t, r, "dnc"); len(gens) != 1 {
		t.Errorf("member sets of generations %v, want those of the one in force", gens)
	}

	// An empty replace empties the list but keeps it.
	replace(t, s, "dnc")
	if n, err := s.SuppressionCount(ctx, "dnc"); err != nil || n != 0 {
		t.Errorf("SuppressionCount after an empty replace = %d, %v", n, err)
	}
}

func TestFailedLoadsChangeNothing(t *testing.T) {
	t.Parallel()
	s, r := newStore(t, redis.Options{})
	ctx := context.Background()
	replace(t, s, "dnc", byID("c1", "a"))
	bad := contact.Invalid("phone", "line 3: is not a phone number")

	many := make([]dedupe.Suppression, 2500) // more than one batch is written before the error
	for i := range many {
		many[i] = byID(fmt.Sprint("n", i), "")
	}
	tests := []struct {
		name string
		load func() (int, error)
		want error
	}{
		{"replace, a bad line", func() (int, error) {
			return s.ReplaceSuppressions(ctx, "dnc", entries(bad, append(many, byID("c2", ""))...))
		}, bad},
		{"add, a bad line", func() (int, error) {
			return s.AddSuppressions(ctx, "dnc", entries(bad, append(many, byID("c2", ""))...))
		}, bad},
		{"replace, a bad entry", func() (int, error) {
			return s.ReplaceSuppressions(ctx, "dnc", entries(nil, byID("c2", ""), byPhone("91234567", "")))
		}, nil},
		{"add, an entry with neither", func() (int, error) {
			return s.AddSuppressions(ctx, "dnc", entries(nil, byID("c2", ""), dedupe.Suppression{Reason: "x"}))
		}, nil},
		{"bad list name", func() (int, error) {
			return s.ReplaceSuppressions(ctx, "Do Not Call", entries(nil, byID("c2", "")))
		}, nil},
	}
	for _, tt := range tests {
		n, err := tt.load()
		if tt.want != nil && err != tt.want {
			t.Errorf("%s: err = %v, want the sequence's error as is", tt.name, err)
		}
		if contact.ErrorCode(err) != contact.EInvalid || n != 0 {
			t.Errorf("%s: %d, %v; want 0 and invalid", tt.name, n, err)
		}
		if got := suppressedBy(t, s, "c1", "", t0) + "/" + suppressedBy(t, s, "c2", "", t0) + "/" + suppressedBy(t, s, "n7", "", t0); got != "dnc//" {
			t.Errorf("%s: lists of c1/c2/n7 = %q, want dnc//", tt.name, got)
		}
	}
	// What the failed loads wrote is deleted, not only ignored.
	if keys := r.Keys(t, r.Prefix+"{c:n*"); len(keys) != 0 {
		t.Errorf("failed loads left %d keys, such as %s", len(keys), keys[0])
	}
	if gens := memberSetGenerations(t, r, "dnc"); len(gens) != 1 {
		t.Errorf("member sets of generations %v, want those of the one in force", gens)
	}
}

func TestAddDeleteAndGetSuppressions(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, redis.Options{})
	ctx := context.Background()

	// Adding creates the list.
	n, err := s.AddSuppressions(ctx, "regulator", entries(nil, byID("c1", "a"), byPhone("+4791234567", "b"), byID("c1", "again")))
	if err != nil || n != 2 {
		t.Fatalf("AddSuppressions = %d, %v; want 2", n, err)
	}
	if n, err := s.AddSuppressions(ctx, "regulator", entries(nil, byID("c2", ""))); err != nil || n != 1 {
		t.Fatalf("second AddSuppressions = %d, %v", n, err)
	}
	if got := suppressedBy(t, s, "c1", "", t0) + "/" + suppressedBy(t, s, "c2", "", t0); got != "regulator/regulator" {
		t.Errorf("after adds: %q", got)
	}
	if n, _ := s.SuppressionCount(ctx, "regulator"); n != 3 {
		t.Errorf("count = %d, want 3", n)
	}

	e, err := s.GetSuppression(ctx, "regulator", dedupe.Suppression{Phone: "+4791234567"})
	if err != nil || e.Phone != "+4791234567" || e.Reason != "b" {
		t.Errorf("GetSuppression(phone) = %+v, %v", e, err)
	}
	if ok, err := s.DeleteSuppression(ctx, "regulator", dedupe.Suppression{Phone: "+4791234567"}); !ok || err != nil {
		t.Errorf("DeleteSuppression(phone) = %v, %v; want true", ok, err)
	}
	if ok, err := s.DeleteSuppression(ctx, "regulator", dedupe.Suppression{Phone: "+4791234567"}); ok || err != nil {
		t.Errorf("second DeleteSuppression(phone) = %v, %v; want false", ok, err)
	}
	if got := suppressedBy(t, s, "c9", "+4791234567", t0); got != "" {
		t.Errorf("a deleted phone still hits: %q", got)
	}
	if n, _ := s.SuppressionCount(ctx, "regulator"); n != 2 {
		t.Errorf("count = %d, want 2", n)
	}

	for _, tt := range []struct {
		name string
		err  error
		code string
	}{
		{"get a missing entry", get(s, "regulator", dedupe.Suppression{CustomerID: "c7"}), contact.ENotFound},
		{"get from a missing list", get(s, "nope", dedupe.Suppression{CustomerID: "c1"}), contact.ENotFound},
		{"get with a bad list name", get(s, "../x", dedupe.Suppression{CustomerID: "c1"}), contact.EInvalid},
		{"get with a bad phone", get(s, "regulator", dedupe.Suppression{Phone: "x"}), contact.EInvalid},
		{"get with no key", get(s, "regulator", dedupe.Suppression{}), contact.EInvalid},
		{"delete from a missing list", del(s, "nope", dedupe.Suppression{CustomerID: "c1"}), contact.ENotFound},
		{"count a missing list", count(s, "nope"), contact.ENotFound},
	} {
		if got := contact.ErrorCode(tt.err); got != tt.code {
			t.Errorf("%s: %v, want %s", tt.name, tt.err, tt.code)
		}
	}
}

func get(s *redis.Store, list string, key dedupe.Suppression) error {
	_, err := s.GetSuppression(context.Background(), list, key)
	return err
}

func del(s *redis.Store, list string, key dedupe.Suppression) error {
	_, err := s.DeleteSuppression(context.Background(), list, key)
	return err
}

func count(s *redis.Store, list string) error {
	_, err := s.SuppressionCount(context.Background(), list)
	return err
}

// TestChecksDuringAReplace holds a replace half-way and checks meanwhile:
// checks see the old version whole, and an addition made meanwhile
// survives the replace.
func TestChecksDuringAReplace(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, redis.Options{})
	ctx := context.Background()
	replace(t, s, "dnc", byID("old", ""))

	halfway, resume := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		seq := func(yield func(dedupe.Suppression, error) bool) {
			for i := range 3000 {
				if i == 2000 {
					close(halfway)
					<-resume
				}
				if !yield(byID(fmt.Sprint("new", i), ""), nil) {
					return
				}
			}
		}
		_, err := s.ReplaceSuppressions(ctx, "dnc", seq)
		done <- err
	}()
	select {
	case <-halfway:
	case err := <-done: // it failed before half-way: do not wait for ever
		t.Fatalf("ReplaceSuppressions ended before half-way: %v", err)
	}
	if got := suppressedBy(t, s, "old", "", t0) + "/" + suppressedBy(t, s, "new1", "", t0); got != "dnc/" {
		t.Errorf("during the replace: old/new1 lists %q, want the old version only", got)
	}
	if _, err := s.AddSuppressions(ctx, "dnc", entries(nil, byID("added", ""))); err != nil {
		t.Fatal(err)
	}
	if got := suppressedBy(t, s, "added", "", t0); got != "dnc" {
		t.Errorf("an addition during the replace is not in force: %q", got)
	}
	close(resume)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := suppressedBy(t, s, "old", "", t0) + "/" + suppressedBy(t, s, "new2999", "", t0) + "/" + suppressedBy(t, s, "added", "", t0); got != "/dnc/dnc" {
		t.Errorf("after the replace: old/new2999/added lists %q, want /dnc/dnc", got)
	}
	if n, _ := s.SuppressionCount(ctx, "dnc"); n != 3001 {
		t.Errorf("count = %d, want 3001", n)
	}
}

// TestConcurrentReplacesLastStartedWins runs two replaces of one list that
// finish in the opposite order to the one they started in.
func TestConcurrentReplacesLastStartedWins(t *testing.T) {
	t.Parallel()
	s, r := newStore(t, redis.Options{})
	ctx := context.Background()
	started, finish := make(chan struct{}), make(chan struct{})
	first := make(chan error, 1)
	go func() {
		seq := func(yield func(dedupe.Suppression, error) bool) {
			yield(byID("first", ""), nil)
			close(started)
			<-finish
		}
		_, err := s.ReplaceSuppressions(ctx, "dnc", seq)
		first <- err
	}()
	select {
	case <-started:
	case err := <-first: // it failed before its first entry: do not wait for ever
		t.Fatalf("the first ReplaceSuppressions ended early: %v", err)
	}
	replace(t, s, "dnc", byID("second", ""))
	close(finish)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if got := suppressedBy(t, s, "first", "", t0) + "/" + suppressedBy(t, s, "second", "", t0); got != "/dnc" {
		t.Errorf("first/second lists %q, want the later-started replace in force", got)
	}
	if n := r.Client.HLen(ctx, r.Prefix+"{c:first}:dnc").Val(); n != 0 {
		t.Errorf("the losing replace left %d fields", n)
	}
}

// memberSetGenerations returns the generations of list that have member
// sets in Redis.
func memberSetGenerations(tb testing.TB, r *testenv.Redis, list string) []string {
	tb.Helper()
	gens := map[string]bool{}
	for _, k := range r.Keys(tb, r.Prefix+"{l:"+list+":*}:m:*") {
		gens[k[strings.LastIndex(k, ":")+1:]] = true
	}
	return slices.Sorted(maps.Keys(gens))
}

// TestAnAdditionIsAllOrNothing: a Redis failure in the middle of an
// addition, while it writes its entries or when it puts them in force,
// leaves none of them in force.
func TestAnAdditionIsAllOrNothing(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		fault func(c testenv.RESPCommand) bool
	}{
		{"while writing", func(c testenv.RESPCommand) bool {
			return c.Name == "HSET" && strings.HasSuffix(c.Args[0], "{c:add-1500}:dnc")
		}},
		{"when putting it in force", func(c testenv.RESPCommand) bool {
			return c.Name == "EVALSHA" && len(c.Args) > 2 && strings.HasSuffix(c.Args[2], "{dnc}:lists")
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := testenv.NewSingleRedis(t)
			p := testenv.NewRESPProxy(t, r.Addr)
			rdb := goredis.NewClient(&goredis.Options{Addr: p.Addr, MaxRetries: -1})
			defer rdb.Close()
			s := redis.New(rdb, redis.Options{Prefix: r.Prefix, Now: func() time.Time { return t0 }})
			ctx := context.Background()
			replace(t, s, "dnc", byID("old", ""))
			if err := s.LoadScripts(ctx); err != nil { // so that the script runs as EVALSHA
				t.Fatal(err)
			}
			many := make([]dedupe.Suppression, 3000)
			for i := range many {
				many[i] = byID(fmt.Sprint("add-", i), "")
			}
			p.Fail(tt.fault)
			if _, err := s.AddSuppressions(ctx, "dnc", entries(nil, many...)); contact.ErrorCode(err) != contact.EUnavailable {
				t.Fatalf("AddSuppressions with a fault = %v, want unavailable", err)
			}
			if p.Failed() == 0 {
				t.Fatal("the fault was not hit")
			}
			p.Fail(nil)
			for _, id := range []string{"add-0", "add-1499", "add-2999"} {
				if got := suppressedBy(t, s, id, "", t0); got != "" {
					t.Errorf("%s is in force after a failed addition: %q", id, got)
				}
			}
			if got := suppressedBy(t, s, "old", "", t0); got != "dnc" {
				t.Errorf("the list's old entry: %q, want dnc", got)
			}
		})
	}
}
