package contact

import (
	"bytes"
	"errors"
	"strings"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// Text is never repaired: encoding/json would store U+FFFD in place of
// invalid bytes, changing what the sender meant without telling them, so
// invalid UTF-8 is refused before decoding.

// ValidUTF8 checks that s is valid UTF-8; field names it in the error.
func ValidUTF8(field, s string) error {
	if !utf8.ValidString(s) {
		return Invalid(field, "must be valid UTF-8")
	}
	return nil
}

// ValidJSONText checks that every string of the JSON document data, names
// included, is valid UTF-8. The EInvalid error names the value at fault as
// a dotted path ("agent", "offer.id", "checks.2.agent"), or no field when
// it cannot be told, such as in a name or in malformed JSON.
func ValidJSONText(data []byte) error {
	if utf8.Valid(data) {
		return nil
	}
	dec := jsontext.NewDecoder(bytes.NewReader(data))
	for {
		_, err := dec.ReadToken()
		if err == nil {
			continue
		}
		var se *jsontext.SyntacticError
		if errors.As(err, &se) && strings.Contains(se.Err.Error(), "invalid UTF-8") && !isName(dec) {
			return Invalid(JSONPath(se.JSONPointer), "must be valid UTF-8")
		}
		return Invalid("", "the body must be valid UTF-8")
	}
}

// isName reports whether the decoder stopped where an object's name
// belongs, where its pointer names the previous value.
func isName(dec *jsontext.Decoder) bool {
	kind, length := dec.StackIndex(dec.StackDepth())
	return kind == '{' && length%2 == 0
}

// JSONPath turns a JSON pointer such as /checks/2/agent into the dotted
// path checks.2.agent that errors name fields by.
func JSONPath(p jsontext.Pointer) string {
	var parts []string
	for tok := range p.Tokens() {
		parts = append(parts, strings.ToValidUTF8(tok, "\uFFFD"))
	}
	return strings.Join(parts, ".")
}
