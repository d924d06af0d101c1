package checkpointexporter

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"sort"
	"strconv"
	"testing"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/golden"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/report"
	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/state"
	"github.com/buildmon/buildmon/internal/schema"
)

// processorGolden is where the buildprogress processor keeps its expected output: the
// contract between processor and exporter.
const processorGolden = "../../processor/buildprogressprocessor/testdata/golden"

// wantAlert is an alert as the processor's points state it.
type wantAlert struct {
	rule, level, state string
	value              float64
	hasValue           bool
}

// wantBuild is what the processor's points say about one build, read straight from pdata.
type wantBuild struct {
	progress      *float64
	eta           *float64
	phaseProgress map[string]float64
	// resources holds the processor's per-phase aggregates by phase and by metric (with the
	// direction appended for directed ones).
	resources map[string]map[string]float64
	alerts    []wantAlert
}

// contractPoint is one number data point of a resource in the processor's output.
type contractPoint struct {
	metric string
	attrs  pcommon.Map
	v      float64
}

func contractPoints(rm pmetric.ResourceMetrics) []contractPoint {
	var out []contractPoint
	sms := rm.ScopeMetrics()
	for i := 0; i < sms.Len(); i++ {
		ms := sms.At(i).Metrics()
		for j := 0; j < ms.Len(); j++ {
			m := ms.At(j)
			var dps pmetric.NumberDataPointSlice
			switch m.Type() {
			case pmetric.MetricTypeGauge:
				dps = m.Gauge().DataPoints()
			case pmetric.MetricTypeSum:
				dps = m.Sum().DataPoints()
			default:
				continue
			}
			for k := 0; k < dps.Len(); k++ {
				dp := dps.At(k)
				v := dp.DoubleValue()
				if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
					v = float64(dp.IntValue())
				}
				out = append(out, contractPoint{metric: m.Name(), attrs: dp.Attributes(), v: v})
			}
		}
	}
	return out
}

func attr(m pcommon.Map, key string) string {
	if v, ok := m.Get(key); ok {
		return v.AsString()
	}
	return ""
}

// resourceKey names a per-phase resource metric, with its direction if it has one.
func resourceKey(p contractPoint) string {
	if d := attr(p.attrs, schema.AttrDiskDirection); d != "" {
		return p.metric + "/" + d
	}
	if d := attr(p.attrs, schema.AttrNetworkDirection); d != "" {
		return p.metric + "/" + d
	}
	return p.metric
}

// alertsOf returns the alerts a resource's points of 1 show, with their values, and the
// rules that have only points of 0 (ended).
func alertsOf(points []contractPoint) (active []wantAlert, ended []string) {
	values := map[string]float64{}
	for _, p := range points {
		if p.metric == schema.MetricAlertValue {
			values[attr(p.attrs, schema.AttrAlertRule)+"\x00"+attr(p.attrs, schema.AttrAlertLevel)] = p.v
		}
	}
	on := map[string]bool{}
	for _, p := range points {
		if p.metric != schema.MetricAlertActive || p.v != 1 {
			continue
		}
		a := wantAlert{rule: attr(p.attrs, schema.AttrAlertRule), level: attr(p.attrs, schema.AttrAlertLevel), state: attr(p.attrs, schema.AttrAlertState)}
		a.value, a.hasValue = values[a.rule+"\x00"+a.level]
		active = append(active, a)
		on[a.rule] = true
	}
	for _, p := range points {
		if rule := attr(p.attrs, schema.AttrAlertRule); p.metric == schema.MetricAlertActive && p.v == 0 && !on[rule] {
			ended = append(ended, rule)
		}
	}
	sort.Slice(active, func(i, j int) bool { return active[i].rule < active[j].rule })
	return active, ended
}

var phaseResourceMetrics = map[string]bool{
	schema.MetricPhaseCPUAvg: true, schema.MetricPhaseCPUMax: true, schema.MetricPhaseMemoryMax: true,
	schema.MetricPhaseDiskIO: true, schema.MetricPhaseNetworkIO: true, schema.MetricPhaseDiskOperations: true,
}

// merge reads a build resource of the processor's output into w; it reports whether the
// resource carries build.progress (the processor's full view of the build, alerts included).
func (w *wantBuild) merge(points []contractPoint) bool {
	full := false
	for _, p := range points {
		v := p.v
		switch phase := attr(p.attrs, schema.AttrPhase); {
		case p.metric == schema.MetricBuildProgress:
			w.progress, full = &v, true
		case p.metric == schema.MetricBuildETA:
			w.eta = &v
		case p.metric == schema.MetricPhaseProgress:
			w.phaseProgress[phase] = v
		case phaseResourceMetrics[p.metric]:
			if w.resources[phase] == nil {
				w.resources[phase] = map[string]float64{}
			}
			w.resources[phase][resourceKey(p)] = v
		}
	}
	if full {
		w.alerts, _ = alertsOf(points)
	}
	return full
}

// reportResources returns a phase report's resources by the metric they came from.
func reportResources(r report.Resources) map[string]float64 {
	out := map[string]float64{}
	f := func(key string, v *float64) {
		if v != nil {
			out[key] = *v
		}
	}
	i := func(key string, v *int64) {
		if v != nil {
			out[key] = float64(*v)
		}
	}
	f(schema.MetricPhaseCPUAvg, r.CPUUtilizationAvg)
	f(schema.MetricPhaseCPUMax, r.CPUUtilizationMax)
	i(schema.MetricPhaseMemoryMax, r.MemoryUsageMaxBytes)
	i(schema.MetricPhaseDiskIO+"/read", r.DiskReadBytes)
	i(schema.MetricPhaseDiskIO+"/write", r.DiskWriteBytes)
	i(schema.MetricPhaseNetworkIO+"/transmit", r.NetworkTransmitBytes)
	i(schema.MetricPhaseNetworkIO+"/receive", r.NetworkReceiveBytes)
	i(schema.MetricPhaseDiskOperations+"/read", r.DiskReadOperations)
	i(schema.MetricPhaseDiskOperations+"/write", r.DiskWriteOperations)
	return out
}

// TestProcessorGoldenOutputShownUnchanged feeds the processor's golden output into the
// exporter through its factory, batch by batch, and checks that the status API shows the
// processor's progress, ETA, alerts and per-phase resources as they are in the files.
func TestProcessorGoldenOutputShownUnchanged(t *testing.T) {
	cases, err := filepath.Glob(filepath.Join(processorGolden, "*"))
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(cases), 3, "the processor's golden cases")
	seen := map[string]int{}
	for _, dir := range cases {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			h := newHarness(t, testConfig(t.TempDir()), nil).mustStart()
			builds := map[string]*wantBuild{}
			for i := 1; ; i++ {
				path := filepath.Join(dir, "batch"+strconv.Itoa(i)+".yaml")
				md, err := golden.ReadMetrics(path)
				if i > 1 && err != nil {
					break
				}
				require.NoError(t, err)
				h.consume(md)
				checkBatch(t, h, md, builds, seen)
			}
		})
	}
	// The golden files exercise every part of the contract.
	for _, what := range []string{"progress", "eta", "phase progress", "build alert", "host alert", "ended alert", "phase resources"} {
		assert.Positive(t, seen[what], "no golden file has %s", what)
	}
}

func checkBatch(t *testing.T, h *harness, md pmetric.Metrics, builds map[string]*wantBuild, seen map[string]int) {
	t.Helper()
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		rm := rms.At(i)
		points := contractPoints(rm)
		res := rm.Resource().Attributes()
		if id := attr(res, schema.AttrRunID); id != "" {
			w := builds[id]
			if w == nil {
				w = &wantBuild{phaseProgress: map[string]float64{}, resources: map[string]map[string]float64{}}
				builds[id] = w
			}
			if !w.merge(points) {
				continue
			}
			checkBuild(t, h, id, w, seen)
			continue
		}
		if host := attr(res, schema.AttrHostName); host != "" {
			checkHost(t, h, host, points, seen)
		}
	}
}

func checkBuild(t *testing.T, h *harness, id string, w *wantBuild, seen map[string]int) {
	t.Helper()
	st := status(t, h, id)
	assert.True(t, st.Derived, id)
	assert.Empty(t, st.Note, id)
	assert.Equal(t, *w.progress, st.Progress, "%s: build.progress", id)
	seen["progress"]++
	if w.eta != nil {
		require.NotNil(t, st.ETASeconds, "%s: build.eta", id)
		assert.Equal(t, *w.eta, *st.ETASeconds, "%s: build.eta", id)
		seen["eta"]++
	} else {
		assert.Nil(t, st.ETASeconds, "%s: no build.eta, no ETA", id)
	}
	for _, p := range st.Phases {
		if want, ok := w.phaseProgress[p.Name]; ok {
			assert.Equal(t, want, p.Progress, "%s/%s: build.phase.progress", id, p.Name)
			seen["phase progress"]++
		}
	}
	var got []wantAlert
	for _, a := range st.Alerts {
		if a.Scope == state.ScopeBuild {
			got = append(got, wantAlert{rule: a.Rule, level: a.Level, state: a.State, value: a.Value, hasValue: true})
		}
	}
	for i := range w.alerts {
		w.alerts[i].hasValue = true // the status shows 0 for a value the processor did not send
		seen["build alert"]++
	}
	assert.Equal(t, w.alerts, got, "%s: build.alert.active / build.alert.value", id)
	for phase, want := range w.resources {
		code, body := h.get("/v1/builds/" + id + "/phases/" + phase + "/report")
		require.Equal(t, http.StatusOK, code, string(body))
		var r report.Phase
		require.NoError(t, json.Unmarshal(body, &r))
		assert.Equal(t, "processor", r.Resources.Source, "%s/%s", id, phase)
		assert.Equal(t, want, reportResources(r.Resources), "%s/%s: build.phase.* resources", id, phase)
		seen["phase resources"]++
	}
}

func checkHost(t *testing.T, h *harness, host string, points []contractPoint, seen map[string]int) {
	t.Helper()
	active, ended := alertsOf(points)
	if len(active) == 0 && len(ended) == 0 {
		return
	}
	code, body := h.get("/v1/hosts/" + host)
	require.Equal(t, http.StatusOK, code, string(body))
	var hs state.HostStatus
	require.NoError(t, json.Unmarshal(body, &hs))
	shown := map[string]state.AlertStatus{}
	for _, a := range hs.Alerts {
		shown[a.Rule] = a
	}
	for _, want := range active {
		got, ok := shown[want.rule]
		if assert.True(t, ok, "%s: host alert %s", host, want.rule) {
			assert.Equal(t, want.level, got.Level, "%s/%s", host, want.rule)
			assert.Equal(t, want.state, got.State, "%s/%s", host, want.rule)
			if want.hasValue {
				assert.Equal(t, want.value, got.Value, "%s/%s", host, want.rule)
			}
		}
		seen["host alert"]++
	}
	for _, rule := range ended {
		assert.NotContains(t, shown, rule, "%s: the processor's 0 ended %s", host, rule)
		seen["ended alert"]++
	}
}
