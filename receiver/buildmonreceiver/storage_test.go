package buildmonreceiver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/buildmon/buildmon/receiver/buildmonreceiver/internal/events"
	"github.com/buildmon/buildmon/receiver/buildmonreceiver/internal/metadatatest"
)

// memStorage is a storage extension in memory whose writes can be made to fail. Its data
// outlives receivers, as a file would.
type memStorage struct {
	component.StartFunc
	component.ShutdownFunc

	mu      sync.Mutex
	data    map[string][]byte
	batches int   // successful Batch calls
	failErr error // returned by Batch while set
}

var _ storage.Extension = (*memStorage)(nil)

func newMemStorage() *memStorage { return &memStorage{data: map[string][]byte{}} }

func (m *memStorage) GetClient(context.Context, component.Kind, component.ID, string) (storage.Client, error) {
	return memClient{m}, nil
}

// snapshot copies the data, as a crash would leave it.
func (m *memStorage) snapshot() *memStorage {
	m.mu.Lock()
	defer m.mu.Unlock()
	return &memStorage{data: maps.Clone(m.data)}
}

func (m *memStorage) build(t *testing.T, id string) *events.Build {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.data[buildPrefix+id]
	if !ok {
		return nil
	}
	var b events.Build
	require.NoError(t, json.Unmarshal(v, &b))
	return &b
}

func (m *memStorage) index(t *testing.T) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ids []string
	if v := m.data[indexKey]; v != nil {
		require.NoError(t, json.Unmarshal(v, &ids))
	}
	return ids
}

func (m *memStorage) setFail(err error) {
	m.mu.Lock()
	m.failErr = err
	m.mu.Unlock()
}

type memClient struct{ m *memStorage }

func (c memClient) Get(_ context.Context, key string) ([]byte, error) {
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
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
	if c.m.failErr != nil {
		return c.m.failErr
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

func storageHost(ext component.Component) (component.Host, component.ID) {
	id := component.MustNewID("mem_storage")
	return hostWithExtensions{Host: componenttest.NewNopHost(), ext: map[component.ID]component.Component{id: ext}}, id
}

func withStorage(id component.ID) func(*Config) {
	return func(c *Config) { c.Storage = &id }
}

// An accepted event is in storage when the answer arrives; a receiver started on what a
// crash left behind continues the counts, and a build that expires leaves storage.
func TestRegistryWrittenBeforeAnswer(t *testing.T) {
	mem := newMemStorage()
	host, id := storageHost(mem)
	tr := startReceiver(t, host, withStorage(id))
	tr.postOK(t,
		`{"id":"e1","type":"build_started","build_id":"b1","pipeline":"p","phases":[{"name":"BUILD","steps":5}]}`,
		`{"id":"e2","type":"phase_started","build_id":"b1","phase":"BUILD"}`)
	tr.postOK(t, `{"id":"e3","type":"step_completed","build_id":"b1","phase":"BUILD","count":2}`)
	stored := mem.build(t, "b1")
	require.NotNil(t, stored, "written before the answer")
	assert.Equal(t, int64(2), stored.Phases[0].Completed)
	assert.Equal(t, []string{"e1", "e2", "e3"}, stored.EventIDs)
	assert.Equal(t, []string{"b1"}, mem.index(t))

	// A rejected request writes nothing.
	mem.mu.Lock()
	batches := mem.batches
	mem.mu.Unlock()
	code, _, _ := tr.post(t, "application/json", `{"type":"step_completed","build_id":"b1","phase":"BUILD","count":9}`)
	require.Equal(t, http.StatusBadRequest, code)
	mem.mu.Lock()
	assert.Equal(t, batches, mem.batches)
	mem.mu.Unlock()

	// "Crash": a second receiver starts on the data as it is now.
	crashed := mem.snapshot()
	host2, id2 := storageHost(crashed)
	tr2 := startReceiver(t, host2, withStorage(id2))
	restored := tr2.waitFor(t, func(md pmetric.Metrics) bool { return hasMetric(md, "build.phase.steps.completed") })
	assert.Equal(t, int64(2), intPoint(t, restored, "build.phase.steps.completed", "BUILD"), "restored builds are emitted at start")
	code, body, _ := tr2.post(t, "application/x-ndjson",
		`{"id":"e3","type":"step_completed","build_id":"b1","phase":"BUILD","count":2}`+"\n"+
			`{"id":"e4","type":"step_completed","build_id":"b1","phase":"BUILD"}`+"\n"+
			`{"id":"e5","type":"build_finished","build_id":"b1","result":"success"}`)
	require.Equal(t, http.StatusAccepted, code)
	assert.JSONEq(t, `{"accepted":2,"duplicates":1}`, body)
	b, ok := tr2.r.registry.Get("b1")
	require.True(t, ok)
	assert.Equal(t, int64(3), b.Phases[0].Completed)
	assert.Equal(t, int64(3), crashed.build(t, "b1").Phases[0].Completed)

	// Past finished_build_ttl the next report tick removes the build from storage.
	tr2.clock.set(t0.Add(time.Hour))
	tr2.r.registry.Expire(tr2.clock.now())
	tr2.r.persist(context.Background())
	assert.Nil(t, crashed.build(t, "b1"))
	assert.Empty(t, crashed.index(t))
}

// A 202 means the events are in storage. When the write fails the request gets 503 with
// Retry-After and changes nothing (in memory, in storage, downstream); the same request sent
// again once the fault clears is applied exactly once. The build removals that the failed
// write carried are written with the next one.
func TestStorageWriteFailureAnswers503AndChangesNothing(t *testing.T) {
	mem := newMemStorage()
	host, id := storageHost(mem)
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	tr := startReceiverWithSettings(t, host, metadatatest.NewSettings(tel), withStorage(id))
	tr.postOK(t, `{"id":"e1","type":"build_started","build_id":"b1","pipeline":"p","phases":[{"name":"BUILD","steps":5}]}`)
	before, _ := tr.r.registry.Get("b1")
	stored := mem.build(t, "b1")

	mem.setFail(errors.New("disk full"))
	retried := `{"id":"e2","type":"phase_started","build_id":"b1","phase":"BUILD"}` + "\n" +
		`{"id":"e3","type":"step_completed","build_id":"b1","phase":"BUILD","count":2}` + "\n" +
		`{"id":"e4","type":"build_started","build_id":"b2","pipeline":"p"}`
	code, body, hdr := tr.post(t, "application/x-ndjson", retried)
	require.Equal(t, http.StatusServiceUnavailable, code, body)
	assert.Equal(t, "1", hdr.Get("Retry-After"), "within the build client's default --timeout of 2s")
	assert.Equal(t, "application/json", hdr.Get("Content-Type"))
	assert.Contains(t, body, "nothing was changed")
	after, _ := tr.r.registry.Get("b1")
	assert.Equal(t, before, after, "memory as before the request")
	_, ok := tr.r.registry.Get("b2")
	assert.False(t, ok)
	assert.Equal(t, stored, mem.build(t, "b1"))
	assert.Equal(t, []string{"b1"}, mem.index(t))
	metadatatest.AssertEqualReceiverBuildmonStorageWriteFailures(t, tel,
		[]metricdata.DataPoint[int64]{{Value: 1}}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
	metadatatest.AssertEqualReceiverBuildmonEventsAccepted(t, tel,
		[]metricdata.DataPoint[int64]{{Value: 1}}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())

	// Concurrent requests during the fault: every one gets 503, none changes anything.
	var wg sync.WaitGroup
	codes := make([]int, 16)
	for i := range codes {
		wg.Go(func() {
			resp, err := http.Post(tr.url+"/v1/events", "application/json",
				strings.NewReader(fmt.Sprintf(`{"type":"build_started","build_id":"c%d","pipeline":"p"}`, i)))
			if err == nil {
				codes[i] = resp.StatusCode
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	for i, c := range codes {
		assert.Equal(t, http.StatusServiceUnavailable, c, "request %d", i)
	}
	assert.Equal(t, 1, tr.r.registry.Len())

	// The fault clears: the client's retry is applied once, and again is a duplicate.
	mem.setFail(nil)
	code, body, _ = tr.post(t, "application/x-ndjson", retried)
	require.Equal(t, http.StatusAccepted, code, body)
	assert.JSONEq(t, `{"accepted":3,"duplicates":0}`, body)
	code, body, _ = tr.post(t, "application/x-ndjson", retried)
	require.Equal(t, http.StatusAccepted, code, body)
	assert.JSONEq(t, `{"accepted":0,"duplicates":3}`, body)
	b, _ := tr.r.registry.Get("b1")
	assert.Equal(t, int64(2), b.Phases[0].Completed)
	assert.Equal(t, int64(2), mem.build(t, "b1").Phases[0].Completed)
	assert.Equal(t, []string{"e1", "e2", "e3"}, mem.build(t, "b1").EventIDs)
	assert.Equal(t, []string{"b1", "b2"}, mem.index(t))

	// An expiry whose write fails is written with the next request's changes.
	tr.postOK(t, `{"id":"e5","type":"build_finished","build_id":"b2","result":"success"}`)
	tr.clock.set(t0.Add(time.Hour))
	mem.setFail(errors.New("disk full"))
	require.Equal(t, 1, tr.r.registry.Expire(tr.clock.now()))
	tr.r.persist(context.Background())
	assert.NotNil(t, mem.build(t, "b2"))
	mem.setFail(nil)
	tr.postOK(t, `{"id":"e6","type":"step_completed","build_id":"b1","phase":"BUILD"}`)
	assert.Nil(t, mem.build(t, "b2"))
	assert.Equal(t, []string{"b1"}, mem.index(t))
}

// Concurrent requests share storage writes (group commit) and each is answered only after
// the write that holds it: every accepted event is in storage.
func TestConcurrentRequestsAreAllStored(t *testing.T) {
	mem := newMemStorage()
	host, id := storageHost(mem)
	tr := startReceiver(t, host, func(c *Config) {
		withStorage(id)(c)
		c.RateLimit.EventsPerSecond = 0
	})
	const builds = 40
	var wg sync.WaitGroup
	for i := range builds {
		wg.Go(func() {
			body := fmt.Sprintf(`{"type":"build_started","build_id":"b%d","pipeline":"p","phases":[{"name":"BUILD","steps":3}]}`+"\n"+
				`{"type":"phase_started","build_id":"b%d","phase":"BUILD"}`, i, i)
			resp, err := http.Post(tr.url+"/v1/events", "application/x-ndjson", strings.NewReader(body))
			if !assert.NoError(t, err) {
				return
			}
			resp.Body.Close()
			if assert.Equal(t, http.StatusAccepted, resp.StatusCode) {
				b := mem.build(t, fmt.Sprintf("b%d", i))
				if assert.NotNil(t, b, "stored before the answer") {
					assert.Equal(t, events.PhaseRunning, b.Phases[0].State)
				}
			}
		})
	}
	wg.Wait()
	assert.Len(t, mem.index(t), builds)
	assert.Equal(t, builds, tr.r.registry.Len())
}

// A finished build restored from storage keeps the time the receiver saw it finish, so a
// restart does not extend or shorten its stay.
func TestFinishedObservedSurvivesRestart(t *testing.T) {
	mem := newMemStorage()
	host, id := storageHost(mem)
	tr := startReceiver(t, host, func(c *Config) { withStorage(id)(c); c.FinishedBuildTTL = time.Minute })
	tr.postOK(t, `{"type":"build_started","build_id":"b1","pipeline":"p","time":"2026-11-28T11:40:00Z"}`,
		`{"type":"build_finished","build_id":"b1","result":"success","time":"2026-11-28T11:50:00Z"}`)
	assert.Equal(t, t0, mem.build(t, "b1").FinishedObserved)

	host2, id2 := storageHost(mem.snapshot())
	tr2 := startReceiver(t, host2, func(c *Config) { withStorage(id2)(c); c.FinishedBuildTTL = time.Minute })
	assert.Equal(t, 0, tr2.r.registry.Expire(t0.Add(30*time.Second)))
	assert.Equal(t, 1, tr2.r.registry.Expire(t0.Add(2*time.Minute)))
}

// Unreadable entries are skipped (and removed with the next write); an unreadable index
// fails Start, rather than start empty and overwrite what is there.
func TestRestoreFromDamagedStorage(t *testing.T) {
	mem := newMemStorage()
	mem.data[indexKey] = []byte(`["good","bad","missing"]`)
	mem.data[buildPrefix+"good"] = []byte(`{"id":"good","pipeline":"p","phases":[{"name":"BUILD","steps_total":2,"steps_completed":1,"state":"running"}],"started_at":"2026-11-28T12:00:00Z","updated_at":"2026-11-28T12:00:00Z"}`)
	mem.data[buildPrefix+"bad"] = []byte(`{"id":`)
	host, id := storageHost(mem)
	tr := startReceiver(t, host, withStorage(id))
	b, ok := tr.r.registry.Get("good")
	require.True(t, ok)
	assert.Equal(t, int64(1), b.Phases[0].Completed)
	tr.postOK(t, `{"type":"step_completed","build_id":"good","phase":"BUILD"}`)
	assert.Nil(t, mem.build(t, "bad"), "unreadable entry removed")
	assert.Equal(t, []string{"good"}, mem.index(t))

	broken := newMemStorage()
	broken.data[indexKey] = []byte(`{not json`)
	host2, id2 := storageHost(broken)
	f := NewFactory()
	cfg := f.CreateDefaultConfig().(*Config)
	cfg.Events.NetAddr.Endpoint = freeEndpoint(t)
	cfg.Host.Enabled = false
	cfg.Storage = &id2
	r, err := f.CreateMetrics(context.Background(), nopSettings(), cfg, consumertest.NewNop())
	require.NoError(t, err)
	err = r.Start(context.Background(), host2)
	require.ErrorContains(t, err, "decoding the index")
	require.NoError(t, r.Shutdown(context.Background()))
	assert.Equal(t, `{not json`, string(broken.data[indexKey]), "left as it was")
}

func TestStorageExtensionMissing(t *testing.T) {
	f := NewFactory()
	cfg := f.CreateDefaultConfig().(*Config)
	cfg.Events.NetAddr.Endpoint = freeEndpoint(t)
	cfg.Host.Enabled = false
	id := component.MustNewID("file_storage")
	cfg.Storage = &id
	r, err := f.CreateMetrics(context.Background(), nopSettings(), cfg, consumertest.NewNop())
	require.NoError(t, err)
	require.ErrorContains(t, r.Start(context.Background(), componenttest.NewNopHost()), "storage: extension file_storage is not configured")
	require.NoError(t, r.Shutdown(context.Background()))
}
