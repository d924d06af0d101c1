package schema_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/buildmon/buildmon/internal/metadata"
	"github.com/buildmon/buildmon/internal/schema"
)

// constants returns every string constant declared in names.go by name, so that a constant
// added there is checked without being listed here.
func constants(t *testing.T) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "names.go", nil, 0)
	require.NoError(t, err)
	out := map[string]string{}
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				lit, ok := vs.Values[i].(*ast.BasicLit)
				require.True(t, ok, "%s is not a string literal", name.Name)
				v, err := strconv.Unquote(lit.Value)
				require.NoError(t, err)
				out[name.Name] = v
			}
		}
	}
	require.NotEmpty(t, out)
	return out
}

// generatedMetrics returns the metrics of the generated metadata with their data point
// attributes.
func generatedMetrics() map[string][]string {
	out := map[string][]string{}
	v := reflect.ValueOf(metadata.MetricsInfo)
	for i := range v.NumField() {
		f := v.Field(i)
		name := f.FieldByName("Name").String()
		attrs, _ := f.FieldByName("Attributes").Interface().([]string)
		out[name] = attrs
	}
	return out
}

// generatedResourceAttributes returns the resource attributes of the generated metadata.
func generatedResourceAttributes() map[string]bool {
	out := map[string]bool{}
	typ := reflect.TypeFor[metadata.ResourceAttributesConfig]()
	for i := range typ.NumField() {
		out[typ.Field(i).Tag.Get("mapstructure")] = true
	}
	return out
}

// enumValues maps the prefix of a value constant to the enum of the attribute it is a value
// of, in the generated metadata.
var enumValues = []struct {
	prefix, attribute string
	values            []string
}{
	{"Phase", schema.AttrPhaseState, keys(metadata.MapAttributeBuildPhaseState)},
	{"BuildState", schema.AttrBuildState, keys(metadata.MapAttributeBuildState)},
	{"Result", schema.AttrPipelineResult, keys(metadata.MapAttributeCicdPipelineResult)},
	{"CPUMode", schema.AttrCPUMode, keys(metadata.MapAttributeCPUMode)},
	{"MemoryState", schema.AttrMemoryState, keys(metadata.MapAttributeSystemMemoryState)},
	{"Disk", schema.AttrDiskDirection, keys(metadata.MapAttributeDiskIoDirection)},
	{"Network", schema.AttrNetworkDirection, keys(metadata.MapAttributeNetworkIoDirection)},
	{"AlertState", schema.AttrAlertState, keys(metadata.MapAttributeAlertState)},
	{"AlertLevel", schema.AttrAlertLevel, keys(metadata.MapAttributeAlertLevel)},
	{"ETASource", schema.AttrETASource, keys(metadata.MapAttributeBuildEtaSource)},
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestNamesAreTheGeneratedSchema ties every name of this package to the metadata generated
// from metadata.yaml: a rename there, or a typo here, fails.
func TestNamesAreTheGeneratedSchema(t *testing.T) {
	metrics := generatedMetrics()
	resource := generatedResourceAttributes()
	pointAttrs := map[string]bool{}
	for _, attrs := range metrics {
		for _, a := range attrs {
			pointAttrs[a] = true
		}
	}
	seenMetrics := map[string]bool{}
	for name, value := range constants(t) {
		t.Run(name, func(t *testing.T) {
			switch {
			case strings.HasPrefix(name, "Metric"):
				_, ok := metrics[value]
				assert.True(t, ok, "%s = %q is not a metric of metadata.yaml", name, value)
				seenMetrics[value] = true
			case strings.HasPrefix(name, "Attr"):
				assert.True(t, resource[value] || pointAttrs[value],
					"%s = %q is neither a resource attribute nor a data point attribute of metadata.yaml", name, value)
				assert.False(t, resource[value] && pointAttrs[value], "%s = %q is both a resource and a point attribute", name, value)
			default:
				attr, values, ok := enumFor(name)
				if assert.True(t, ok, "%s is neither a metric, an attribute nor a value of an enumerated attribute", name) {
					assert.Contains(t, values, value, "%s = %q is not a value of %s in metadata.yaml", name, value, attr)
				}
			}
		})
	}
	for name := range metrics {
		assert.True(t, seenMetrics[name], "metric %q of metadata.yaml has no constant in this package", name)
	}
}

// enumFor returns the enumerated attribute that a value constant belongs to, by its prefix.
func enumFor(name string) (attribute string, values []string, ok bool) {
	for _, e := range enumValues {
		if strings.HasPrefix(name, e.prefix) {
			return e.attribute, e.values, true
		}
	}
	return "", nil, false
}

// TestAttributesOfTheMetrics pins which attributes the components read on which metric: a
// metric of metadata.yaml that loses or renames one of them fails here.
func TestAttributesOfTheMetrics(t *testing.T) {
	metrics := generatedMetrics()
	for _, tc := range []struct {
		metric string
		attrs  []string
	}{
		{schema.MetricCPUUtilization, []string{schema.AttrCPUMode}},
		{schema.MetricMemoryUsage, []string{schema.AttrMemoryState}},
		{schema.MetricMemoryUtilization, []string{schema.AttrMemoryState}},
		{schema.MetricFilesystemUtilization, []string{schema.AttrMountpoint}},
		{schema.MetricDiskIO, []string{schema.AttrDevice, schema.AttrDiskDirection}},
		{schema.MetricDiskOperations, []string{schema.AttrDevice, schema.AttrDiskDirection}},
		{schema.MetricDiskOperationsRate, []string{schema.AttrDevice, schema.AttrDiskDirection}},
		{schema.MetricNetworkIO, []string{schema.AttrInterface, schema.AttrNetworkDirection}},
		{schema.MetricNetworkIORate, []string{schema.AttrInterface, schema.AttrNetworkDirection}},
		{schema.MetricPhaseStepsTotal, []string{schema.AttrPhase}},
		{schema.MetricPhaseStepsCompleted, []string{schema.AttrPhase}},
		{schema.MetricPhaseState, []string{schema.AttrPhase, schema.AttrPhaseState}},
		{schema.MetricPhaseWeight, []string{schema.AttrPhase}},
		{schema.MetricPhaseStartTime, []string{schema.AttrPhase}},
		{schema.MetricBuildState, []string{schema.AttrBuildState}},
		{schema.MetricBuildResult, []string{schema.AttrPipelineResult}},
		{schema.MetricPhaseProgress, []string{schema.AttrPhase}},
		{schema.MetricAlertActive, []string{schema.AttrAlertRule, schema.AttrAlertLevel, schema.AttrAlertState}},
		{schema.MetricAlertValue, []string{schema.AttrAlertRule, schema.AttrAlertLevel}},
		{schema.MetricPhaseCPUAvg, []string{schema.AttrPhase}},
		{schema.MetricPhaseMemoryMax, []string{schema.AttrPhase}},
		{schema.MetricPhaseDiskIO, []string{schema.AttrPhase, schema.AttrDiskDirection}},
		{schema.MetricPhaseNetworkIO, []string{schema.AttrPhase, schema.AttrNetworkDirection}},
		{schema.MetricPhaseDiskOperations, []string{schema.AttrPhase, schema.AttrDiskDirection}},
	} {
		t.Run(tc.metric, func(t *testing.T) {
			for _, a := range tc.attrs {
				assert.Contains(t, metrics[tc.metric], a)
			}
		})
	}
}

// TestResourceAttributes pins that every build identity attribute is a resource attribute.
func TestResourceAttributes(t *testing.T) {
	resource := generatedResourceAttributes()
	for _, a := range []string{
		schema.AttrHostName, schema.AttrPipelineName, schema.AttrRunID, schema.AttrWorkerID,
		schema.AttrRepositoryURL, schema.AttrRefHeadName, schema.AttrRefHeadRevision,
	} {
		assert.True(t, resource[a], "%q is not a resource attribute of metadata.yaml", a)
	}
	assert.Len(t, resource, 7, "a new resource attribute wants a constant here")
}

// TestEnumFor pins which attribute a value constant is checked against.
func TestEnumFor(t *testing.T) {
	for _, tc := range []struct {
		name, attribute string
		ok              bool
		notValue        string
	}{
		{"PhaseSkipped", schema.AttrPhaseState, true, "aborted"},
		{"BuildStateFinished", schema.AttrBuildState, true, "done"},
		{"ResultSuccess", schema.AttrPipelineResult, true, "succeeded"},
		{"CPUModeBusy", schema.AttrCPUMode, true, "user"},
		{"MemoryStateUsed", schema.AttrMemoryState, true, "slab"},
		{"DiskRead", schema.AttrDiskDirection, true, "transmit"},
		{"NetworkReceive", schema.AttrNetworkDirection, true, "read"},
		{"AlertStateFiring", schema.AttrAlertState, true, "resolved"},
		{"Unknown", "", false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			attr, values, ok := enumFor(tc.name)
			assert.Equal(t, tc.ok, ok)
			assert.Equal(t, tc.attribute, attr)
			if ok {
				assert.NotEmpty(t, values)
				assert.NotContains(t, values, tc.notValue)
			}
		})
	}
}
