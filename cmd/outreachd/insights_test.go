package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/outreach/outreach/dedupe/insight"
	"github.com/outreach/outreach/internal/testenv"
)

// insightsReport reads GET /v1/insights with query as the admin.
func insightsReport(t *testing.T, base, query string) insight.Report {
	t.Helper()
	resp, b := call(t, "GET", base+"/v1/insights?"+query, adminKey, "")
	if resp.StatusCode != 200 {
		t.Fatalf("GET /v1/insights?%s: %d %s", query, resp.StatusCode, b)
	}
	var r insight.Report
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// waitInsightChecks waits until the insights count n checks today, then a
// little longer for any double count to show, and returns the report.
func waitInsightChecks(t *testing.T, base string, n int64) insight.Report {
	t.Helper()
	testenv.Eventually(t, 60*time.Second, fmt.Sprintf("%d checks in /v1/insights", n), func() bool {
		return insightsReport(t, base, "from=24h").Checks >= n
	})
	time.Sleep(500 * time.Millisecond)
	r := insightsReport(t, base, "from=24h&by=campaign")
	if r.Checks != n {
		t.Errorf("/v1/insights counts %d checks, want exactly %d", r.Checks, n)
	}
	return r
}

// TestInsightsEndToEnd drives two real binaries in one insights group over
// the same Redis and Kafka: live checks go through the audit trail to the
// decisions topic, each is counted once across the replicas, and a replay
// of the whole topic by a reset group counts nothing twice.
func TestInsightsEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	env, _, k := testEnv(t)
	bin := testenv.Build(t, ".")
	first := testenv.StartDaemon(t, bin, envList(env)...)
	b := testenv.StartDaemon(t, bin, envList(env)...)
	a := first.URL
	k.Produce(t, env["OUTREACH_KAFKA_TOPICS"], "anna",
		fmt.Appendf(nil, `{"id":"r1","type":"contact","customer_id":"anna","at":%q,"channel":"call","agent":"a.jones","team":"retention","campaign":"winback"}`,
			time.Now().UTC().Add(-time.Hour).Format(time.RFC3339)))
	testenv.Eventually(t, 30*time.Second, "anna's contact is applied", func() bool {
		_, body := call(t, "GET", a+"/v1/customers/anna/contacts", agentKey, "")
		return strings.Contains(string(body), `"r1"`)
	})

	// 12 checks through each replica: anna's calls are blocked by the
	// retention team's call, emails are allowed.
	const perReplica = 12
	for _, base := range []string{a, b.URL} {
		for i := range perReplica {
			channel := map[bool]string{true: "call", false: "email"}[i%2 == 0]
			resp, body := call(t, "POST", base+"/v1/check", dialerKey,
				fmt.Sprintf(`{"customer_id":"anna","channel":%q,"campaign":"autumn-upgrade","team":"telesales"}`, channel))
			if resp.StatusCode != 200 {
				t.Fatalf("check: %d %s", resp.StatusCode, body)
			}
		}
	}
	r := waitInsightChecks(t, a, 2*perReplica)
	if len(r.Groups) != 1 || r.Groups[0].Key != "autumn-upgrade" || r.Groups[0].Blocked != perReplica ||
		len(r.Groups[0].Collisions) != 1 || r.Groups[0].Collisions[0].AgainstTeam != "retention" || r.Groups[0].Collisions[0].Mostly != "recent_contact" {
		t.Errorf("by campaign: %+v", r.Groups)
	}
	if r := insightsReport(t, b.URL, "from=24h&by=team"); r.Groups[0].Key != "telesales" || *r.Groups[0].BlockedShare != 0.5 {
		t.Errorf("by team, from the other replica: %+v", r.Groups)
	}
	if resp, _ := call(t, "GET", a+"/v1/insights?by=agent", adminKey, ""); resp.StatusCode != 400 {
		t.Errorf("by=agent: %d, want 400", resp.StatusCode)
	}
	if resp, _ := call(t, "GET", a+"/v1/insights", agentKey, ""); resp.StatusCode != 403 {
		t.Errorf("an agent's key: %d, want 403", resp.StatusCode)
	}

	// Stop both, reset the insights group, and start again: the topic is
	// read from its earliest offset, and nothing counts twice.
	b.Stop()
	first.Stop()
	cl := &kafka.Client{Addr: kafka.TCP(k.Brokers...)}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	testenv.Eventually(t, 30*time.Second, "the insights group is deleted", func() bool {
		resp, err := cl.DeleteGroups(ctx, &kafka.DeleteGroupsRequest{GroupIDs: []string{env["OUTREACH_INSIGHTS_GROUP"]}})
		return err == nil && resp.Errors[env["OUTREACH_INSIGHTS_GROUP"]] == nil
	})
	c := testenv.StartDaemon(t, bin, envList(env)...)
	testenv.Eventually(t, 60*time.Second, "the replay has read the decisions topic again", func() bool {
		n, err := metric(c.URL, `outreach_insights_records_total{result="duplicate"}`)
		return err == nil && n >= 2*perReplica
	})
	waitInsightChecks(t, c.URL, 2*perReplica)
}

func envList(env map[string]string) []string {
	var kvs []string
	for k, v := range env {
		kvs = append(kvs, k+"="+v)
	}
	return kvs
}
