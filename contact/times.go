package contact

import "time"

// MaxYearsAhead is how far after now a time may lie, in years. Further
// than that is a typo or an attack, and a time near the end of year 9999
// plus a cooldown or a claim's TTL would not encode as JSON any more.
const MaxYearsAhead = 100

// CheckTime checks that t lies from 1970 on, in UTC, and at most
// MaxYearsAhead years after now; field names it in the error. Times that
// pass encode as RFC 3339 in JSON, even after the policy's longest
// windows are added to them.
func CheckTime(field string, t time.Time) error {
	u := t.UTC()
	if u.Year() < 1970 {
		return Invalid(field, "must be from the year 1970 on; got %s", u.Format(time.RFC3339))
	}
	if limit := time.Now().AddDate(MaxYearsAhead, 0, 0); u.After(limit) {
		return Invalid(field, "must be at most %d years from now (before %s)", MaxYearsAhead, limit.UTC().Format(time.DateOnly))
	}
	return nil
}
