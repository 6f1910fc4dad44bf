package stream_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/dedupe"
	"github.com/outreach/outreach/internal/testenv"
	"github.com/outreach/outreach/stream"
)

func record(customer string, at time.Time, code string) dedupe.Record {
	r := dedupe.Record{Kind: dedupe.RecordCheck, Time: at, CustomerID: customer, Role: "dialer", Policy: "default",
		Request: &dedupe.RecordRequest{Channel: contact.Call, Purpose: "sales", Campaign: "autumn"}, Allowed: code == ""}
	if code != "" {
		r.Reasons = []dedupe.RecordReason{{Code: code, EventIDs: []string{"e1"}}}
	}
	return r
}

// TestAuditTrailRoundTrip writes decision records of several customers and
// reads one customer's back from its partition, newest first.
func TestAuditTrailRoundTrip(t *testing.T) {
	t.Parallel()
	k := testenv.NewKafka(t)
	topic := k.Topic(t, "decisions", 6)
	w := stream.NewAuditWriter(stream.AuditConfig{Brokers: k.Brokers, Topic: topic})
	now := time.Now().UTC().Truncate(time.Millisecond)
	var recs []dedupe.Record
	for i := range 30 {
		customer := []string{"c1", "c2", "c3"}[i%3]
		recs = append(recs, record(customer, now.Add(time.Duration(i)*time.Millisecond), []string{"", "recent_contact"}[i%2]))
	}
	if err := w.Record(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	r := &stream.AuditReader{Brokers: k.Brokers, Topic: topic}
	got, partial, err := r.Decisions(ctx, "c2", now.Add(-time.Minute), 5)
	if err != nil || partial {
		t.Fatalf("Decisions = %v, partial %v", err, partial)
	}
	if len(got) != 5 {
		t.Fatalf("got %d records, want 5", len(got))
	}
	for i, rec := range got {
		if rec.CustomerID != "c2" || (i > 0 && rec.Time.After(got[i-1].Time)) {
			t.Errorf("record %d = %s at %v: want c2's, newest first", i, rec.CustomerID, rec.Time)
		}
	}
	if !got[0].Time.Equal(recs[28].Time) || !got[0].Allowed {
		t.Errorf("newest = %+v, want the allowed check made at %v", got[0], recs[28].Time)
	}
	if r := got[1]; r.Allowed || len(r.Reasons) != 1 || r.Reasons[0].Code != "recent_contact" || r.Reasons[0].EventIDs[0] != "e1" {
		t.Errorf("second = %+v, want the blocked check with its evidence", r)
	}
	if none, _, err := r.Decisions(ctx, "c9", now.Add(-time.Minute), 5); err != nil || len(none) != 0 {
		t.Errorf("a customer without decisions: %v, %v", none, err)
	}
	// Since a moment after the newest record, there is nothing to read:
	// the answer is empty and whole, without waiting for records to come
	// until the deadline (Schemathesis's since=.0001ms once took 10s).
	soon, cancelSoon := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelSoon()
	if none, partial, err := r.Decisions(soon, "c2", time.Now(), 5); err != nil || partial || len(none) != 0 {
		t.Errorf("since after the newest record: %d records, partial %v, error %v; want none, whole", len(none), partial, err)
	}
}

// TestAuditTrailWhenKafkaIsDown: with Kafka unreachable, recording never
// blocks and never fails in best-effort mode, and the records dropped are
// counted; in required mode it fails.
func TestAuditTrailWhenKafkaIsDown(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close() // nothing listens there now
	reg := prometheus.NewRegistry()
	w := stream.NewAuditWriter(stream.AuditConfig{Brokers: []string{dead}, Topic: "decisions", Buffer: 10, Registry: reg})
	start := time.Now()
	for i := range 100 {
		if err := w.Record(context.Background(), []dedupe.Record{record("c1", start, "")}); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("recording 100 checks with Kafka down took %v; it must not block", took)
	}
	testenv.Eventually(t, 30*time.Second, "every record is dropped and counted", func() bool {
		return counterValue(reg, "outreach_audit_dropped_total") == 100
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	w.Close(ctx)

	required := stream.NewAuditWriter(stream.AuditConfig{Brokers: []string{dead}, Topic: "decisions", Required: true})
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	if err := required.Record(ctx2, []dedupe.Record{record("c1", start, "")}); contact.ErrorCode(err) != contact.EUnavailable {
		t.Errorf("required mode with Kafka down: %v, want unavailable", err)
	}
	required.Close(ctx2)
}

// counterValue reads a counter of reg by name.
func counterValue(reg *prometheus.Registry, name string) float64 {
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return -1
}
