package contact

import (
	"strconv"
	"strings"
	"sync"

	"golang.org/x/text/currency"
)

// Money is an amount in the minor units of an ISO 4217 currency: cents for
// EUR, øre for NOK, yen for JPY. Amounts of different currencies are never
// compared. The zero Money is not valid; see [ParseMoney].
type Money struct {
	Minor    int64  // never negative
	Currency string // an ISO 4217 code in upper case, such as EUR
}

// DefaultCurrency is the currency of a price written without one, unless the
// deployment configures another (OUTREACH_DEFAULT_CURRENCY).
const DefaultCurrency = "EUR"

// maxMinorDigits bounds an amount: 18 digits always fit an int64.
const maxMinorDigits = 18

// maxExponent bounds the exponent of an amount written as 4.5e1, so that a
// hostile exponent cannot make parsing slow.
const maxExponent = 30

// scales caches each currency's number of decimals.
var scales sync.Map // string → int

// CurrencyScale returns the number of decimals of an ISO 4217 currency, as
// golang.org/x/text/currency knows it, and an EInvalid error naming field for
// a code that is not a currency in use. Codes must be upper case; XXX (no
// currency) is refused.
func CurrencyScale(field, code string) (int, error) {
	if v, ok := scales.Load(code); ok {
		return v.(int), nil
	}
	u, err := currency.ParseISO(code)
	if err != nil || u.String() != code || code == "XXX" {
		return 0, Invalid(field, "must be an ISO 4217 code in upper case, such as EUR; got %q", Clip(code))
	}
	scale, _ := currency.Standard.Rounding(u)
	scales.Store(code, scale)
	return scale, nil
}

// ValidCurrency checks an ISO 4217 code; field names it in the error.
func ValidCurrency(field, code string) error {
	_, err := CurrencyScale(field, code)
	return err
}

// ParseMoney reads a decimal amount such as "39.90", "45" or "4.5e1" in the
// currency code, exactly: it refuses negative amounts, amounts of more than
// 18 digits and more decimals than the currency has ("39.999" EUR). Errors
// are EInvalid, naming field (or currencyField for the code).
func ParseMoney(field, amount, currencyField, code string) (Money, error) {
	scale, err := CurrencyScale(currencyField, code)
	if err != nil {
		return Money{}, err
	}
	minor, err := parseMinor(amount, scale)
	if err != nil {
		return Money{}, Invalid(field, "%s; got %q", err.Error(), Clip(amount))
	}
	return Money{Minor: minor, Currency: code}, nil
}

type moneyError string

func (e moneyError) Error() string { return string(e) }

const errAmount = moneyError("must be a number, 0 or more, such as 49.90")

// parseMinor converts a JSON number to minor units of a currency with scale
// decimals.
func parseMinor(s string, scale int) (int64, error) {
	if strings.HasPrefix(s, "-") {
		return 0, errAmount
	}
	mant, exp, hasExp := strings.Cut(s, "e")
	if !hasExp {
		mant, exp, hasExp = strings.Cut(s, "E")
	}
	e := 0
	if hasExp {
		n, err := strconv.Atoi(strings.TrimPrefix(exp, "+"))
		if err != nil || n < -maxExponent || n > maxExponent || exp == "" {
			return 0, errAmount
		}
		e = n
	}
	whole, frac, _ := strings.Cut(mant, ".")
	if whole == "" || !digits(whole) || !digits(frac) || (strings.Contains(mant, ".") && frac == "") {
		return 0, errAmount
	}
	ds := strings.TrimLeft(whole+frac, "0")
	shift := scale + e - len(frac) // the amount in minor units is ds × 10^shift
	if shift < 0 {
		if -shift > len(ds) {
			if strings.Trim(ds, "0") != "" {
				return 0, moneyError("has more decimals than its currency allows (" + strconv.Itoa(scale) + ")")
			}
			ds = ""
		} else {
			cut := ds[len(ds)+shift:]
			if strings.Trim(cut, "0") != "" {
				return 0, moneyError("has more decimals than its currency allows (" + strconv.Itoa(scale) + ")")
			}
			ds = ds[:len(ds)+shift]
		}
	} else if ds != "" {
		ds += strings.Repeat("0", shift)
	}
	if len(ds) > maxMinorDigits {
		return 0, moneyError("is too large")
	}
	if ds == "" {
		return 0, nil
	}
	return strconv.ParseInt(ds, 10, 64)
}

func digits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Decimal writes the amount with its currency's decimals: "39.90", "1200".
func (m Money) Decimal() string {
	scale, err := CurrencyScale("currency", m.Currency)
	if err != nil {
		scale = 2 // not reached for a Money built by ParseMoney
	}
	s := strconv.FormatInt(m.Minor, 10)
	if scale == 0 {
		return s
	}
	if len(s) <= scale {
		s = strings.Repeat("0", scale-len(s)+1) + s
	}
	return s[:len(s)-scale] + "." + s[len(s)-scale:]
}

// String writes the amount and its currency: "39.90 EUR".
func (m Money) String() string { return m.Decimal() + " " + m.Currency }

// Less reports whether m is less than o, and whether the two can be
// compared at all: amounts of different currencies cannot.
func (m Money) Less(o Money) (less, comparable bool) {
	if m.Currency != o.Currency {
		return false, false
	}
	return m.Minor < o.Minor, true
}
