package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outreach/outreach/internal/testenv"
)

// TestFollowUpsEndToEnd drives two replicas of the real binary in one
// consumer group: complaints and recovery calls go into Kafka, some calls
// before their complaint; both replicas list the same follow-ups due, the
// gauge counts them, and a replay into an emptied store builds the index
// again.
func TestFollowUpsEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	env, r, k := testEnv(t)
	replicas := []string{"http://" + startBinary(t, env), "http://" + startBinary(t, env)}
	topic := env["OUTREACH_KAFKA_TOPICS"]
	now := time.Now().UTC()
	ago := func(d time.Duration) string { return now.Add(-d).Format(time.RFC3339) }
	var want []string
	for i := range 12 {
		c := fmt.Sprintf("cust-%02d", i)
		complaint := fmt.Appendf(nil, `{"id":"k-%s","type":"complaint","customer_id":%q,"at":%q,"case_id":"K%d","owner":"owner-%d","team":"care","summary":"billing"}`,
			c, c, ago(time.Duration(72+i)*time.Hour), i, i%3)
		recovery := fmt.Appendf(nil, `{"id":"r-%s","type":"contact","customer_id":%q,"at":%q,"channel":"call","purpose":"recovery","agent":"x"}`, c, c, ago(time.Hour))
		switch i % 4 {
		case 0: // called back before the complaint arrived
			k.Produce(t, topic, c, recovery, complaint)
		case 1: // called back after
			k.Produce(t, topic, c, complaint, recovery)
		default:
			k.Produce(t, topic, c, complaint)
			want = append(want, c)
		}
	}
	slices.Reverse(want) // the oldest opened, longest overdue, first
	due := func(base string) []string {
		_, b := call(t, "GET", base+"/v1/followups?limit=500", agentKey, "")
		var page struct {
			FollowUps []struct {
				CustomerID string `json:"customer_id"`
			} `json:"followups"`
		}
		json.Unmarshal(b, &page)
		var got []string
		for _, f := range page.FollowUps {
			got = append(got, f.CustomerID)
		}
		return got
	}
	for _, base := range replicas {
		testenv.Eventually(t, 60*time.Second, "the follow-ups due are listed by "+base, func() bool { return slices.Equal(due(base), want) })
	}
	testenv.Eventually(t, 30*time.Second, "the gauge counts them", func() bool {
		_, b := call(t, "GET", replicas[0]+"/metrics", "", "")
		return strings.Contains(string(b), fmt.Sprintf(`outreach_followups_due{team="care"} %d`, len(want)))
	})

	// The store comes back empty: the list is unavailable, not empty,
	// until a replay builds the index again.
	for _, key := range r.Keys(t, r.Prefix+"*") {
		r.Client.Del(context.Background(), key)
	}
	if resp, b := call(t, "GET", replicas[0]+"/v1/followups", agentKey, ""); resp.StatusCode != 503 {
		t.Fatalf("after the store was emptied: %d %s, want 503", resp.StatusCode, b)
	}
	cfg, err := LoadConfig(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := Replay(ctx, cfg, slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))); err != nil {
		t.Fatalf("replay: %v", err)
	}
	if got := due(replicas[1]); !slices.Equal(got, want) {
		t.Errorf("after the replay: %v, want %v", got, want)
	}
}
