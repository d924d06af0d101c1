package events

import (
	stdjson "encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/buildmon/buildmon/internal/wire"
)

// requireField decodes body (a batch when batch is set) and requires a 400 naming field
// whose message contains msg.
func requireField(t *testing.T, body string, batch bool, opts DecodeOptions, field, msg string) {
	t.Helper()
	var err error
	if batch {
		_, err = DecodeNDJSON([]byte(body), nil, opts)
	} else {
		_, err = DecodeOne([]byte(body), opts)
	}
	require.Error(t, err, body)
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, KindInvalid, e.Kind)
	assert.Equal(t, field, e.Field, err.Error())
	assert.Contains(t, err.Error(), msg)
}

// TestDecodeStrictJSON: no event is read differently by buildmon and by another parser, be it
// one where the last duplicate wins, one that matches names case-insensitively, one that reads
// several values from a line, or one that takes null as absent.
func TestDecodeStrictJSON(t *testing.T) {
	const step = `"type":"step_completed","build_id":"b1","phase":"BUILD"`
	const start = `"type":"build_started","build_id":"b1","pipeline":"p"`
	tests := []struct {
		name, body string
		batch      bool
		field, msg string
	}{
		{"duplicate type", `{` + step + `,"type":"build_finished"}`, false, "type", "twice"},
		{"duplicate count", `{` + step + `,"count":1,"count":1000}`, false, "count", "twice"},
		{"duplicate build id", `{` + step + `,"build_id":"b2"}`, false, "build_id", "twice"},
		{"duplicate in attributes", `{` + start + `,"attributes":{"host":"a","host":"b"}}`, false, "attributes.host", "twice"},
		{"duplicate in a phase", `{` + start + `,"phases":[{"name":"A","steps":1,"steps":2}]}`, false, "phases[0].steps", "twice"},
		{"duplicate with escapes", `{` + step + `,"typ\u0065":"build_finished"}`, false, "type", "twice"},
		{"duplicate in a batch", `{` + step + `}` + "\n" + `{` + step + `,"phase":"TEST"}`, true, "phase", "twice"},
		{"case variant of type", `{` + step + `,"Type":"build_finished"}`, false, "Type", "case-sensitive: type"},
		{"case variant alone", `{"TYPE":"step_completed","build_id":"b1","phase":"BUILD"}`, false, "TYPE", "case-sensitive: type"},
		{"case variant of count", `{` + step + `,"Count":5}`, false, "Count", "case-sensitive: count"},
		{"case variant in attributes", `{` + start + `,"attributes":{"Host":"a"}}`, false, "attributes.Host", "case-sensitive: host"},
		{"case variant in a phase", `{` + start + `,"phases":[{"Name":"A"}]}`, false, "phases[0].Name", "case-sensitive: name"},
		{"two objects on a line", `{` + step + `}{` + step + `}`, true, "", "each line of a batch holds exactly one"},
		{"two objects on a line with a space", `{` + step + `} {` + step + `}`, true, "", "each line of a batch holds exactly one"},
		{"two objects on the second line", `{` + step + `}` + "\n" + `{` + step + "}\t{" + step + `}`, true, "", "event 1: trailing"},
		{"two objects in one body", `{` + step + `} {` + step + `}`, false, "", "the body holds exactly one"},
		{"an object over two lines", `{` + step + ",\n" + `"count":2}`, true, "", "each line of a batch holds one whole event object"},
		{"an object and a number", `{` + step + `} 1`, true, "", "trailing"},
		{"no-break space before an object", "\u00a0{" + step + `}`, true, "", "malformed JSON"},
		{"null count", `{` + step + `,"count":null}`, false, "count", "must not be null"},
		{"null count in a batch", `{` + step + `,"count":null}`, true, "count", "must not be null"},
		{"null event", `null`, true, "", "JSON object"},
		{"unknown name with an escape sequence", `{` + step + `,"\u001b[2J":1}`, false, `"\x1b[2J"`, "unknown field"},
		{"string for a number", `{` + step + `,"count":"\u009b2J"}`, false, "count", "must be an integer, got JSON string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			requireField(t, tt.body, tt.batch, DecodeOptions{}, tt.field, tt.msg)
		})
	}

	// "null" inside a string is no null.
	evs, err := DecodeNDJSON([]byte(`{`+step+`,"step":"null"}`+"\n"+`{`+step+`,"id":"nullnull"}`), nil, DecodeOptions{})
	require.NoError(t, err)
	require.Len(t, evs, 2)
	assert.Equal(t, "null", evs[0].Step)

	// The line breaks JSON allows around an object still work, and so does CRLF.
	evs, err = DecodeNDJSON([]byte(" {"+step+"}\t\r\n\r\n{"+step+",\"count\":2} \n"), nil, DecodeOptions{})
	require.NoError(t, err)
	require.Len(t, evs, 2)
	assert.Equal(t, int64(2), evs[1].Count)
}

// jsonNames are the member names of a wire struct, from its tags.
func jsonNames(t reflect.Type) []string {
	var names []string
	for f := range t.Fields() {
		names = append(names, strings.Split(f.Tag.Get("json"), ",")[0])
	}
	return names
}

// TestNullIsRejectedEverywhere: null is no valid value of any field, at any depth; the lists
// behind the case-sensitivity hint are the wire format's names.
func TestNullIsRejectedEverywhere(t *testing.T) {
	require.ElementsMatch(t, jsonNames(reflect.TypeFor[wire.Event]()), wireNames)
	require.ElementsMatch(t, jsonNames(reflect.TypeFor[Attributes]()), attributeNames)
	require.ElementsMatch(t, jsonNames(reflect.TypeFor[PhasePlan]()), phaseNames)
	const start = `"type":"build_started","build_id":"b1","pipeline":"p"`
	for _, name := range wireNames {
		body := `{"type":"build_started","` + name + `":null}`
		if name == "type" {
			body = `{"build_id":"b1","type":null}`
		}
		requireField(t, body, false, DecodeOptions{}, name, "must not be null")
	}
	for _, name := range attributeNames {
		requireField(t, `{`+start+`,"attributes":{"`+name+`":null}}`, false, DecodeOptions{}, "attributes."+name, "must not be null")
	}
	for _, name := range phaseNames {
		body := `{` + start + `,"phases":[{"name":"A","` + name + `":null}]}`
		if name == "name" {
			body = `{` + start + `,"phases":[{"name":null}]}`
		}
		requireField(t, body, false, DecodeOptions{}, "phases[0]."+name, "must not be null")
	}
	requireField(t, `{`+start+`,"phases":[{"name":"A"},null]}`, false, DecodeOptions{}, "phases[1]", "must not be null")
	requireField(t, `{`+start+`,"phases":[{"name":"A","milestones":["m",null]}]}`, false, DecodeOptions{}, "phases[0].milestones[1]", "must not be null")
}

// TestControlCharacters: no name field takes a control character (C0, DEL, C1) a terminal
// would act on; message takes tab and newline.
func TestControlCharacters(t *testing.T) {
	fields := []struct {
		field string
		event func(v string) string // the event with v, JSON-quoted, in the field
	}{
		{"id", func(v string) string { return `{"id":` + v + `,"type":"phase_started","build_id":"b1","phase":"A"}` }},
		{"type", func(v string) string { return `{"type":` + v + `,"build_id":"b1","phase":"A"}` }},
		{"build_id", func(v string) string { return `{"type":"phase_started","build_id":` + v + `,"phase":"A"}` }},
		{"pipeline", func(v string) string { return `{"type":"build_started","build_id":"b1","pipeline":` + v + `}` }},
		{"phase", func(v string) string { return `{"type":"phase_started","build_id":"b1","phase":` + v + `}` }},
		{"step", func(v string) string { return `{"type":"step_completed","build_id":"b1","phase":"A","step":` + v + `}` }},
		{"step", func(v string) string {
			return `{"type":"milestone_reached","build_id":"b1","phase":"A","step":` + v + `}`
		}},
		{"phases[0].name", func(v string) string {
			return `{"type":"build_started","build_id":"b1","pipeline":"p","phases":[{"name":` + v + `}]}`
		}},
		{"phases[0].milestones[1]", func(v string) string {
			return `{"type":"build_started","build_id":"b1","pipeline":"p","phases":[{"name":"A","milestones":["m",` + v + `]}]}`
		}},
		{"result", func(v string) string { return `{"type":"build_finished","build_id":"b1","result":` + v + `}` }},
	}
	for _, a := range attributeNames {
		fields = append(fields, struct {
			field string
			event func(v string) string
		}{"attributes." + a, func(v string) string {
			return `{"type":"build_started","build_id":"b1","pipeline":"p","attributes":{"` + a + `":` + v + `}}`
		}})
	}
	message := func(typ string) func(v string) string {
		return func(v string) string {
			return `{"type":"` + typ + `","build_id":"b1","phase":"A","result":"failure","message":` + v + `}`
		}
	}
	// Raw in the JSON string where JSON allows it, escaped where it does not.
	controls := []string{`\u0000`, `\u001b]0;owned\u0007`, `\u001b[2J`, `\r`, `\u007f`, "\u007f", `\u0085`, "\u0085", `\u009b31m`, "\u009b", `\u0080`, `\u009f`}
	for _, f := range fields {
		for _, c := range append([]string{`\t`, `\n`}, controls...) {
			requireField(t, f.event(`"A`+c+`B"`), false, DecodeOptions{}, f.field, "")
		}
		// Printable non-ASCII around the C1 block still passes where the field's rule allows it.
		if f.field != "type" && f.field != "build_id" && f.field != "phase" && f.field != "phases[0].name" && f.field != "result" {
			for _, ok := range []string{"é", "\u00a0", "\u00bf", "\u0100", "日本"} {
				_, err := DecodeOne([]byte(f.event(`"A`+ok+`B"`)), DecodeOptions{})
				require.NoError(t, err, "%s with %q", f.field, ok)
			}
		}
	}
	for _, typ := range []string{"phase_failed", "build_finished"} {
		for _, c := range controls {
			requireField(t, message(typ)(`"A`+c+`B"`), false, DecodeOptions{}, "message", "only tab and newline are allowed")
		}
		_, err := DecodeOne([]byte(message(typ)(`"line 1\n\tline 2"`)), DecodeOptions{})
		require.NoError(t, err)
	}
	// The error says which character and where.
	requireField(t, fields[0].event(`"ab\u001b"`), false, DecodeOptions{}, "id", "U+001B at byte 2")
	requireField(t, fields[0].event(`"ab\u009b"`), false, DecodeOptions{}, "id", "U+009B at byte 2")
}

// TestDecodeTime: a time is accepted only if every part of the system can hold it (storage
// writes it as JSON, pdata as nanoseconds since 1970, durations as time.Duration) and it lies
// within max_clock_skew of the collector's clock.
func TestDecodeTime(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	skewed := DecodeOptions{Now: now, MaxClockSkew: 24 * time.Hour}
	unbounded := DecodeOptions{Now: now}
	tests := []struct {
		time string
		opts DecodeOptions
		msg  string // "" accepted
	}{
		{"2026-12-01T10:00:00Z", skewed, ""},
		{"2026-12-01T15:30:00.123456789+05:30", skewed, ""},
		{"2026-12-01T10:00:00+23:59", skewed, ""},
		{"2026-12-01T10:00:00-23:59", skewed, ""},
		{"2026-12-02T10:00:00Z", skewed, ""}, // exactly max_clock_skew ahead
		{"2026-11-30T10:00:00Z", skewed, ""}, // and behind
		{"2026-12-01T10:00:00+24:00", skewed, "UTC offset"},
		{"2026-12-01T10:00:00-24:00", skewed, "UTC offset"},
		{"2026-12-01T10:00:00+24:59", skewed, "UTC offset"},
		{"2026-12-01T10:00:00+99:00", unbounded, "RFC 3339"},
		{"2026-12-02T10:00:00.000000001Z", skewed, "max_clock_skew"},
		{"2026-11-30T09:59:59Z", skewed, "max_clock_skew"},
		{"2100-01-01T00:00:00Z", skewed, "max_clock_skew"},
		{"2000-01-01T00:00:00Z", skewed, "max_clock_skew"},
		{"2100-01-01T00:00:00Z", unbounded, ""},
		{"1970-01-01T00:00:00Z", unbounded, ""},
		{"2261-12-31T23:59:59.999999999Z", unbounded, ""},
		{"0001-01-01T00:00:00Z", unbounded, "between 1970"},
		{"0001-01-01T00:00:00Z", skewed, "between 1970"},
		{"1969-12-31T23:59:59.999999999Z", unbounded, "between 1970"},
		{"1677-09-21T00:12:44Z", unbounded, "between 1970"},
		{"2262-01-01T00:00:00Z", unbounded, "between 1970"},
		{"2262-04-11T23:47:16.854775808Z", unbounded, "between 1970"},
		{"9999-12-31T23:59:59Z", unbounded, "between 1970"},
		{"1970-01-01T01:00:00+02:00", unbounded, "between 1970"}, // 1969 in UTC
		{"now", unbounded, "RFC 3339"},
		{"2026-12-01 10:00:00Z", unbounded, "RFC 3339"},
		{"2026-12-01T10:00:60Z", unbounded, "RFC 3339"},
		{"", unbounded, ""}, // absent: the receiver's clock
	}
	for _, tt := range tests {
		t.Run(tt.time, func(t *testing.T) {
			body := `{"type":"phase_started","build_id":"b1","phase":"A","time":"` + tt.time + `"}`
			if tt.msg != "" {
				requireField(t, body, false, tt.opts, "time", tt.msg)
				requireField(t, body, true, tt.opts, "time", tt.msg)
				return
			}
			ev, err := DecodeOne([]byte(body), tt.opts)
			require.NoError(t, err)
			if tt.time == "" {
				assert.True(t, ev.Time.IsZero())
				return
			}
			requireRepresentable(t, ev.Time)
		})
	}
}

// requireRepresentable checks what broke on times that got in: storage's JSON, pdata's
// nanoseconds and durations from the start of the range.
func requireRepresentable(t *testing.T, ts time.Time) {
	t.Helper()
	b, err := stdjson.Marshal(ts)
	require.NoError(t, err, "time %v", ts)
	var back time.Time
	require.NoError(t, stdjson.Unmarshal(b, &back))
	require.True(t, back.Equal(ts))
	require.GreaterOrEqual(t, ts.UnixNano(), int64(0))
	require.True(t, time.Unix(0, ts.UnixNano()).Equal(ts), "nanoseconds since 1970 overflow: %v", ts)
	require.Positive(t, ts.Sub(minTime)+1, "duration overflow: %v", ts)
}

// TestDecodesWhatTheClientEncodes: events encoded from wire.Event with encoding/json, as
// the build client sends them, pass the strict decoder unchanged, one by one and as a batch.
func TestDecodesWhatTheClientEncodes(t *testing.T) {
	weight, three := 0.25, int64(3)
	at := time.Date(2025, 3, 1, 12, 0, 0, 500_000_000, time.UTC)
	tests := []struct {
		in   wire.Event
		want Event
	}{
		{
			wire.Event{
				ID: "s", Type: wire.EventBuildStarted, BuildID: "b1", Time: at.Format(time.RFC3339Nano), Pipeline: "p",
				Attributes: &wire.Attributes{Repository: "r", Branch: "main", Revision: "abc", Worker: "w", Host: "h"},
				Phases:     []wire.PhasePlan{{Name: "BUILD", Steps: 4, Weight: &weight}, {Name: "TEST", Milestones: []string{"unit", "e2e"}}},
			},
			Event{
				ID: "s", Type: TypeBuildStarted, BuildID: "b1", Time: at, Pipeline: "p", Count: 1,
				Attributes: Attributes{Repository: "r", Branch: "main", Revision: "abc", Worker: "w", Host: "h"},
				Phases:     []PhasePlan{{Name: "BUILD", Steps: 4, Weight: &weight}, {Name: "TEST", Milestones: []string{"unit", "e2e"}}},
			},
		},
		{wire.Event{ID: "p", Type: wire.EventPhaseStarted, BuildID: "b1", Phase: "BUILD"}, Event{ID: "p", Type: TypePhaseStarted, BuildID: "b1", Phase: "BUILD", Count: 1}},
		{wire.Event{ID: "c", Type: wire.EventStepCompleted, BuildID: "b1", Phase: "BUILD", Step: "compile", Count: &three}, Event{ID: "c", Type: TypeStepCompleted, BuildID: "b1", Phase: "BUILD", Step: "compile", Count: 3}},
		{wire.Event{ID: "m", Type: wire.EventMilestoneReached, BuildID: "b1", Phase: "TEST", Step: "unit"}, Event{ID: "m", Type: TypeMilestoneReached, BuildID: "b1", Phase: "TEST", Step: "unit", Count: 1}},
		{wire.Event{ID: "f", Type: wire.EventPhaseFailed, BuildID: "b1", Phase: "TEST", Message: "2 failed\n\tsee log"}, Event{ID: "f", Type: TypePhaseFailed, BuildID: "b1", Phase: "TEST", Message: "2 failed\n\tsee log", Count: 1}},
		{wire.Event{ID: "k", Type: wire.EventPhaseSkipped, BuildID: "b1", Phase: "CLEANUP"}, Event{ID: "k", Type: TypePhaseSkipped, BuildID: "b1", Phase: "CLEANUP", Count: 1}},
		{wire.Event{ID: "d", Type: wire.EventPhaseCompleted, BuildID: "b1", Phase: "BUILD"}, Event{ID: "d", Type: TypePhaseCompleted, BuildID: "b1", Phase: "BUILD", Count: 1}},
		{wire.Event{ID: "e", Type: wire.EventBuildFinished, BuildID: "b1", Result: wire.ResultCancellation}, Event{ID: "e", Type: TypeBuildFinished, BuildID: "b1", Result: "cancellation", Count: 1}},
	}
	var batch []byte
	var want []Event
	for _, tc := range tests {
		body, err := stdjson.Marshal(tc.in)
		require.NoError(t, err)
		got, err := DecodeOne(body, DecodeOptions{})
		require.NoError(t, err, string(body))
		assert.Equal(t, tc.want, got, string(body))
		batch = append(append(batch, body...), '\n')
		want = append(want, tc.want)
	}
	got, err := DecodeNDJSON(batch, nil, DecodeOptions{})
	require.NoError(t, err)
	assert.Equal(t, want, got)
}

// TestTypeNamesAreTheWireEventTypes: the decoder knows every event type of the contract and
// no other, and the results it takes are the contract's.
func TestTypeNamesAreTheWireEventTypes(t *testing.T) {
	var names []string
	for name := range typeNames {
		names = append(names, name)
	}
	assert.ElementsMatch(t, wire.EventTypes, names)
	for _, name := range wire.EventTypes {
		assert.Equal(t, name, typeNames[name].String())
	}
	var rs []string
	for r := range results {
		rs = append(rs, r)
	}
	assert.ElementsMatch(t, wire.Results, rs)
}

// Type.Lifecycle is the contract's split of the event types.
func TestLifecycleIsTheWireSplit(t *testing.T) {
	for _, name := range wire.LifecycleEventTypes {
		assert.True(t, typeNames[name].Lifecycle(), name)
	}
	for _, name := range wire.ProgressEventTypes {
		assert.False(t, typeNames[name].Lifecycle(), name)
	}
	assert.False(t, TypeUnknown.Lifecycle())
}
