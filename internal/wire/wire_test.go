package wire

import (
	"bytes"
	"encoding/json"
	"flag"
	"go/build"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files from goldenValues")

func count(n int64) *int64 { return &n }

func statusError(msg string) Error { return Error{Error: msg} }

// TestGolden marshals every value and compares it with the bytes the APIs sent before this
// package existed.
func TestGolden(t *testing.T) {
	for name, v := range goldenValues() {
		t.Run(name, func(t *testing.T) {
			got, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join("testdata", name+".json")
			if *update {
				if err := os.WriteFile(path, got, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s:\n got %s\nwant %s", name, got, want)
			}
		})
	}
}

// TestGoldenDecodes decodes every golden file back into its type: what one side writes, the
// other reads unchanged.
func TestGoldenDecodes(t *testing.T) {
	for name, v := range goldenValues() {
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			p := reflect.New(reflect.TypeOf(v))
			if err := json.Unmarshal(b, p.Interface()); err != nil {
				t.Fatal(err)
			}
			if got := p.Elem().Interface(); !reflect.DeepEqual(got, v) {
				t.Errorf("%s decodes to\n%#v\nwant\n%#v", name, got, v)
			}
		})
	}
}

// TestEveryGoldenFileHasAValue keeps testdata and goldenValues in step.
func TestEveryGoldenFileHasAValue(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, strings.TrimSuffix(filepath.Base(f), ".json"))
	}
	var want []string
	for name := range goldenValues() {
		want = append(want, name)
	}
	sort.Strings(want)
	if !slices.Equal(names, want) {
		t.Errorf("golden files %v, values %v", names, want)
	}
}

// TestAlwaysSent lists, per type, the members a zero value still sends: the rest are left
// out when empty. A client may rely on the former being present.
func TestAlwaysSent(t *testing.T) {
	tests := []struct {
		v    any
		want []string
	}{
		{Event{}, []string{"build_id", "id", "type"}},
		{Attributes{}, nil},
		{PhasePlan{}, []string{"name"}},
		{Accepted{}, []string{"accepted", "duplicates"}},
		{Error{}, []string{"error"}},
		{BuildStatus{}, []string{
			"active_operations", "alerts", "derived", "duration_seconds", "eta_seconds", "host",
			"host_resources", "id", "paused", "phase", "phases", "pipeline", "progress",
			"progress_percent", "reports", "result", "state", "updated_at",
		}},
		{PhaseStatus{}, []string{"duration_seconds", "name", "progress", "state", "steps_completed", "steps_total"}},
		{AlertStatus{}, []string{"level", "rule", "scope", "state", "value"}},
		{HostResources{}, []string{
			"cpu_utilization", "disk_read_operations_per_second", "disk_write_operations_per_second",
			"filesystem_utilization", "memory_total_bytes", "memory_used_bytes", "memory_utilization",
			"network_receive_bytes_per_second", "network_transmit_bytes_per_second",
		}},
		{ReportLinks{}, nil},
		{BuildSummary{}, []string{"derived", "host", "id", "paused", "phase", "pipeline", "progress", "result", "state", "updated_at"}},
		{BuildList{}, []string{"builds", "count"}},
		{HostStatus{}, []string{"alerts", "builds", "name", "resources", "updated_at"}},
		{HostList{}, []string{"count", "hosts"}},
	}
	for _, tc := range tests {
		t.Run(reflect.TypeOf(tc.v).Name(), func(t *testing.T) {
			b, err := json.Marshal(tc.v)
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]json.RawMessage
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			var got []string
			for k := range m {
				got = append(got, k)
			}
			sort.Strings(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("zero %T sends %v, want %v", tc.v, got, tc.want)
			}
		})
	}
}

var memberName = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)

// TestMembersAreNamed checks that every field of every type of the contract has an explicit
// snake_case JSON name, used once per object: a field without a tag would be sent under its
// Go name, which no API documents.
func TestMembersAreNamed(t *testing.T) {
	types := []any{
		Event{}, Attributes{}, PhasePlan{}, Accepted{}, Error{}, BuildStatus{}, PhaseStatus{},
		AlertStatus{}, HostResources{}, ReportLinks{}, BuildSummary{}, BuildList{}, HostStatus{}, HostList{},
	}
	for _, v := range types {
		typ := reflect.TypeOf(v)
		seen := map[string]bool{}
		for f := range typ.Fields() {
			tag, ok := f.Tag.Lookup("json")
			if !ok {
				t.Errorf("%s.%s has no json tag", typ.Name(), f.Name)
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			if !memberName.MatchString(name) {
				t.Errorf("%s.%s is named %q, not snake_case", typ.Name(), f.Name, name)
			}
			if opts != "" && opts != "omitempty" {
				t.Errorf("%s.%s has options %q; the contract uses only omitempty", typ.Name(), f.Name, opts)
			}
			if seen[name] {
				t.Errorf("%s has %q twice", typ.Name(), name)
			}
			seen[name] = true
		}
	}
}

func TestEnumerations(t *testing.T) {
	tests := []struct {
		name string
		got  []string
		want []string
	}{
		{"event types", EventTypes, []string{
			"build_started", "phase_started", "step_completed", "milestone_reached",
			"phase_completed", "phase_failed", "phase_skipped", "build_finished",
		}},
		{"lifecycle event types", LifecycleEventTypes, []string{
			"build_started", "phase_started", "phase_completed", "phase_failed", "phase_skipped", "build_finished",
		}},
		{"progress event types", ProgressEventTypes, []string{"step_completed", "milestone_reached"}},
		{"results", Results, []string{"success", "failure", "error", "timeout", "cancellation"}},
		{"phase states", PhaseStates, []string{"pending", "running", "completed", "failed", "skipped"}},
		{"build states", []string{BuildRunning, BuildFinished}, []string{"running", "finished"}},
		{"alert scopes", []string{ScopeBuild, ScopeHost}, []string{"build", "host"}},
		{"ETA sources", []string{ETASourceHistory, ETASourceRate, ETASourceBlend}, []string{"history", "rate", "blend"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !slices.Equal(tc.got, tc.want) {
				t.Errorf("%v, want %v", tc.got, tc.want)
			}
		})
	}
}

// TestEventCountAbsentIsNotZero: absent means one step, 0 is sent as 0 (and refused by the
// receiver), so the two must not collapse into one encoding.
func TestEventCountAbsentIsNotZero(t *testing.T) {
	tests := []struct {
		count *int64
		want  string
	}{
		{nil, `{"id":"","type":"step_completed","build_id":"b","phase":"A"}`},
		{count(0), `{"id":"","type":"step_completed","build_id":"b","phase":"A","count":0}`},
		{count(5), `{"id":"","type":"step_completed","build_id":"b","phase":"A","count":5}`},
	}
	for _, tc := range tests {
		b, err := json.Marshal(Event{Type: EventStepCompleted, BuildID: "b", Phase: "A", Count: tc.count})
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tc.want {
			t.Errorf("got %s, want %s", b, tc.want)
		}
		var back Event
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if (back.Count == nil) != (tc.count == nil) || (back.Count != nil && *back.Count != *tc.count) {
			t.Errorf("%s decodes to count %v", b, back.Count)
		}
	}
}

// TestStandardLibraryOnly keeps the package importable by any client: it and its tests
// import nothing outside the standard library.
func TestStandardLibraryOnly(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	imports := slices.Concat(pkg.Imports, pkg.TestImports, pkg.XTestImports)
	for _, imp := range imports {
		first, _, _ := strings.Cut(imp, "/")
		if strings.Contains(first, ".") {
			t.Errorf("imports %s, which is not in the standard library", imp)
		}
	}
	if !slices.Contains(pkg.TestImports, "encoding/json") {
		t.Errorf("test imports %v were not read", pkg.TestImports)
	}
}

// TestErrorIndexZeroIsSent: the first event of a batch has index 0, which must not be left
// out as if the error were not about a batch.
func TestErrorIndexZeroIsSent(t *testing.T) {
	zero, two := 0, 2
	tests := []struct {
		e    Error
		want string
	}{
		{Error{Error: "bad"}, `{"error":"bad"}`},
		{Error{Error: "bad", Field: "type"}, `{"error":"bad","field":"type"}`},
		{Error{Error: "bad", Index: &zero}, `{"error":"bad","index":0}`},
		{Error{Error: "bad", Field: "phase", Index: &two}, `{"error":"bad","field":"phase","index":2}`},
	}
	for _, tc := range tests {
		b, err := json.Marshal(tc.e)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tc.want {
			t.Errorf("got %s, want %s", b, tc.want)
		}
	}
}

// TestNullsOfTheStatusAPI: the members the status API documents as null while unknown decode
// to nil, and a number to a value.
func TestNullsOfTheStatusAPI(t *testing.T) {
	var st BuildStatus
	if err := json.Unmarshal([]byte(`{"eta_seconds":null,"host_resources":null}`), &st); err != nil {
		t.Fatal(err)
	}
	if st.ETASeconds != nil || st.HostResources != nil {
		t.Errorf("nulls decode to %v, %v", st.ETASeconds, st.HostResources)
	}
	if err := json.Unmarshal([]byte(`{"eta_seconds":0,"host_resources":{"cpu_utilization":null,"memory_used_bytes":0}}`), &st); err != nil {
		t.Fatal(err)
	}
	if st.ETASeconds == nil || *st.ETASeconds != 0 {
		t.Errorf("eta_seconds 0 decodes to %v", st.ETASeconds)
	}
	if r := st.HostResources; r == nil || r.CPUUtilization != nil || r.MemoryUsedBytes == nil || *r.MemoryUsedBytes != 0 {
		t.Errorf("host_resources decodes to %+v", r)
	}
}

// Every event type is a lifecycle or a progress event, never both.
func TestLifecycleAndProgressPartitionEventTypes(t *testing.T) {
	all := append(slices.Clone(LifecycleEventTypes), ProgressEventTypes...)
	slices.Sort(all)
	want := slices.Clone(EventTypes)
	slices.Sort(want)
	if !slices.Equal(all, want) {
		t.Errorf("lifecycle + progress = %v, want %v", all, want)
	}
}
