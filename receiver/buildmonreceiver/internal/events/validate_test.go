package events

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The hand-written checks of build ids and phase names accept exactly what their documented
// patterns accept.
func TestValidNamesMatchTheirPatterns(t *testing.T) {
	buildID := regexp.MustCompile(buildIDPattern)
	phase := regexp.MustCompile(phasePattern)
	cases := []string{
		"", "a", "A", "0", "-a", ".a", "_a", ":a", "a-b.c_d:e", "a b", "a/b", "a\nb", "é",
		strings.Repeat("a", 64), strings.Repeat("a", 65), strings.Repeat("a", 128), strings.Repeat("a", 129),
		"BUILD", "build_2", "Build-x", "1st", "a.b", "a:b",
	}
	rng := rand.New(rand.NewPCG(1, 2))
	const alphabet = "aZ09._:-/ é\x00"
	for range 2000 {
		var b strings.Builder
		for range rng.IntN(8) {
			b.WriteByte(alphabet[rng.IntN(len(alphabet))])
		}
		cases = append(cases, b.String())
	}
	for _, s := range cases {
		assert.Equal(t, buildID.MatchString(s), validBuildID(s), "build id %q", s)
		assert.Equal(t, phase.MatchString(s), validPhase(s), "phase %q", s)
	}
}

func TestTypeNames(t *testing.T) {
	assert.Len(t, typeNames, 8)
	for name, typ := range typeNames {
		assert.Equal(t, name, typ.String())
	}
	assert.Equal(t, "unknown", TypeUnknown.String())
	assert.Equal(t, "unknown", Type(200).String())
}

// A valid event is decoded field by field; a build_started without phases gets the default
// plan; count defaults to 1.
func TestDecodeFields(t *testing.T) {
	ev, err := DecodeOne([]byte(`{"id":"e-1","type":"build_started","build_id":"web-1","pipeline":"web",`+
		`"attributes":{"repository":"r","branch":"b","revision":"v","worker":"w","host":"h"},"message":"hi\tthere"}`), DecodeOptions{})
	require.NoError(t, err)
	assert.Equal(t, "e-1", ev.ID)
	assert.Equal(t, TypeBuildStarted, ev.Type)
	assert.Equal(t, "web-1", ev.BuildID)
	assert.Equal(t, "web", ev.Pipeline)
	assert.Equal(t, Attributes{Repository: "r", Branch: "b", Revision: "v", Worker: "w", Host: "h"}, ev.Attributes)
	assert.Equal(t, "hi\tthere", ev.Message)
	assert.True(t, ev.Time.IsZero())
	names := make([]string, len(ev.Phases))
	for i, p := range ev.Phases {
		names[i] = p.Name
	}
	assert.Equal(t, DefaultPhases, names)

	ev, err = DecodeOne([]byte(`{"type":"milestone_reached","build_id":"b","phase":"TEST","step":"unit"}`), DecodeOptions{})
	require.NoError(t, err)
	assert.Equal(t, TypeMilestoneReached, ev.Type)
	assert.Equal(t, "TEST", ev.Phase)
	assert.Equal(t, "unit", ev.Step)
	assert.Equal(t, int64(1), ev.Count)

	ev, err = DecodeOne([]byte(`{"type":"build_started","build_id":"b","pipeline":"p","phases":[{"name":"A","steps":3,"weight":0},{"name":"B","milestones":["x","y"]}]}`), DecodeOptions{})
	require.NoError(t, err)
	require.Len(t, ev.Phases, 2)
	assert.Equal(t, int64(3), ev.Phases[0].Steps)
	require.NotNil(t, ev.Phases[0].Weight)
	assert.Equal(t, 0.0, *ev.Phases[0].Weight, "a zero weight is a weight")
	assert.Equal(t, []string{"x", "y"}, ev.Phases[1].Milestones)
}

// Every size limit of an event is enforced at its bound and names the field.
func TestDecodeLimits(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	start := func(extra string) string {
		return `{"type":"build_started","build_id":"b","pipeline":"p"` + extra + `}`
	}
	phases := func(n int) string {
		ps := make([]string, n)
		for i := range ps {
			ps[i] = fmt.Sprintf(`{"name":"P%d"}`, i)
		}
		return `,"phases":[` + strings.Join(ps, ",") + `]`
	}
	milestones := func(n int) string {
		ms := make([]string, n)
		for i := range ms {
			ms[i] = fmt.Sprintf(`"m%d"`, i)
		}
		return `,"phases":[{"name":"A","milestones":[` + strings.Join(ms, ",") + `]}]`
	}
	tests := []struct {
		name, body string
		field      string // "-": accepted
	}{
		{"id at the limit", `{"id":"` + long(maxIDLen) + `","type":"phase_started","build_id":"b","phase":"A"}`, "-"},
		{"id beyond", `{"id":"` + long(maxIDLen+1) + `","type":"phase_started","build_id":"b","phase":"A"}`, "id"},
		{"build id at the limit", `{"type":"phase_started","build_id":"` + long(128) + `","phase":"A"}`, "-"},
		{"build id beyond", `{"type":"phase_started","build_id":"` + long(129) + `","phase":"A"}`, "build_id"},
		{"message at the limit", `{"type":"phase_started","build_id":"b","phase":"A","message":"` + long(maxMessageLen) + `"}`, "-"},
		{"message beyond", `{"type":"phase_started","build_id":"b","phase":"A","message":"` + long(maxMessageLen+1) + `"}`, "message"},
		{"pipeline at the limit", `{"type":"build_started","build_id":"b","pipeline":"` + long(maxPipelineLen) + `"}`, "-"},
		{"pipeline beyond", `{"type":"build_started","build_id":"b","pipeline":"` + long(maxPipelineLen+1) + `"}`, "pipeline"},
		{"attribute at the limit", start(`,"attributes":{"worker":"` + long(maxTextLen) + `"}`), "-"},
		{"attribute beyond", start(`,"attributes":{"revision":"` + long(maxTextLen+1) + `"}`), "attributes.revision"},
		{"phases at the limit", start(phases(MaxPhases)), "-"},
		{"phases beyond", start(phases(MaxPhases + 1)), "phases"},
		{"milestones at the limit", start(milestones(MaxMilestones)), "-"},
		{"milestones beyond", start(milestones(MaxMilestones + 1)), "phases[0].milestones"},
		{"milestone name at the limit", start(`,"phases":[{"name":"A","milestones":["` + long(maxMilestoneName) + `"]}]`), "-"},
		{"milestone name beyond", start(`,"phases":[{"name":"A","milestones":["x","` + long(maxMilestoneName+1) + `"]}]`), "phases[0].milestones[1]"},
		{"empty milestone name", start(`,"phases":[{"name":"A","milestones":[""]}]`), "phases[0].milestones[0]"},
		{"milestone twice", start(`,"phases":[{"name":"A","milestones":["x","y","x"]}]`), "phases[0].milestones[2]"},
		{"steps at the limit", start(fmt.Sprintf(`,"phases":[{"name":"A","steps":%d}]`, MaxSteps)), "-"},
		{"steps beyond", start(fmt.Sprintf(`,"phases":[{"name":"B"},{"name":"A","steps":%d}]`, MaxSteps+1)), "phases[1].steps"},
		{"bad phase name in the plan", start(`,"phases":[{"name":"A"},{"name":"no spaces"}]`), "phases[1].name"},
		{"count at the limit", fmt.Sprintf(`{"type":"step_completed","build_id":"b","phase":"A","count":%d}`, MaxCount), "-"},
		{"count beyond", fmt.Sprintf(`{"type":"step_completed","build_id":"b","phase":"A","count":%d}`, MaxCount+1), "count"},
		{"negative count", `{"type":"step_completed","build_id":"b","phase":"A","count":-3}`, "count"},
		{"step name at the limit", `{"type":"step_completed","build_id":"b","phase":"A","step":"` + long(maxMilestoneName) + `"}`, "-"},
		{"step name beyond", `{"type":"step_completed","build_id":"b","phase":"A","step":"` + long(maxMilestoneName+1) + `"}`, "step"},
		{"every result", `{"type":"build_finished","build_id":"b","result":"cancellation"}`, "-"},
		{"no result", `{"type":"build_finished","build_id":"b"}`, "result"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeOne([]byte(tt.body), DecodeOptions{})
			if tt.field == "-" {
				require.NoError(t, err)
				return
			}
			var e *Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, KindInvalid, e.Kind)
			assert.Equal(t, tt.field, e.Field, e.Error())
		})
	}
}

// An unknown type is echoed at most 64 bytes long.
func TestUnknownTypeIsTruncated(t *testing.T) {
	_, err := DecodeOne([]byte(`{"type":"`+strings.Repeat("x", 500)+`","build_id":"b"}`), DecodeOptions{})
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, "type", e.Field)
	assert.Contains(t, e.Message, strings.Repeat("x", 64)+"…")
	assert.NotContains(t, e.Message, strings.Repeat("x", 65))
	assert.Equal(t, "short", truncate("short"))
}
