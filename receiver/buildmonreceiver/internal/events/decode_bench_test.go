package events

import (
	"bytes"
	"fmt"
	"testing"
	"time"
)

// benchBatch is 1000 step_completed lines, the batch of the receiver's NDJSON benchmark, with
// an id and a time on each, as the build client sends them.
func benchBatch() []byte {
	var body bytes.Buffer
	for i := 0; i < 1000; i++ {
		fmt.Fprintf(&body, `{"id":"e-%d","type":"step_completed","build_id":"bench-%d","phase":"BUILD","time":"2026-11-28T10:00:00.5Z"}`+"\n", i, i%100)
	}
	return body.Bytes()
}

// BenchmarkDecodeNDJSON decodes and validates a batch of 1000 events, without HTTP or registry.
func BenchmarkDecodeNDJSON(b *testing.B) {
	body := benchBatch()
	dst := make([]Event, 0, 1000)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		var err error
		if dst, err = DecodeNDJSON(body, dst[:0], benchOptions); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkDecodeOne decodes and validates one step_completed event.
func BenchmarkDecodeOne(b *testing.B) {
	body := []byte(`{"id":"e-1","type":"step_completed","build_id":"bench-1","phase":"BUILD","time":"2026-11-28T10:00:00.5Z"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeOne(body, benchOptions); err != nil {
			b.Fatal(err)
		}
	}
}

// benchOptions check the events' time against a clock an hour later, with the default skew.
var benchOptions = DecodeOptions{Now: time.Date(2026, 11, 28, 11, 0, 0, 0, time.UTC), MaxClockSkew: 24 * time.Hour}
