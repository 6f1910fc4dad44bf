package http

import (
	"strconv"
	"testing"
	"time"
)

// TestLimitersStayBounded sends from more client addresses than there may
// be limiters, and wants the map bounded and busy callers still limited.
func TestLimitersStayBounded(t *testing.T) {
	l := newLimiters(RateLimits{RoleAdmin: {PerSecond: 1, Burst: 1}}, nil)
	now := time.Unix(1_000_000, 0)
	for i := range 3 * maxLimiters {
		if ok, _ := l.allow("addr 10.0."+strconv.Itoa(i), RoleAdmin, now); !ok {
			t.Fatalf("a new caller was refused")
		}
		if n := len(l.by); n > maxLimiters {
			t.Fatalf("%d limiters, want at most %d", n, maxLimiters)
		}
	}
	// A bucket that has refilled is forgotten first: it is as good as new.
	// Callers were idle for an hour when the busy one and a new one come.
	l = newLimiters(RateLimits{RoleAdmin: {PerSecond: 1, Burst: 1}}, nil)
	for i := range maxLimiters - 1 {
		l.allow("idle "+strconv.Itoa(i), RoleAdmin, now.Add(-time.Hour))
	}
	l.allow("busy", RoleAdmin, now)
	l.allow("new", RoleAdmin, now) // the map is full: the idle are swept
	if ok, wait := l.allow("busy", RoleAdmin, now); ok || wait <= 0 {
		t.Errorf("the busy caller was forgotten: allowed %v, wait %v", ok, wait)
	}
}
