package buildprogressprocessor // import "github.com/buildmon/buildmon/processor/buildprogressprocessor"

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.uber.org/zap"

	"github.com/buildmon/buildmon/internal/progress"
)

// Storage keys: one value per pipeline, and an index of the pipeline names (the storage API
// has no listing).
const (
	historyIndexKey = "eta_pipelines"
	historyPrefix   = "eta_pipeline/"
)

// historyStore writes the ETA history to a storage extension (as contrib components keep
// their state with storage.Client). Finished builds mark their pipeline dirty; a goroutine
// writes the dirty pipelines in one batch outside the processor's lock, and Shutdown writes
// what is left.
type historyStore struct {
	client storage.Client
	logger *zap.Logger
	wake   chan struct{} // buffered 1: a flush is due
	stop   chan struct{}
	done   chan struct{}
	// names is the stored index; only the flushing goroutine (or Shutdown after it stopped)
	// uses it.
	names      map[string]bool
	indexDirty bool // the index differs from the stored one (a write failed)
	// flushMu serializes flushes (the goroutine and Shutdown).
	flushMu sync.Mutex
}

func (s *historyStore) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// start opens the storage extension named by storage, restores the history and starts the
// writer.
func (p *buildProgressProcessor) start(ctx context.Context, host component.Host) error {
	if p.storageID == nil || !p.eta.enabled() {
		return nil
	}
	ext, ok := host.GetExtensions()[*p.storageID]
	if !ok {
		return fmt.Errorf("storage: extension %s is not configured", p.storageID)
	}
	se, ok := ext.(storage.Extension)
	if !ok {
		return fmt.Errorf("storage: extension %s is not a storage extension", p.storageID)
	}
	client, err := se.GetClient(ctx, component.KindProcessor, p.id, "eta_history")
	if err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	s := &historyStore{client: client, logger: p.logger, wake: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{}), names: map[string]bool{}}
	restored, err := s.load(ctx, &p.eta.cfg)
	if err != nil {
		_ = client.Close(ctx)
		return fmt.Errorf("storage: restoring the ETA history: %w", err)
	}
	p.mu.Lock()
	for name, h := range restored {
		if _, ok := p.eta.pipelines[name]; !ok {
			p.eta.pipelines[name] = h
		}
	}
	for len(p.eta.pipelines) > p.eta.cfg.MaxPipelines {
		p.eta.dropOldest()
	}
	p.eta.store = s
	p.mu.Unlock()
	p.logger.Info("ETA history restored", zap.Int("pipelines", len(restored)))
	go s.run(p)
	return nil
}

// load reads every stored pipeline; unreadable entries are logged and skipped.
func (s *historyStore) load(ctx context.Context, cfg *ETAConfig) (map[string]*progress.PipelineHistory, error) {
	raw, err := s.client.Get(ctx, historyIndexKey)
	if err != nil {
		return nil, fmt.Errorf("reading the index: %w", err)
	}
	out := map[string]*progress.PipelineHistory{}
	if raw == nil {
		return out, nil
	}
	var names []string
	if err := json.Unmarshal(raw, &names); err != nil {
		s.logger.Warn("ETA history index unreadable; starting without history", zap.Error(err))
		return out, nil
	}
	for _, name := range names {
		s.names[name] = true
		v, err := s.client.Get(ctx, pipelineKey(name))
		if err != nil {
			return nil, fmt.Errorf("reading pipeline %q: %w", name, err)
		}
		if v == nil {
			continue
		}
		var rec progress.PipelineRecord
		if err := json.Unmarshal(v, &rec); err != nil {
			s.logger.Warn("ETA history of a pipeline unreadable; skipped", zap.String("pipeline", name), zap.Error(err))
			continue
		}
		out[name] = progress.RestorePipelineHistory(rec, cfg.HistorySize, cfg.MaxPhases)
	}
	return out, nil
}

func (s *historyStore) run(p *buildProgressProcessor) {
	defer close(s.done)
	for {
		select {
		case <-s.stop:
			return
		case <-s.wake:
			if err := s.flush(context.Background(), p); err != nil {
				s.logger.Warn("writing the ETA history to storage failed; it is retried with the next finished build", zap.Error(err))
			}
		}
	}
}

// flush writes the pipelines changed since the last flush (and the index when it changed).
func (s *historyStore) flush(ctx context.Context, p *buildProgressProcessor) error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	var ops []*storage.Operation
	var errs []error
	p.mu.Lock()
	indexChanged := s.indexDirty
	for name, changed := range p.eta.dirty {
		h := p.eta.pipelines[name]
		if !changed || h == nil {
			ops = append(ops, storage.DeleteOperation(pipelineKey(name)))
			if s.names[name] {
				delete(s.names, name)
				indexChanged = true
			}
			continue
		}
		v, err := json.Marshal(h.Record())
		if err != nil {
			errs = append(errs, fmt.Errorf("encoding pipeline %q: %w", name, err))
			continue
		}
		ops = append(ops, storage.SetOperation(pipelineKey(name), v))
		if !s.names[name] {
			s.names[name] = true
			indexChanged = true
		}
	}
	dirty := p.eta.dirty
	p.eta.dirty = map[string]bool{}
	p.mu.Unlock()
	if indexChanged {
		names := make([]string, 0, len(s.names))
		for n := range s.names {
			names = append(names, n)
		}
		slices.Sort(names)
		v, err := json.Marshal(names)
		if err != nil {
			return err
		}
		ops = append(ops, storage.SetOperation(historyIndexKey, v))
	}
	if len(ops) == 0 {
		return errors.Join(errs...)
	}
	if err := s.client.Batch(ctx, ops...); err != nil {
		// Mark the pipelines dirty again so that the next flush retries them.
		p.mu.Lock()
		for name, changed := range dirty {
			if _, again := p.eta.dirty[name]; !again {
				p.eta.dirty[name] = changed
			}
		}
		p.mu.Unlock()
		s.indexDirty = indexChanged
		errs = append(errs, err)
	} else {
		s.indexDirty = false
	}
	return errors.Join(errs...)
}

// stopHistoryStore stops the writer, writes what is left and closes the storage client.
func (p *buildProgressProcessor) stopHistoryStore(ctx context.Context) error {
	p.mu.Lock()
	s := p.eta.store
	p.mu.Unlock()
	if s == nil {
		return nil
	}
	close(s.stop)
	<-s.done
	err := s.flush(ctx, p)
	p.mu.Lock()
	p.eta.store = nil
	p.mu.Unlock()
	return errors.Join(err, s.client.Close(ctx))
}
