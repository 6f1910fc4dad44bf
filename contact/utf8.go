package contact

import "unicode/utf8"

// ValidUTF8 checks that s is valid UTF-8; field names it in the error.
// Text is never repaired: a replacement character stored in place of the
// bytes sent would change what the sender meant without telling them.
func ValidUTF8(field, s string) error {
	if !utf8.ValidString(s) {
		return Invalid(field, "must be valid UTF-8")
	}
	return nil
}
