package redis

// IndexKeys returns the keys of a team's follow-up index, for tests that
// lose them on purpose.
func (s *Store) IndexKeys(team string) []string {
	var keys []string
	for b := range FollowUpShards {
		keys = append(keys, s.shardKey(team, b), s.shardKey(team, b)+":d")
	}
	return append(keys, s.teamsKey())
}

// SlotEpochTag returns the hash tag of the epoch key in the slot of a hash
// tag's keys, for tests that reset one slot on purpose.
func SlotEpochTag(tag string) string { return slotTags()[keySlot(tag)] }
