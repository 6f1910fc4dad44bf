package http

import "strings"

// A scrubbed list goes back to people who open it in a spreadsheet, which
// runs a cell that begins with a formula character (CSV injection). As
// OWASP recommends, the scrub writes such a cell with a ' before it, which
// spreadsheets show as text and do not display.

// spreadsheetSafe returns v escaped for a spreadsheet: a cell that begins
// with =, @, a tab or a carriage return gets a ' before it, and so does
// one that begins with + or - unless it is a plain number or a phone
// number (digits, spaces, -, ., ( and )), which a dialer needs unchanged.
func spreadsheetSafe(v string) string {
	if formula(v) {
		return "'" + v
	}
	return v
}

// spreadsheetValue undoes spreadsheetSafe: it strips the ' of a cell that
// spreadsheetSafe escaped, so that a scrubbed list scrubs again as the same
// list. A cell that spreadsheetSafe could not have written ('abc, '+47 915
// 55 501) is kept as it is.
func spreadsheetValue(v string) string {
	if len(v) > 1 && v[0] == '\'' && formula(v[1:]) {
		return v[1:]
	}
	return v
}

// formula reports whether a spreadsheet could run v.
func formula(v string) bool {
	if v == "" {
		return false
	}
	switch v[0] {
	case '=', '@', '\t', '\r':
		return true
	case '+', '-':
		return !phoneOrNumber(v[1:])
	}
	return false
}

// phoneOrNumber reports whether v is made of digits, spaces, -, ., ( and
// ), with at least one digit.
func phoneOrNumber(v string) bool {
	return strings.ContainsAny(v, "0123456789") && strings.Trim(v, "0123456789 -.()") == ""
}
