package http

import (
	"runtime"
	"strings"
	"testing"
)

// TestWideRowRefusedBeforeItIsBuilt reads a row of 32,768 empty fields: it
// is refused at its 513th field, before the CSV parser builds a record of
// 32,768 strings (over 1 MiB of string headers and field positions).
func TestWideRowRefusedBeforeItIsBuilt(t *testing.T) {
	// Not parallel: it measures what the process allocates.
	list := "customer_id\n" + strings.Repeat(",", 32767) + "\n"
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	cr, err := newCSVReader(strings.NewReader(list))
	if err != nil {
		t.Fatal(err)
	}
	_, err = cr.Read()
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "line 2: a row of more than 512 fields") {
		t.Errorf("got %v, want line 2 refused for its fields", err)
	}
	// The readers' buffers (64 KiB and 4 KiB) and at most 513 fields.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 192<<10 {
		t.Errorf("%d KiB allocated to refuse the row; want under 192 KiB", alloc>>10)
	}
}
