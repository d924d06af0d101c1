package buildmonreceiver // import "github.com/buildmon/buildmon/receiver/buildmonreceiver"

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
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
// offsets. It is not safe for concurrent use: the receiver's storeMu serializes its users.
type registryStore struct {
	client  storage.Client
	ids     map[string]bool // ids in the stored index
	orphans []string        // unreadable entries, deleted with the next write
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

// load reads every stored build. err is set when the index cannot be read (the storage is
// unusable); unreadable names the builds that were skipped because their entry is missing or
// cannot be decoded.
func (s *registryStore) load(ctx context.Context) (builds []events.Build, unreadable, err error) {
	raw, err := s.client.Get(ctx, indexKey)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the index: %w", err)
	}
	if raw == nil {
		return nil, nil, nil
	}
	var ids []string
	if err := json.Unmarshal(raw, &ids); err != nil {
		return nil, nil, fmt.Errorf("decoding the index: %w", err)
	}
	var errs []error
	for _, id := range ids {
		v, err := s.client.Get(ctx, buildPrefix+id)
		if err != nil {
			errs = append(errs, fmt.Errorf("reading build %q: %w", id, err))
			continue
		}
		if v == nil {
			continue
		}
		var b events.Build
		err = json.Unmarshal(v, &b)
		if err == nil && b.ID != id {
			err = errors.New("the entry holds another build")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("decoding build %q: %w", id, err))
			s.orphans = append(s.orphans, id)
			continue
		}
		s.ids[id] = true
		builds = append(builds, b)
	}
	return builds, errors.Join(errs...), nil
}

// save writes changed builds and deletes removed ones in one batch. On error nothing is
// known to be written: the caller marks the changes unsaved again.
func (s *registryStore) save(ctx context.Context, changes []events.Change) error {
	ops := make([]*storage.Operation, 0, len(s.orphans)+len(changes)+1)
	// Orphans go first: a build started since under the same id is written after.
	for _, id := range s.orphans {
		ops = append(ops, storage.DeleteOperation(buildPrefix+id))
	}
	// The index changes only once the batch is written.
	var added, removed []string
	for i := range changes {
		c := &changes[i]
		id := c.Build.ID
		if c.Removed {
			ops = append(ops, storage.DeleteOperation(buildPrefix+id))
			if s.ids[id] {
				removed = append(removed, id)
			}
			continue
		}
		v, err := json.Marshal(&c.Build)
		if err != nil {
			return fmt.Errorf("encoding build %q: %w", id, err)
		}
		ops = append(ops, storage.SetOperation(buildPrefix+id, v))
		if !s.ids[id] {
			added = append(added, id)
		}
	}
	if len(added) > 0 || len(removed) > 0 || len(s.orphans) > 0 {
		ids := make([]string, 0, len(s.ids)+len(added))
		for id := range s.ids {
			if !slices.Contains(removed, id) {
				ids = append(ids, id)
			}
		}
		ids = append(ids, added...)
		sort.Strings(ids)
		v, err := json.Marshal(ids)
		if err != nil {
			return fmt.Errorf("encoding the index: %w", err)
		}
		ops = append(ops, storage.SetOperation(indexKey, v))
	}
	if len(ops) == 0 {
		return nil
	}
	if err := s.client.Batch(ctx, ops...); err != nil {
		return err
	}
	for _, id := range added {
		s.ids[id] = true
	}
	for _, id := range removed {
		delete(s.ids, id)
	}
	s.orphans = nil
	return nil
}

func (s *registryStore) close(ctx context.Context) error { return s.client.Close(ctx) }
