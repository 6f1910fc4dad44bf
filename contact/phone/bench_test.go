package phone_test

import (
	"strconv"
	"testing"

	"github.com/outreach/outreach/contact/phone"
)

// BenchmarkNormalize reads numbers as a call list spells them: 1,000
// Norwegian mobiles, each written three ways (E.164, spaced international,
// spaced national), so that a number comes back in another spelling. Its
// baseline, e164-seen, reads numbers already normalized and seen: the
// cache's hit, the least Normalize can do.
func BenchmarkNormalize(b *testing.B) {
	var spelled, e164 []string
	for i := range 1000 {
		n := strconv.Itoa(90000000 + 7*i)
		spelled = append(spelled, "+47"+n, "+47 "+n[:3]+" "+n[3:5]+" "+n[5:], n[:3]+" "+n[3:5]+" "+n[5:])
		e164 = append(e164, "+47"+n)
	}
	for _, bc := range []struct {
		name string
		in   []string
	}{{"spelled", spelled}, {"e164-seen", e164}} {
		b.Run(bc.name, func(b *testing.B) {
			p, err := phone.NewParser("NO")
			if err != nil {
				b.Fatal(err)
			}
			i := 0
			for b.Loop() {
				if _, err := p.Normalize(bc.in[i%len(bc.in)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
