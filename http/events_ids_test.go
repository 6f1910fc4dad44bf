package http_test

import (
	"fmt"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/outreach/outreach/contact/redis"
	httpapi "github.com/outreach/outreach/http"
)

// TestPostEventsRefusesAReusedID posts events against the Redis store that
// holds the call k1 of customer c1 (listsEnv): an event that reuses k1 with
// other content is a 409 naming its index and the field id, and nothing is
// produced; the call itself again is a redelivery, accepted.
func TestPostEventsRefusesAReusedID(t *testing.T) {
	t.Parallel()
	env := newListsEnv(t, listsOptions{})
	prod := &memProducer{}
	h := httpapi.New(httpapi.Config{Producer: prod, Timelines: &memTimelines{}, Checker: env.checker, EventIDs: env.store,
		Now: func() time.Time { return now }}).Handler()
	at := now.Add(-2 * time.Hour).Format(time.RFC3339)
	stored := fmt.Sprintf(`{"id":"k1","type":"contact","customer_id":"c1","at":%q,"channel":"call","agent":"a.jones"}`, at)
	reused := fmt.Sprintf(`{"id":"k1","type":"contact","customer_id":"c1","at":%q,"channel":"sms","agent":"a.jones"}`, at)
	fresh := fmt.Sprintf(`{"id":"k2","type":"contact","customer_id":"c1","at":%q,"channel":"call"}`, at)

	rec, e := do(t, h, "POST", "/v1/events", "application/json", "["+fresh+","+reused+"]")
	if rec.Code != 409 || e.Error.Code != "conflict" || e.Error.Field != "id" || e.Error.Index == nil || *e.Error.Index != 1 {
		t.Errorf("a reused id: %d %s; want 409 conflict naming field id of index 1", rec.Code, rec.Body)
	}
	if len(prod.events) != 0 {
		t.Errorf("%d events produced after a 409", len(prod.events))
	}
	if rec, _ := do(t, h, "POST", "/v1/events", "application/json", reused); rec.Code != 409 {
		t.Errorf("a reused id alone: %d %s, want 409", rec.Code, rec.Body)
	}
	if rec, _ := do(t, h, "POST", "/v1/events", "application/json", "["+stored+","+fresh+"]"); rec.Code != 202 || len(prod.events) != 2 {
		t.Errorf("a redelivery and a new event: %d %s, %d produced; want 202 and 2", rec.Code, rec.Body, len(prod.events))
	}
}

// TestPostEventsWithoutRedis posts events while the ids cannot be read: they
// are produced, for the consumer to check.
func TestPostEventsWithoutRedis(t *testing.T) {
	t.Parallel()
	rdb := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: time.Second})
	defer rdb.Close()
	prod := &memProducer{}
	h := httpapi.New(httpapi.Config{Producer: prod, Timelines: &memTimelines{}, Checker: &memChecker{}, EventIDs: redis.New(rdb, redis.Options{}),
		Now: func() time.Time { return now }}).Handler()
	body := fmt.Sprintf(`{"id":"k1","type":"opt_out","customer_id":"c1","at":%q}`, now.Add(-time.Hour).Format(time.RFC3339))
	if rec, _ := do(t, h, "POST", "/v1/events", "application/json", body); rec.Code != 202 || len(prod.events) != 1 {
		t.Errorf("%d %s, %d produced; want 202 and the event produced", rec.Code, rec.Body, len(prod.events))
	}
}

// TestPostEventsRefusesForget posts an erasure as an event: erasing a
// customer is DELETE /v1/customers/{id}, role admin, recorded with who
// asked, so a dialer's key must not do it through POST /v1/events.
func TestPostEventsRefusesForget(t *testing.T) {
	t.Parallel()
	prod := &memProducer{}
	h := httpapi.New(httpapi.Config{Producer: prod, Timelines: &memTimelines{}, Checker: &memChecker{}, Now: func() time.Time { return now }}).Handler()
	body := fmt.Sprintf(`[{"id":"f1","type":"opt_out","customer_id":"c1","at":%q},{"id":"f2","type":"forget","customer_id":"c1","at":%q}]`,
		now.Add(-time.Hour).Format(time.RFC3339), now.Add(-time.Hour).Format(time.RFC3339))
	rec, e := do(t, h, "POST", "/v1/events", "application/json", body)
	if rec.Code != 400 || e.Error.Field != "type" || e.Error.Index == nil || *e.Error.Index != 1 || len(prod.events) != 0 {
		t.Errorf("%d %s, %d produced; want 400 naming type of index 1, none produced", rec.Code, rec.Body, len(prod.events))
	}
}
