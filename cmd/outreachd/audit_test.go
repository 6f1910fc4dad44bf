package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/outreach/outreach/dedupe"
	"github.com/outreach/outreach/internal/testenv"
)

// TestAuditTrailAndErasureEndToEnd drives the real binary: every live check
// leaves a decision record that GET /v1/customers/{id}/decisions reads back
// with its evidence; DELETE /v1/customers/{id} erases the customer but for a
// bare opt-out, and records who asked.
func TestAuditTrailAndErasureEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	env, _, k := testEnv(t)
	addr := startBinary(t, env)
	base := "http://" + addr
	ago := func(d time.Duration) string { return time.Now().UTC().Add(-d).Format(time.RFC3339) }
	k.Produce(t, env["OUTREACH_KAFKA_TOPICS"], "anna",
		fmt.Appendf(nil, `{"id":"k1","type":"contact","customer_id":"anna","at":%q,"channel":"call","agent":"a.jones","team":"retention","campaign":"winback"}`, ago(2*time.Hour)),
		fmt.Appendf(nil, `{"id":"o1","type":"opt_out","customer_id":"anna","at":%q,"channel":"sms","reason":"too many texts"}`, ago(time.Hour)))
	testenv.Eventually(t, 30*time.Second, "anna's events are applied", func() bool {
		_, b := call(t, "GET", base+"/v1/customers/anna/contacts", agentKey, "")
		return strings.Contains(string(b), `"o1"`)
	})
	resp, b := call(t, "POST", base+"/v1/check/batch", dialerKey,
		`{"checks":[{"customer_id":"anna","channel":"call","campaign":"autumn","team":"sales"},{"customer_id":"anna","channel":"email"}]}`)
	if resp.StatusCode != 200 {
		t.Fatalf("batch: %d %s", resp.StatusCode, b)
	}

	var got struct{ Decisions []dedupe.Record }
	testenv.Eventually(t, 30*time.Second, "two decisions are in the trail", func() bool {
		_, b := call(t, "GET", base+"/v1/customers/anna/decisions", agentKey, "")
		got.Decisions = nil
		json.Unmarshal(b, &got)
		return len(got.Decisions) >= 2
	})
	var blocked *dedupe.Record
	for i, r := range got.Decisions {
		if r.Request != nil && r.Request.Channel == "call" {
			blocked = &got.Decisions[i]
		}
	}
	if blocked == nil || blocked.Allowed || blocked.Role != "dialer" || blocked.KeyID == "" || blocked.Policy != "default" ||
		len(blocked.Reasons) != 1 || blocked.Reasons[0].EventIDs[0] != "k1" || blocked.Reasons[0].Team != "retention" {
		t.Errorf("the call's record = %+v", blocked)
	}

	// Erase anna: the history goes, the opt-out stays bare.
	resp, b = call(t, "DELETE", base+"/v1/customers/anna", adminKey, "")
	if resp.StatusCode != 202 {
		t.Fatalf("DELETE: %d %s", resp.StatusCode, b)
	}
	testenv.Eventually(t, 30*time.Second, "anna is erased", func() bool {
		_, b := call(t, "GET", base+"/v1/customers/anna/contacts", agentKey, "")
		return strings.Contains(string(b), `"events":[]`)
	})
	_, b = call(t, "GET", base+"/v1/customers/anna/contacts", agentKey, "")
	if strings.Contains(string(b), "too many texts") || strings.Contains(string(b), "a.jones") || !strings.Contains(string(b), `"opt_outs":{"sms"`) {
		t.Errorf("after the erasure: %s; want only a bare opt-out of sms", b)
	}
	resp, b = call(t, "POST", base+"/v1/check", dialerKey, `{"customer_id":"anna","channel":"sms"}`)
	if resp.StatusCode != 200 || !strings.Contains(string(b), "opted_out") {
		t.Errorf("a text after the erasure: %d %s, want opted_out", resp.StatusCode, b)
	}
	testenv.Eventually(t, 30*time.Second, "the erasure is in the trail", func() bool {
		_, b := call(t, "GET", base+"/v1/customers/anna/decisions", agentKey, "")
		return strings.Contains(string(b), `"kind":"erasure"`) && strings.Contains(string(b), `"role":"admin"`)
	})
	if resp, _ := call(t, "DELETE", base+"/v1/customers/anna", dialerKey, ""); resp.StatusCode != 403 {
		t.Errorf("a dialer erasing: %d, want 403", resp.StatusCode)
	}
}
