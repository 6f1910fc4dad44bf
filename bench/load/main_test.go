package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outreach/outreach/contact"
)

func TestParseFlagsRejectsUnboundedRuns(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // in the error; empty means no error
	}{
		{"defaults", nil, ""},
		{"five minutes", []string{"-duration", "5m"}, ""},
		{"too long", []string{"-duration", "5m1s"}, "-duration"},
		{"no time", []string{"-duration", "0s"}, "-duration"},
		{"no concurrency", []string{"-concurrency", "0"}, "-concurrency"},
		{"too many in flight", []string{"-concurrency", "1000"}, "-concurrency"},
		{"no customers", []string{"-customers", "0"}, "-customers"},
		{"unknown mode", []string{"-mode", "check"}, "-mode"},
		{"not http", []string{"-addr", "redis://127.0.0.1:6379"}, "-addr"},
		{"two-line key", []string{"-key", "a\nb"}, "-key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseFlags(tt.args, io.Discard)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("parseFlags(%q) = %v, want no error", tt.args, err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("parseFlags(%q) = %v, want an error about %s", tt.args, err, tt.want)
			}
		})
	}
}

func TestRequireLoopback(t *testing.T) {
	for host, ok := range map[string]bool{
		"127.0.0.1": true, "::1": true, "localhost": true, "127.0.0.2": true,
		"10.0.0.1": false, "192.0.2.7": false, "0.0.0.0": false, "::": false,
	} {
		err := requireLoopback(context.Background(), host)
		if ok != (err == nil) {
			t.Errorf("requireLoopback(%q) = %v, want ok %v", host, err, ok)
		}
	}
}

func TestRunRefusesNonLoopback(t *testing.T) {
	cfg, err := parseFlags([]string{"-addr", "http://192.0.2.7:8080", "-duration", "1s"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := run(context.Background(), cfg, io.Discard); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("run against 192.0.2.7 = %v, want a loopback error", err)
	}
}

func TestEventsModePostsValidBatches(t *testing.T) {
	var posts, bad atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var raws []json.RawMessage
		if r.Method != http.MethodPost || r.URL.Path != "/v1/events" || r.Header.Get("Authorization") != "Bearer k1" ||
			json.NewDecoder(r.Body).Decode(&raws) != nil || len(raws) != eventsPerPost {
			bad.Add(1)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		for _, raw := range raws {
			if _, err := contact.Decode(raw, contact.Defaults{}); err != nil {
				bad.Add(1)
				w.WriteHeader(http.StatusBadRequest)
				return
			}
		}
		posts.Add(1)
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	cfg, err := parseFlags([]string{"-addr", srv.URL, "-duration", "300ms", "-concurrency", "2", "-key", "k1"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	ok, err := run(context.Background(), cfg, &out)
	if err != nil || !ok {
		t.Fatalf("run = %v, %v\n%s", ok, err, out.String())
	}
	if posts.Load() == 0 || bad.Load() != 0 {
		t.Errorf("%d good posts, %d bad; want some good and no bad\n%s", posts.Load(), bad.Load(), out.String())
	}
	if !strings.Contains(out.String(), "errors: 0") {
		t.Errorf("summary does not say errors: 0:\n%s", out.String())
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h histogram
	for i := 1; i <= 100; i++ {
		h.add(time.Duration(i) * time.Millisecond)
	}
	for _, tt := range []struct {
		q    float64
		want time.Duration
	}{{.50, 50 * time.Millisecond}, {.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond}} {
		got := h.quantile(tt.q)
		if got < tt.want || float64(got) > float64(tt.want)*1.021 {
			t.Errorf("quantile(%v) = %v, want %v within 2%%", tt.q, got, tt.want)
		}
	}
}
