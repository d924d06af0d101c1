package buildprogressprocessor

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/buildmon/buildmon/internal/progress"
	"github.com/buildmon/buildmon/internal/schema"
	"github.com/buildmon/buildmon/processor/buildprogressprocessor/internal/metadata"
)

// memStorage is a storage extension in memory whose reads and writes can be made to fail;
// its data outlives processors, as a file would.
type memStorage struct {
	component.StartFunc
	component.ShutdownFunc

	mu              sync.Mutex
	data            map[string][]byte
	batches, failed int
	failBatch       error // returned by Batch while set
	failGet         error // returned by Get while set
}

var _ storage.Extension = (*memStorage)(nil)

func (m *memStorage) GetClient(context.Context, component.Kind, component.ID, string) (storage.Client, error) {
	return memClient{m}, nil
}

func (m *memStorage) get(key string) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.data[key]
}

func (m *memStorage) set(f func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f()
}

type memClient struct{ m *memStorage }

func (c memClient) Get(_ context.Context, key string) ([]byte, error) {
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	if c.m.failGet != nil {
		return nil, c.m.failGet
	}
	return c.m.data[key], nil
}

func (c memClient) Set(ctx context.Context, key string, value []byte) error {
	return c.Batch(ctx, storage.SetOperation(key, value))
}

func (c memClient) Delete(ctx context.Context, key string) error {
	return c.Batch(ctx, storage.DeleteOperation(key))
}

func (c memClient) Batch(_ context.Context, ops ...*storage.Operation) error {
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	if c.m.failBatch != nil {
		c.m.failed++
		return c.m.failBatch
	}
	for _, op := range ops {
		switch op.Type {
		case storage.Set:
			c.m.data[op.Key] = append([]byte(nil), op.Value...)
		case storage.Delete:
			delete(c.m.data, op.Key)
		case storage.Get:
			op.Value = c.m.data[op.Key]
		}
	}
	c.m.batches++
	return nil
}

func (memClient) Close(context.Context) error { return nil }

// startOnMem starts a processor with its history in mem.
func startOnMem(t *testing.T, mem *memStorage, edit func(*Config)) (*harness, func() error) {
	t.Helper()
	id := component.MustNewID("mem_storage")
	cfg := createDefaultConfig().(*Config)
	cfg.Storage = &id
	if edit != nil {
		edit(cfg)
	}
	clock := &fakeClock{now: t0}
	sink := new(consumertest.MetricsSink)
	proc, err := newFactory(clock).CreateMetrics(context.Background(), processortest.NewNopSettings(metadata.Type), cfg, sink)
	require.NoError(t, err)
	require.NoError(t, proc.Start(context.Background(), hostWithExtensions{Host: componenttest.NewNopHost(), ext: map[component.ID]component.Component{id: mem}}))
	return &harness{t: t, clock: clock, proc: proc, sink: sink}, func() error { return proc.Shutdown(context.Background()) }
}

func storedIndex(t *testing.T, mem *memStorage) []string {
	var names []string
	if v := mem.get(historyIndexKey); v != nil {
		require.NoError(t, json.Unmarshal(v, &names))
	}
	return names
}

// recordPipeline runs one successful coarse run of pipeline name.
func recordPipeline(t *testing.T, h *harness, name string, took []float64) {
	at := h.clock.Now()
	b := coarseRun(name+"-run-"+at.Format("150405"), at, took, 0, 0)
	b.pipeline = name
	h.consume(at, batch([]buildIn{b}))
	fin := coarseRun(b.id, at, took, len(took), 0)
	fin.pipeline, fin.finished, fin.result = name, true, "success"
	at = at.Add(time.Duration(fin.duration) * time.Second)
	fin.at = at
	h.consume(at, batch([]buildIn{fin}))
	h.clock.Set(at.Add(time.Second))
}

// One entry per pipeline and an index; a pipeline forgotten beyond max_pipelines leaves
// storage too.
func TestHistoryStoreKeysAndEviction(t *testing.T) {
	mem := &memStorage{data: map[string][]byte{}}
	h, stop := startOnMem(t, mem, func(c *Config) { c.ETA.MaxPipelines = 1 })
	recordPipeline(t, h, "a", []float64{1, 2, 3, 4, 5})
	eventually(t, func() bool { return len(storedIndex(t, mem)) == 1 })
	assert.Equal(t, []string{"a"}, storedIndex(t, mem))
	var rec progress.PipelineRecord
	require.NoError(t, json.Unmarshal(mem.get(historyPrefix+"a"), &rec))
	assert.Equal(t, []time.Duration{3 * time.Second}, rec.Phases["BUILD"])

	recordPipeline(t, h, "b", []float64{1, 2, 3, 4, 5})
	require.NoError(t, stop())
	assert.Equal(t, []string{"b"}, storedIndex(t, mem))
	assert.Nil(t, mem.get(historyPrefix+"a"), "a was forgotten: its entry is deleted")
	assert.NotNil(t, mem.get(historyPrefix+"b"))
}

// A failed write is retried: the pipeline stays due and reaches storage with a later flush
// (here the one at shutdown).
func TestHistoryStoreRetriesFailedWrites(t *testing.T) {
	mem := &memStorage{data: map[string][]byte{}}
	mem.failBatch = errors.New("disk full")
	h, stop := startOnMem(t, mem, nil)
	recordPipeline(t, h, "p", []float64{1, 2, 3, 4, 5})
	eventually(t, func() bool {
		mem.mu.Lock()
		defer mem.mu.Unlock()
		return mem.failed > 0
	})
	mem.set(func() { mem.failBatch = nil })
	require.NoError(t, stop())
	assert.Equal(t, []string{"p"}, storedIndex(t, mem))
	assert.NotNil(t, mem.get(historyPrefix+"p"))

	// A processor started on it estimates from it at once.
	h, stop = startOnMem(t, mem, nil)
	defer func() { require.NoError(t, stop()) }()
	d := derived(t, h.consume(t0, batch([]buildIn{coarseRun("next", t0, nil, 0, 0)})), schema.AttrRunID, "next")
	eta, src, ok := etaOf(d)
	require.True(t, ok)
	assert.Equal(t, "history", src)
	assert.InDelta(t, 15, eta, 1e-9)
}

// Unreadable entries are skipped (logged), an unreadable index starts without history, and a
// storage that cannot be read fails the start with the reason.
func TestHistoryStoreRestoreFaults(t *testing.T) {
	good, _ := json.Marshal(progress.PipelineRecord{Phases: map[string][]time.Duration{"INIT": {10 * time.Second}}})
	mem := &memStorage{data: map[string][]byte{
		historyIndexKey:          []byte(`["good","broken","missing"]`),
		historyPrefix + "good":   good,
		historyPrefix + "broken": []byte("{"),
	}}
	h, stop := startOnMem(t, mem, nil)
	b := coarseRun("x", t0, nil, 0, 0)
	b.pipeline = "good"
	_, src, _ := etaOf(derived(t, h.consume(t0, batch([]buildIn{b})), schema.AttrRunID, "x"))
	assert.Equal(t, "history", src)
	require.NoError(t, stop())

	mem = &memStorage{data: map[string][]byte{historyIndexKey: []byte("not json")}}
	_, stop = startOnMem(t, mem, nil)
	require.NoError(t, stop())

	mem = &memStorage{data: map[string][]byte{}, failGet: errors.New("io error")}
	id := component.MustNewID("mem_storage")
	cfg := createDefaultConfig().(*Config)
	cfg.Storage = &id
	proc, err := NewFactory().CreateMetrics(context.Background(), processortest.NewNopSettings(metadata.Type), cfg, consumertest.NewNop())
	require.NoError(t, err)
	err = proc.Start(context.Background(), hostWithExtensions{Host: componenttest.NewNopHost(), ext: map[component.ID]component.Component{id: mem}})
	require.ErrorContains(t, err, "io error")
	require.NoError(t, proc.Shutdown(context.Background()))

	// Not a storage extension.
	cfg.Storage = &id
	proc, err = NewFactory().CreateMetrics(context.Background(), processortest.NewNopSettings(metadata.Type), cfg, consumertest.NewNop())
	require.NoError(t, err)
	err = proc.Start(context.Background(), hostWithExtensions{Host: componenttest.NewNopHost(), ext: map[component.ID]component.Component{id: notStorage{}}})
	require.ErrorContains(t, err, "is not a storage extension")
	require.NoError(t, proc.Shutdown(context.Background()))
}

// notStorage is an extension that is no storage extension.
type notStorage struct {
	component.StartFunc
	component.ShutdownFunc
}

func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, 5*time.Second, 5*time.Millisecond)
}
