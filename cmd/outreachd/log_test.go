package main

import (
	"bytes"
	"encoding/json"
	"testing"
)

// TestLogsKeepOffsets: the redacting backstop blanks phone numbers, not
// the Kafka offsets and partitions of dead-letter logs, which are long
// digit runs too.
func TestLogsKeepOffsets(t *testing.T) {
	var buf bytes.Buffer
	log := NewLogger(&buf, Config{LogFormat: "json"})
	// As stream's consumer logs a dead-lettered message.
	log.Warn("message dead-lettered", "topic", "outreach.events", "reason", "agent: must be valid UTF-8",
		"partition", "12", "offset", "123456789012")
	log.Warn("the kafka reader got an unknown error reading partition 3 of outreach.events at offset 9876543210: i/o timeout")
	log.Warn("dial 0047912345678 failed", "offset", "+47 915 55 501")
	var lines []map[string]any
	for _, l := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, m)
	}
	if got := lines[0]["offset"]; got != "123456789012" {
		t.Errorf("offset = %v, want 123456789012: %s", got, buf.String())
	}
	if got := lines[0]["partition"]; got != "12" {
		t.Errorf("partition = %v, want 12", got)
	}
	if got, want := lines[1]["msg"], "the kafka reader got an unknown error reading partition 3 of outreach.events at offset 9876543210: i/o timeout"; got != want {
		t.Errorf("msg = %v, want %v", got, want)
	}
	if got := lines[2]["msg"]; got != "dial [redacted] failed" {
		t.Errorf("msg = %v: a phone number was not redacted", got)
	}
	if got := lines[2]["offset"]; got != "[redacted]" {
		t.Errorf("an offset that is a phone number = %v, want it redacted", got)
	}
}
