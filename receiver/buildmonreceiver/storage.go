package buildmonreceiver // import "github.com/buildmon/buildmon/receiver/buildmonreceiver"

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension/xextension/storage"

	"github.com/buildmon/buildmon/receiver/buildmonreceiver/internal/events"
)

// Storage keys: one value per build, and an index of the build ids (the storage API has no
// listing).
const (
	indexKey    = "builds"
	buildPrefix = "build/"
)

// registryStore keeps the build registry in a storage extension, the way filelog keeps its
// offsets. The receiver's loop is its only user.
type registryStore struct {
	client storage.Client
	ids    map[string]bool // ids in the stored index
}

func openRegistryStore(ctx context.Context, host component.Host, id, owner component.ID) (*registryStore, error) {
	ext, ok := host.GetExtensions()[id]
	if !ok {
		return nil, fmt.Errorf("storage: extension %s is not configured", id)
	}
	se, ok := ext.(storage.Extension)
	if !ok {
		return nil, fmt.Errorf("storage: extension %s is not a storage extension", id)
	}
	client, err := se.GetClient(ctx, component.KindReceiver, owner, "registry")
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	return &registryStore{client: client, ids: map[string]bool{}}, nil
}

// load reads every stored build; an unreadable entry is skipped with its id in the error.
func (s *registryStore) load(ctx context.Context) ([]events.Build, error) {
	raw, err := s.client.Get(ctx, indexKey)
	if err != nil || raw == nil {
		return nil, err
	}
	var ids []string
	if err := json.Unmarshal(raw, &ids); err != nil {
		return nil, fmt.Errorf("decoding the index: %w", err)
	}
	var builds []events.Build
	var errs []error
	for _, id := range ids {
		v, err := s.client.Get(ctx, buildPrefix+id)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if v == nil {
			continue
		}
		var b events.Build
		if err := json.Unmarshal(v, &b); err != nil {
			errs = append(errs, fmt.Errorf("decoding build %q: %w", id, err))
			continue
		}
		s.ids[id] = true
		builds = append(builds, b)
	}
	return builds, errors.Join(errs...)
}

// save writes changed builds and deletes removed ones in one batch.
func (s *registryStore) save(ctx context.Context, changes []events.Change) error {
	ops := make([]*storage.Operation, 0, len(changes)+1)
	indexChanged := false
	for _, c := range changes {
		id := c.Build.ID
		if c.Removed {
			ops = append(ops, storage.DeleteOperation(buildPrefix+id))
			if s.ids[id] {
				delete(s.ids, id)
				indexChanged = true
			}
			continue
		}
		v, err := json.Marshal(c.Persist)
		if err != nil {
			return fmt.Errorf("encoding build %q: %w", id, err)
		}
		ops = append(ops, storage.SetOperation(buildPrefix+id, v))
		if !s.ids[id] {
			s.ids[id] = true
			indexChanged = true
		}
	}
	if indexChanged {
		ids := make([]string, 0, len(s.ids))
		for id := range s.ids {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		v, _ := json.Marshal(ids)
		ops = append(ops, storage.SetOperation(indexKey, v))
	}
	if len(ops) == 0 {
		return nil
	}
	return s.client.Batch(ctx, ops...)
}

func (s *registryStore) close(ctx context.Context) error { return s.client.Close(ctx) }
