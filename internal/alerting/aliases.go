package alerting

import (
	"strings"
	"time"

	"github.com/buildmon/buildmon/internal/schema"
)

// MetricClass is one of the seed's aggregation classes (§2.2), which set a rule's default
// window and expected interval.
type MetricClass uint8

// Metric classes.
const (
	ClassSystemStats   MetricClass = iota // 1 s updates, 5 min window
	ClassResourceUsage                    // 5 s updates, 1 min window
	ClassPerformance                      // 10 s updates, 15 min window
)

var classDefaults = [...]struct{ window, interval time.Duration }{
	ClassSystemStats:   {5 * time.Minute, time.Second},
	ClassResourceUsage: {time.Minute, 5 * time.Second},
	ClassPerformance:   {15 * time.Minute, 10 * time.Second},
}

// Defaults returns the class's default window and expected interval between values.
func (c MetricClass) Defaults() (window, interval time.Duration) {
	d := classDefaults[c]
	return d.window, d.interval
}

// ClassOf returns the aggregation class of a schema metric name: CPU and memory are system
// stats, every other system.* metric is resource usage, and anything else (build metrics,
// custom metrics) is performance.
func ClassOf(metric string) MetricClass {
	switch {
	case strings.HasPrefix(metric, "system.cpu."), strings.HasPrefix(metric, "system.memory."):
		return ClassSystemStats
	case strings.HasPrefix(metric, "system."):
		return ClassResourceUsage
	}
	return ClassPerformance
}

// Combine says how a rule reduces the data points of one resource to one value.
type Combine uint8

// Combines.
const (
	CombineNone Combine = iota // one series per attribute set
	CombineSum                 // one series: the sum of the matching points
	CombineMax                 // one series: the largest matching point
)

// Alias is one of the seed's metric names (§4.1) and the schema metric it reads.
type Alias struct {
	Metric string
	// Filter is a data point attribute the alias requires (Key "" for none).
	Filter  AttrMatch
	Combine Combine
	Class   MetricClass
}

// aliases maps the seed's resource metric names onto the schema (documented in the
// buildprogress processor's README).
var aliases = map[string]Alias{
	"cpu_usage":         {Metric: schema.MetricCPUUtilization, Filter: AttrMatch{schema.AttrCPUMode, schema.CPUModeBusy}, Combine: CombineMax, Class: ClassSystemStats},
	"memory_usage":      {Metric: schema.MetricMemoryUtilization, Filter: AttrMatch{schema.AttrMemoryState, schema.MemoryStateUsed}, Combine: CombineMax, Class: ClassSystemStats},
	"disk_usage":        {Metric: schema.MetricFilesystemUtilization, Combine: CombineMax, Class: ClassResourceUsage},
	"network_bandwidth": {Metric: schema.MetricNetworkIORate, Combine: CombineSum, Class: ClassResourceUsage},
	"io_operations":     {Metric: schema.MetricDiskOperationsRate, Combine: CombineSum, Class: ClassResourceUsage},
}

// LookupAlias returns the alias of that name (cpu_usage, memory_usage, disk_usage,
// network_bandwidth, io_operations).
func LookupAlias(name string) (Alias, bool) {
	a, ok := aliases[name]
	return a, ok
}

// AttrMatch is one required attribute value.
type AttrMatch struct{ Key, Value string }
