package redis

import "testing"

// TestKeySlot checks the CRC16 of Redis Cluster against the vector of its
// specification and the tags' table against keySlot.
func TestKeySlot(t *testing.T) {
	if got := keySlot("123456789"); got != 12739 {
		t.Errorf("keySlot(123456789) = %d, want 12739", got)
	}
	tags := slotTags()
	for _, slot := range []int{0, 1, 5460, 5461, 10922, 16383} {
		if got := keySlot(tags[slot]); got != slot {
			t.Errorf("the tag of slot %d, %q, hashes to %d", slot, tags[slot], got)
		}
	}
}
