package redis_test

import (
	"context"
	"strings"
	"testing"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/contact/redis"
)

// TestReleaseClaimTokenForm checks the two ways a token can fail: one not
// of the form is EInvalid; one of the form that names no customer is a
// token no claim holds.
func TestReleaseClaimTokenForm(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, redis.Options{})
	hex := strings.Repeat("0", 32)
	for _, tok := range []string{"bad", "c1", "YzE." + strings.Repeat("0", 31), "Yzë." + hex, ""} {
		if _, err := s.ReleaseClaim(context.Background(), tok); contact.ErrorCode(err) != contact.EInvalid {
			t.Errorf("ReleaseClaim(%q) = %v, want EInvalid", tok, err)
		}
	}
	// "AA" is a NUL byte, "A" alone no base64: of the form, but no customer.
	for _, tok := range []string{"AA." + hex, "AAAAA." + hex, "Yzk5." + hex} {
		if held, err := s.ReleaseClaim(context.Background(), tok); held || err != nil {
			t.Errorf("ReleaseClaim(%q) = %v, %v; want not held", tok, held, err)
		}
	}
}
