package checkpointexporter

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/checkpoint"
	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/clock"
	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/metadatatest"
	schemametadata "github.com/buildmon/buildmon/internal/metadata"
)

// t0 is the start of every test timeline.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// phaseSpec describes one phase in a build's metrics.
type phaseSpec struct {
	name             string
	state            string
	total, completed int64
	duration         float64
	progress         float64 // processor output; <0 leaves it out
	resources        bool    // opt-in per-phase aggregates
	// start is the receiver's build.phase.start_time; zero leaves it out.
	start time.Time
}

type alertSpec struct {
	rule, level, state string
	active             int64
	value              float64
}

// buildSpec describes the ResourceMetrics of one build as receiver and processor emit it.
type buildSpec struct {
	id, pipeline, host string
	at                 time.Time
	phases             []phaseSpec
	finished           bool
	result             string
	duration           float64
	// start is the receiver's build.start_time; zero leaves it out.
	start time.Time
	// processed adds the processor's metrics (progress, eta, paused, alerts).
	processed bool
	progress  float64
	eta       float64
	etaSource string // build.eta.source; rate when empty
	paused    bool
	alerts    []alertSpec
}

func metricsBuilder() *schemametadata.MetricsBuilder {
	cfg := schemametadata.NewDefaultMetricsBuilderConfig()
	cfg.Metrics.BuildPhaseCPUUtilizationAvg.Enabled = true
	cfg.Metrics.BuildPhaseCPUUtilizationMax.Enabled = true
	cfg.Metrics.BuildPhaseMemoryUsageMax.Enabled = true
	cfg.Metrics.BuildPhaseDiskIo.Enabled = true
	cfg.Metrics.BuildPhaseNetworkIo.Enabled = true
	cfg.Metrics.BuildPhaseDiskOperations.Enabled = true
	return schemametadata.NewMetricsBuilder(cfg, receivertest.NewNopSettings(schemametadata.Type))
}

// unixSeconds is t as the receiver puts it into build.start_time and build.phase.start_time.
func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

var phaseStates = []string{"pending", "running", "completed", "failed", "skipped"}

func (s buildSpec) metrics() pmetric.Metrics {
	mb := metricsBuilder()
	ts := pcommon.NewTimestampFromTime(s.at)
	for _, p := range s.phases {
		mb.RecordBuildPhaseStepsTotalDataPoint(ts, p.total, p.name)
		mb.RecordBuildPhaseStepsCompletedDataPoint(ts, p.completed, p.name)
		for _, st := range phaseStates {
			v := int64(0)
			if st == p.state {
				v = 1
			}
			mb.RecordBuildPhaseStateDataPoint(ts, v, p.name, schemametadata.MapAttributeBuildPhaseState[st])
		}
		mb.RecordBuildPhaseDurationDataPoint(ts, p.duration, p.name)
		if !p.start.IsZero() {
			mb.RecordBuildPhaseStartTimeDataPoint(ts, unixSeconds(p.start), p.name)
		}
		if s.processed && p.progress >= 0 {
			mb.RecordBuildPhaseProgressDataPoint(ts, p.progress, p.name)
		}
		if p.resources {
			mb.RecordBuildPhaseCPUUtilizationAvgDataPoint(ts, 0.5, p.name)
			mb.RecordBuildPhaseCPUUtilizationMaxDataPoint(ts, 0.9, p.name)
			mb.RecordBuildPhaseMemoryUsageMaxDataPoint(ts, 2<<30, p.name)
			mb.RecordBuildPhaseDiskIoDataPoint(ts, 1000, p.name, schemametadata.AttributeDiskIoDirectionRead)
			mb.RecordBuildPhaseDiskIoDataPoint(ts, 2000, p.name, schemametadata.AttributeDiskIoDirectionWrite)
			mb.RecordBuildPhaseNetworkIoDataPoint(ts, 300, p.name, schemametadata.AttributeNetworkIoDirectionTransmit)
			mb.RecordBuildPhaseNetworkIoDataPoint(ts, 400, p.name, schemametadata.AttributeNetworkIoDirectionReceive)
			mb.RecordBuildPhaseDiskOperationsDataPoint(ts, 10, p.name, schemametadata.AttributeDiskIoDirectionRead)
			mb.RecordBuildPhaseDiskOperationsDataPoint(ts, 20, p.name, schemametadata.AttributeDiskIoDirectionWrite)
		}
	}
	if s.finished {
		mb.RecordBuildStateDataPoint(ts, 0, schemametadata.AttributeBuildStateRunning)
		mb.RecordBuildStateDataPoint(ts, 1, schemametadata.AttributeBuildStateFinished)
		for res, attr := range schemametadata.MapAttributeCicdPipelineResult {
			v := int64(0)
			if res == s.result {
				v = 1
			}
			mb.RecordBuildResultDataPoint(ts, v, attr)
		}
	} else {
		mb.RecordBuildStateDataPoint(ts, 1, schemametadata.AttributeBuildStateRunning)
		mb.RecordBuildStateDataPoint(ts, 0, schemametadata.AttributeBuildStateFinished)
	}
	mb.RecordBuildDurationDataPoint(ts, s.duration)
	if !s.start.IsZero() {
		mb.RecordBuildStartTimeDataPoint(ts, unixSeconds(s.start))
	}
	if s.processed {
		mb.RecordBuildProgressDataPoint(ts, s.progress)
		src, ok := schemametadata.MapAttributeBuildEtaSource[s.etaSource]
		if !ok {
			src = schemametadata.AttributeBuildEtaSourceRate
		}
		mb.RecordBuildEtaDataPoint(ts, s.eta, src)
		paused := int64(0)
		if s.paused {
			paused = 1
		}
		mb.RecordBuildPausedDataPoint(ts, paused)
		for _, a := range s.alerts {
			mb.RecordBuildAlertActiveDataPoint(ts, a.active, a.rule, schemametadata.MapAttributeAlertLevel[a.level], schemametadata.MapAttributeAlertState[a.state])
			mb.RecordBuildAlertValueDataPoint(ts, a.value, a.rule, schemametadata.MapAttributeAlertLevel[a.level])
		}
	}
	rb := mb.NewResourceBuilder()
	rb.SetCicdPipelineRunID(s.id)
	rb.SetCicdPipelineName(s.pipeline)
	rb.SetHostName(s.host)
	return mb.Emit(schemametadata.WithResource(rb.Emit()))
}

// hostSpec describes the host ResourceMetrics of the receiver (plus processor alerts).
type hostSpec struct {
	name    string
	at      time.Time
	cpu     float64
	memUtil float64
	alerts  []alertSpec
}

func (s hostSpec) metrics() pmetric.Metrics {
	mb := metricsBuilder()
	ts := pcommon.NewTimestampFromTime(s.at)
	mb.RecordSystemCPUUtilizationDataPoint(ts, s.cpu, schemametadata.AttributeCPUModeBusy)
	mb.RecordSystemMemoryUtilizationDataPoint(ts, s.memUtil, schemametadata.AttributeSystemMemoryStateUsed)
	mb.RecordSystemMemoryUtilizationDataPoint(ts, 1-s.memUtil, schemametadata.AttributeSystemMemoryStateFree)
	mb.RecordSystemMemoryUsageDataPoint(ts, int64(s.memUtil*16e9), schemametadata.AttributeSystemMemoryStateUsed)
	mb.RecordSystemMemoryUsageDataPoint(ts, int64((1-s.memUtil)*16e9), schemametadata.AttributeSystemMemoryStateFree)
	mb.RecordSystemFilesystemUtilizationDataPoint(ts, 0.4, "sda1", "/", "ext4")
	mb.RecordSystemFilesystemUtilizationDataPoint(ts, 0.7, "sdb1", "/data", "ext4")
	mb.RecordSystemNetworkIoRateDataPoint(ts, 100, "eth0", schemametadata.AttributeNetworkIoDirectionTransmit)
	mb.RecordSystemNetworkIoRateDataPoint(ts, 50, "eth1", schemametadata.AttributeNetworkIoDirectionTransmit)
	mb.RecordSystemNetworkIoRateDataPoint(ts, 200, "eth0", schemametadata.AttributeNetworkIoDirectionReceive)
	mb.RecordSystemDiskOperationsRateDataPoint(ts, 5, "sda", schemametadata.AttributeDiskIoDirectionRead)
	mb.RecordSystemDiskOperationsRateDataPoint(ts, 7, "sda", schemametadata.AttributeDiskIoDirectionWrite)
	for _, a := range s.alerts {
		mb.RecordBuildAlertActiveDataPoint(ts, a.active, a.rule, schemametadata.MapAttributeAlertLevel[a.level], schemametadata.MapAttributeAlertState[a.state])
		mb.RecordBuildAlertValueDataPoint(ts, a.value, a.rule, schemametadata.MapAttributeAlertLevel[a.level])
	}
	rb := mb.NewResourceBuilder()
	rb.SetHostName(s.name)
	return mb.Emit(schemametadata.WithResource(rb.Emit()))
}

// faultFS is the OS file system with injectable faults.
type faultFS struct {
	checkpoint.OS
	mu    sync.Mutex
	fault error // returned by writes while set
	// renames counts checkpoint files put in place.
	renames atomic.Int64
}

func (f *faultFS) setFault(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fault = err
}

func (f *faultFS) getFault() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fault
}

func (f *faultFS) CreateTemp(dir, pattern string) (checkpoint.File, error) {
	if err := f.getFault(); errors.Is(err, syscall.EROFS) {
		return nil, &fs.PathError{Op: "open", Path: filepath.Join(dir, pattern), Err: err}
	}
	file, err := f.OS.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: file, fs: f}, nil
}

func (f *faultFS) Rename(oldpath, newpath string) error {
	if strings.HasSuffix(newpath, ".ckpt") {
		f.renames.Add(1)
	}
	return f.OS.Rename(oldpath, newpath)
}

type faultFile struct {
	checkpoint.File
	fs *faultFS
}

func (f *faultFile) Write(b []byte) (int, error) {
	if err := f.fs.getFault(); err != nil {
		return 0, &fs.PathError{Op: "write", Path: f.Name(), Err: err}
	}
	return f.File.Write(b)
}

// flushed is one flush the writer ran.
type flushed struct {
	at  time.Time
	err error
}

// harness runs one exporter through the factory with a fake clock and a fault-injecting file
// system, and talks to its status API.
type harness struct {
	t      *testing.T
	cfg    *Config
	clock  *clock.Fake
	fs     *faultFS
	logs   *observer.ObservedLogs
	tel    *componenttest.Telemetry
	exp    exporter.Metrics
	inner  *checkpointExporter
	host   component.Host
	flushC chan flushed
	client *http.Client
}

func testConfig(dir string) *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.Directory = dir
	cfg.Status.NetAddr.Endpoint = "127.0.0.1:0"
	return cfg
}

func newHarness(t *testing.T, cfg *Config, fc *clock.Fake) *harness {
	t.Helper()
	if fc == nil {
		fc = clock.NewFake(t0)
	}
	core, logs := observer.New(zap.DebugLevel)
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	set := metadatatest.NewSettings(tel)
	set.Logger = zap.New(core)
	h := &harness{t: t, cfg: cfg, clock: fc, fs: &faultFS{}, logs: logs, tel: tel, host: componenttest.NewNopHost(),
		flushC: make(chan flushed, 1000), client: &http.Client{Timeout: 10 * time.Second}}
	exp, err := newFactory(func(e *checkpointExporter) {
		e.clock, e.fs = fc, h.fs
		e.lookupEnv = func(string) (string, bool) { return "", false }
		e.afterFlush = func(at time.Time, err error) { h.flushC <- flushed{at, err} }
		h.inner = e
	}).CreateMetrics(context.Background(), set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.exp = exp
	return h
}

func (h *harness) start() error { return h.exp.Start(context.Background(), h.host) }

func (h *harness) mustStart() *harness {
	h.t.Helper()
	if err := h.start(); err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { _ = h.exp.Shutdown(context.Background()) })
	return h
}

func (h *harness) stop() {
	h.t.Helper()
	if err := h.exp.Shutdown(context.Background()); err != nil {
		h.t.Fatalf("shutdown: %v", err)
	}
}

func (h *harness) consume(mds ...pmetric.Metrics) {
	h.t.Helper()
	for _, md := range mds {
		if err := h.exp.ConsumeMetrics(context.Background(), md); err != nil {
			h.t.Fatal(err)
		}
	}
}

// tick advances the clock by the checkpoint interval and waits for a flush that started at
// or after the new time, so everything consumed before is in it.
func (h *harness) tick() flushed {
	h.t.Helper()
	return h.advance(h.cfg.Interval)
}

func (h *harness) advance(d time.Duration) flushed {
	h.t.Helper()
	// The writer's ticker and each notifier's resend ticker.
	waiters := 1
	for _, n := range []*NotifierConfig{&h.cfg.Alertmanager, &h.cfg.Webhook} {
		if n.enabled() && n.ResendInterval > 0 {
			waiters++
		}
	}
	if !h.clock.BlockUntil(waiters) {
		h.t.Fatal("the writer never waited on the clock")
	}
	h.clock.Advance(d)
	target := h.clock.Now()
	return h.waitFlush(target)
}

func (h *harness) waitFlush(notBefore time.Time) flushed {
	h.t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case f := <-h.flushC:
			if !f.at.Before(notBefore) {
				return f
			}
		case <-timeout:
			h.t.Fatal("no flush happened")
		}
	}
}

func (h *harness) url(path string) string { return "http://" + h.inner.listenAddr.String() + path }

func (h *harness) get(path string, header ...string) (int, []byte) {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodGet, h.url(path), nil)
	if err != nil {
		h.t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp.StatusCode, b
}

// logged reports whether a log entry's message (or its error field) contains s.
func (h *harness) logged(level string, s string) bool {
	for _, e := range h.logs.All() {
		if e.Level.String() != level {
			continue
		}
		if strings.Contains(e.Message, s) {
			return true
		}
		for _, f := range e.Context {
			if f.Interface != nil {
				if err, ok := f.Interface.(error); ok && strings.Contains(err.Error(), s) {
					return true
				}
			}
			if strings.Contains(f.String, s) {
				return true
			}
		}
	}
	return false
}

// files lists the files under dir (relative paths).
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return out
}
