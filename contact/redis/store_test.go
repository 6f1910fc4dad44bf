package redis_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/contact/redis"
	"github.com/outreach/outreach/internal/testenv"
)

var t0 = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

func newStore(tb testing.TB, o redis.Options) (*redis.Store, *testenv.Redis) {
	tb.Helper()
	r := testenv.NewRedis(tb)
	o.Prefix = r.Prefix
	if o.Now == nil {
		o.Now = func() time.Time { return t0 }
	}
	return redis.New(r.Client, o), r
}

func ev(id, typ, customer string, at time.Time, mod ...func(*contact.Event)) contact.Event {
	e := contact.Event{ID: id, Type: contact.Type(typ), CustomerID: customer, At: at}
	if e.Type == contact.TypeContact {
		e.Channel = contact.Call
	}
	if e.Type == contact.TypePurchase {
		e.Product = "fiber-500"
	}
	if e.Type == contact.TypeComplaint {
		e.CaseID = "case-1"
	}
	for _, m := range mod {
		m(&e)
	}
	if err := e.Normalize(); err != nil {
		panic(err)
	}
	return e
}

func apply(tb testing.TB, s *redis.Store, events ...contact.Event) {
	tb.Helper()
	if err := s.Apply(context.Background(), events); err != nil {
		tb.Fatalf("Apply: %v", err)
	}
}

func timeline(tb testing.TB, s *redis.Store, customer string, limit int) ([]contact.Event, contact.State) {
	tb.Helper()
	events, state, err := s.Timeline(context.Background(), customer, contact.Page{Limit: limit})
	if err != nil {
		tb.Fatalf("Timeline: %v", err)
	}
	return events, state
}

func ids(events []contact.Event) string {
	s := ""
	for i, e := range events {
		if i > 0 {
			s += ","
		}
		s += e.ID
	}
	return s
}

func TestApplyTwiceStoresOnce(t *testing.T) {
	t.Parallel()
	s, r := newStore(t, redis.Options{})
	e := ev("e1", "contact", "c1", t0.Add(-time.Hour), func(e *contact.Event) {
		e.Offer = &contact.Offer{ID: "o1", Price: new(49.0)}
	})
	apply(t, s, e)
	apply(t, s, e, e)
	// Redelivered JSON decodes to the same canonical event.
	raw := []byte(`{"id":"e1","type":"contact","customer_id":"c1","at":"2026-11-20T10:00:00+01:00","channel":"call","offer":{"id":"o1","price":49},"extra":"ignored"}`)
	again, err := contact.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	apply(t, s, again)

	for _, kind := range []string{"c", "f"} {
		n, err := r.Client.ZCard(context.Background(), r.Prefix+"{c:c1}:"+kind).Result()
		if err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("key %s holds %d members, want 1", kind, n)
		}
	}
	events, _ := timeline(t, s, "c1", 50)
	if got := ids(events); got != "e1" {
		t.Errorf("timeline = %s, want e1", got)
	}
}

func TestTimelineOrderedWhateverTheArrival(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, redis.Options{})
	apply(t, s, ev("e3", "contact", "c1", t0.Add(-1*time.Hour)))
	apply(t, s, ev("e1", "purchase", "c1", t0.Add(-3*time.Hour)))
	apply(t, s, ev("e4", "opt_out", "c1", t0.Add(-30*time.Minute)), ev("e2", "complaint", "c1", t0.Add(-2*time.Hour)))
	events, _ := timeline(t, s, "c1", 50)
	if got, want := ids(events), "e4,e3,e2,e1"; got != want {
		t.Errorf("timeline = %s, want %s", got, want)
	}
	events, _ = timeline(t, s, "c1", 2)
	if got, want := ids(events), "e4,e3"; got != want {
		t.Errorf("timeline limit 2 = %s, want %s", got, want)
	}
	page, _, err := s.Timeline(context.Background(), "c1", contact.Page{Limit: 2, Before: events[1].At})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ids(page), "e2,e1"; got != want {
		t.Errorf("second page = %s, want %s", got, want)
	}
}

func TestUnknownCustomerIsEmpty(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, redis.Options{})
	events, state := timeline(t, s, "nobody", 50)
	if len(events) != 0 || len(state.Products) != 0 || len(state.OpenComplaints) != 0 {
		t.Errorf("unknown customer: events %v state %+v, want empty", events, state)
	}
}

func TestCustomersAreSeparate(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, redis.Options{})
	apply(t, s, ev("a1", "contact", "a", t0.Add(-time.Hour)), ev("b1", "contact", "b", t0.Add(-time.Hour)))
	events, _ := timeline(t, s, "a", 50)
	if got := ids(events); got != "a1" {
		t.Errorf("timeline of a = %s, want a1", got)
	}
}

func TestRetentionByCount(t *testing.T) {
	t.Parallel()
	s, r := newStore(t, redis.Options{MaxEvents: 5})
	var batch []contact.Event
	for i := range 12 {
		batch = append(batch, ev(fmt.Sprintf("e%02d", i), "contact", "c1", t0.Add(-time.Duration(12-i)*time.Minute)))
	}
	apply(t, s, batch...)
	n, _ := r.Client.ZCard(context.Background(), r.Prefix+"{c:c1}:c").Result()
	if n != 5 {
		t.Errorf("kept %d contacts, want 5", n)
	}
	events, _ := timeline(t, s, "c1", 50)
	if got, want := ids(events), "e11,e10,e09,e08,e07"; got != want {
		t.Errorf("timeline = %s, want the newest five %s", got, want)
	}
}

func TestRetentionByAge(t *testing.T) {
	t.Parallel()
	s, r := newStore(t, redis.Options{Retention: 24 * time.Hour})
	apply(t, s,
		ev("old", "contact", "c1", t0.Add(-48*time.Hour)),
		ev("new", "contact", "c1", t0.Add(-time.Hour)),
		ev("oldopt", "opt_out", "c1", t0.Add(-72*time.Hour)),
	)
	events, state := timeline(t, s, "c1", 50)
	if got, want := ids(events), "new,oldopt"; got != want {
		t.Errorf("timeline = %s, want %s (old contact trimmed, opt-out kept)", got, want)
	}
	if _, ok := state.OptOuts[contact.Call]; !ok {
		t.Errorf("opt-out older than retention no longer in force: %+v", state.OptOuts)
	}
	ctx := context.Background()
	ttl, _ := r.Client.PTTL(ctx, r.Prefix+"{c:c1}:c").Result()
	if ttl <= 23*time.Hour || ttl > 24*time.Hour {
		t.Errorf("contacts TTL = %v, want about 24h", ttl)
	}
	if ttl, _ := r.Client.PTTL(ctx, r.Prefix+"{c:c1}:o").Result(); ttl >= 0 {
		t.Errorf("opt records TTL = %v, want none", ttl)
	}
}

func TestStateDerivedFromHistory(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, redis.Options{})
	apply(t, s,
		ev("p1", "purchase", "c1", t0.Add(-100*time.Hour)),
		ev("x1", "complaint", "c1", t0.Add(-50*time.Hour), func(e *contact.Event) { e.Owner = "b.smith" }),
		ev("x2", "complaint", "c1", t0.Add(-40*time.Hour), func(e *contact.Event) { e.CaseID = "case-2" }),
		ev("x3", "complaint", "c1", t0.Add(-30*time.Hour), func(e *contact.Event) { e.CaseID = "case-2"; e.Status = "resolved" }),
		ev("o1", "opt_out", "c1", t0.Add(-20*time.Hour), func(e *contact.Event) { e.Channel = contact.Call }),
		ev("k1", "contact", "c1", t0.Add(-10*time.Hour), func(e *contact.Event) {
			e.Agent = "a.jones"
			e.Offer = &contact.Offer{Price: new(39.0)}
		}),
		ev("k2", "contact", "c1", t0.Add(-5*time.Hour), func(e *contact.Event) { e.Channel = contact.Email }),
		ev("k3", "contact", "c1", t0.Add(-1*time.Hour), func(e *contact.Event) { e.Direction = contact.Inbound }),
	)
	_, st := timeline(t, s, "c1", 50)
	if got := st.Products["fiber-500"].ID; got != "p1" {
		t.Errorf("products[fiber-500] = %q, want p1", got)
	}
	if got := ids(st.OpenComplaints); got != "x1" {
		t.Errorf("open complaints = %s, want x1", got)
	}
	if got := st.OptOuts[contact.Call].ID; got != "o1" {
		t.Errorf("opt-out for call = %q, want o1", got)
	}
	if _, ok := st.OptOuts[contact.Email]; ok {
		t.Errorf("email opted out, want only call")
	}
	if got := ids(st.Offers); got != "k1" {
		t.Errorf("offers = %s, want k1", got)
	}
	if got := st.LastContacts[contact.Call].ID; got != "k1" {
		t.Errorf("last call = %q, want k1 (k3 is inbound)", got)
	}
	if got := st.LastContacts[contact.Email].ID; got != "k2" {
		t.Errorf("last email = %q, want k2", got)
	}
}

func TestHistoryWindows(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, redis.Options{})
	apply(t, s,
		ev("k-old", "contact", "c1", t0.Add(-10*24*time.Hour)),
		ev("k-new", "contact", "c1", t0.Add(-time.Hour)),
		ev("p-old", "purchase", "c1", t0.Add(-300*24*time.Hour)),
	)
	h, err := s.History(context.Background(), "c1", t0, redis.Window{Contacts: 7 * 24 * time.Hour, Purchases: 100 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(h.Contacts); got != "k-new" {
		t.Errorf("contacts in 7d = %s, want k-new", got)
	}
	if len(h.Purchases) != 0 {
		t.Errorf("purchases in 100d = %s, want none", ids(h.Purchases))
	}
}

func TestRedisDownIsUnavailable(t *testing.T) {
	t.Parallel()
	r := testenv.NewRedis(t)
	if r.Real() {
		t.Skip("stops the server; miniredis only (the consumer suite covers outages against real Redis through a proxy)")
	}
	s := redis.New(r.Client, redis.Options{Prefix: r.Prefix})
	r.Mini.Close()
	ctx := context.Background()
	for name, err := range map[string]error{
		"apply":    s.Apply(ctx, []contact.Event{ev("e1", "contact", "c1", t0)}),
		"timeline": func() error { _, _, err := s.Timeline(ctx, "c1", contact.Page{Limit: 5}); return err }(),
		"ping":     s.Ping(ctx),
	} {
		var e *contact.Error
		if !errors.As(err, &e) || e.Code != contact.EUnavailable {
			t.Errorf("%s with Redis down: %v, want an %s error", name, err, contact.EUnavailable)
		}
	}
}
