package redis

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/outreach/outreach/contact"
)

// releaseScript deletes a claim only if it still holds the token given:
// a claim that expired and was taken by someone else stays.
var releaseScript = goredis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v and string.find(v, ARGV[1], 1, true) == 1 then
  return redis.call('DEL', KEYS[1])
end
return 0`)

// ReleaseClaim ends the claim with the given token. It reports whether the
// claim was still held; EInvalid for a token that is not one of ours,
// EUnavailable when Redis is down.
func (s *Store) ReleaseClaim(ctx context.Context, token string) (bool, error) {
	if !tokenForm.MatchString(token) {
		return false, contact.Invalid("token", "is not a claim token")
	}
	customerID, err := tokenCustomer(token)
	if err != nil {
		return false, nil // of the form, but naming no customer: no claim holds it
	}
	prefix := `{"token":` + jsonString(token)
	n, err := releaseScript.Run(ctx, s.rdb, []string{s.claimKey(customerID)}, prefix).Int()
	if err != nil {
		return false, contact.Unavailable("redis", fmt.Errorf("store: unable to release a claim: %w", err))
	}
	return n == 1, nil
}

// A claim token is the customer id, base64url-encoded, a dot, and 128
// random bits in hex, so that a release finds the claim key from the token
// alone.
func newToken(customerID string) string {
	b := make([]byte, 16)
	rand.Read(b) // never fails
	return base64.RawURLEncoding.EncodeToString([]byte(customerID)) + "." + hex.EncodeToString(b)
}

// tokenForm is the form of a claim token (the OpenAPI document's
// ClaimToken): base64url without padding of a customer id of 1 to 128
// characters (up to 512 bytes), a dot, 32 hex digits.
var tokenForm = regexp.MustCompile(`^[A-Za-z0-9_-]{2,683}\.[0-9a-fA-F]{32}$`)

func tokenCustomer(token string) (string, error) {
	enc, random, ok := strings.Cut(token, ".")
	id, err := base64.RawURLEncoding.DecodeString(enc)
	if !ok || err != nil || len(random) != 32 || contact.ValidCustomerID(string(id)) != nil {
		return "", contact.Invalid("token", "is not a claim token")
	}
	if _, err := hex.DecodeString(random); err != nil {
		return "", contact.Invalid("token", "is not a claim token")
	}
	return string(id), nil
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
