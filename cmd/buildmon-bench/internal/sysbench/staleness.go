package sysbench

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/buildmon/buildmon/cmd/buildmon-bench/internal/results"
	"github.com/buildmon/buildmon/cmd/buildmon-bench/internal/stats"
	"github.com/buildmon/buildmon/cmd/buildmon-load/loadgen"
)

// Poll periods of the staleness scenario.
const (
	dirPoll    = 10 * time.Millisecond
	statusPoll = 25 * time.Millisecond
	// sampleBuilds is how many of the updated builds are followed to disk and to the status API.
	sampleBuilds = 5
)

// stepObs is an observation that a build had completed steps at a time.
type stepObs struct {
	at    time.Time
	build string
	steps int64
}

// fileChange is a checkpoint-directory file seen with a new mtime or size.
type fileChange struct {
	path  string
	mtime time.Time
	size  int64
	// full is true when the file is a checkpoint of the whole state: it decoded and held
	// every sampled build.
	full bool
}

// reachTimes returns, for k = 0..n-1, the first time in obs (any order) at which build had
// completed at least k+1 steps; the zero time when it never did.
func reachTimes(obs []stepObs, build string, n int) []time.Time {
	sorted := slices.Clone(obs)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].at.Before(sorted[j].at) })
	out := make([]time.Time, n)
	k := 0
	for _, o := range sorted {
		if o.build != build {
			continue
		}
		for k < n && o.steps >= int64(k+1) {
			out[k] = o.at
			k++
		}
	}
	return out
}

// delays are reached[k] - sent[k] for every k that was reached, and how many were not.
func delays(sent, reached []time.Time) (out []float64, missing int) {
	for k, r := range reached {
		if k >= len(sent) {
			break
		}
		if r.IsZero() {
			missing++
			continue
		}
		out = append(out, float64(max(0, r.Sub(sent[k]))))
	}
	return out, missing
}

// firstChangeAfter returns, for each time in ts, the mtime of the first change at or after it.
func firstChangeAfter(changes []fileChange, ts []time.Time) []time.Time {
	mtimes := make([]time.Time, 0, len(changes))
	for _, c := range changes {
		mtimes = append(mtimes, c.mtime)
	}
	slices.SortFunc(mtimes, func(a, b time.Time) int { return a.Compare(b) })
	out := make([]time.Time, len(ts))
	for i, t := range ts {
		if t.IsZero() {
			continue
		}
		j := sort.Search(len(mtimes), func(j int) bool { return !mtimes[j].Before(t) })
		if j < len(mtimes) {
			out[i] = mtimes[j]
		}
	}
	return out
}

// Staleness measures item 5 at the system level: builds (default 1,000) each updated Hz
// (default 10) times a second; how long until an event is in a checkpoint on disk, and how
// many bytes the collector writes per second compared with the state size per checkpoint
// interval.
func (r *Runner) Staleness(ctx context.Context) ([]results.Measure, error) {
	s := r.Settings
	c, err := r.start(ctx, "staleness", stalenessOverrides(s))
	if err != nil {
		return nil, err
	}
	defer r.stop(c)
	dirV, err := Lookup(c.Config, "exporters.checkpoint.directory")
	if err != nil {
		return nil, err
	}
	dir, _ := dirV.(string)
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(c.Dir, dir)
	}

	client, err := loadgen.NewClient(URL(c.Ports.Events, ""), loadgen.ClientOptions{Conns: 4})
	if err != nil {
		return nil, err
	}
	defer client.Close()
	ids := loadgen.BuildIDs(fmt.Sprintf("stale-%d", time.Now().UnixNano()), s.StalenessBuilds)
	// One phase: a build's overall progress in a checkpoint is steps completed / stepsTotal,
	// which tells which tick reached the disk.
	maxTicks := int(s.StalenessDuration.Seconds()*s.StalenessHz) + 1
	stepsTotal := int64(min(1_000_000, max(10_000, 10*maxTicks)))
	if err := client.StartBuilds(ctx, ids, loadgen.BuildPlan{Pipeline: "bench-staleness", Steps: int(stepsTotal)}, 1000); err != nil {
		return nil, err
	}
	var samples []string
	for i := range min(sampleBuilds, len(ids)) {
		samples = append(samples, ids[i*len(ids)/min(sampleBuilds, len(ids))])
	}
	// Let the builds' first checkpoint happen before the measured window.
	if err := sleep(ctx, s.StalenessDrain); err != nil {
		return nil, err
	}

	watchCtx, stopWatch := context.WithCancel(ctx)
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		changes   []fileChange
		diskObs   []stepObs
		statusObs []stepObs
		statusErr error
	)
	wg.Add(2)
	go func() {
		defer wg.Done()
		seen := map[string]fileChange{}
		// Only the top level: checkpoints live there, reports in sub-folders.
		poll := func() {
			entries, err := os.ReadDir(dir)
			if err != nil {
				return
			}
			for _, d := range entries {
				if d.IsDir() {
					continue
				}
				info, err := d.Info()
				if err != nil {
					continue // replaced or removed between listing and stat
				}
				path := filepath.Join(dir, d.Name())
				prev, ok := seen[path]
				if ok && prev.mtime.Equal(info.ModTime()) && prev.size == info.Size() {
					continue
				}
				ch := fileChange{path: path, mtime: info.ModTime(), size: info.Size()}
				if r.ReadCheckpoint != nil {
					if progress, err := r.ReadCheckpoint(path); err == nil && hasAll(progress, samples) {
						ch.full = true
						mu.Lock()
						for _, id := range samples {
							steps := int64(math.Round(progress[id] * float64(stepsTotal)))
							diskObs = append(diskObs, stepObs{at: ch.mtime, build: id, steps: steps})
						}
						mu.Unlock()
					}
				}
				seen[path] = ch
				mu.Lock()
				changes = append(changes, ch)
				mu.Unlock()
			}
		}
		t := time.NewTicker(dirPoll)
		defer t.Stop()
		for {
			poll()
			select {
			case <-watchCtx.Done():
				return
			case <-t.C:
			}
		}
	}()
	go func() {
		defer wg.Done()
		t := time.NewTicker(statusPoll)
		defer t.Stop()
		for {
			for _, id := range samples {
				n, at, err := statusSteps(watchCtx, URL(c.Ports.Status, "/v1/builds/"+id), "BUILD")
				if err != nil {
					if watchCtx.Err() == nil && statusErr == nil {
						mu.Lock()
						statusErr = err
						mu.Unlock()
					}
					continue
				}
				mu.Lock()
				statusObs = append(statusObs, stepObs{at: at, build: id, steps: n})
				mu.Unlock()
			}
			select {
			case <-watchCtx.Done():
				return
			case <-t.C:
			}
		}
	}()

	before, err := c.Sample()
	if err != nil {
		stopWatch()
		wg.Wait()
		return nil, err
	}
	r.logf("staleness: %d builds x %g Hz for %s; watching %s", len(ids), s.StalenessHz, s.StalenessDuration, dir)
	prof := r.cpuProfile(ctx, c, "staleness", s.StalenessDuration-time.Second)
	pace, err := client.Pace(ctx, loadgen.PaceOptions{Builds: ids, Hz: s.StalenessHz, Duration: s.StalenessDuration, MaxTicks: maxTicks, Chunk: 1000})
	after, serr := c.Sample()
	prof.wait()
	// Give the last events time to reach a checkpoint before the watchers stop: one
	// checkpoint interval and the drain.
	_ = sleep(ctx, s.StalenessDrain+checkpointInterval(c.Config))
	stopWatch()
	wg.Wait()
	if err != nil {
		return nil, err
	}
	if serr != nil {
		return nil, serr
	}

	sent := make([]time.Time, len(pace.Ticks))
	var failed int64
	for i, t := range pace.Ticks {
		sent[i] = t.Sent
		failed += t.Failed
	}
	window := after.At.Sub(before.At)
	var disk, visible []float64
	var missingDisk, missingVisible int
	var visibleTimes [][]time.Time
	for _, id := range samples {
		d, m := delays(sent, reachTimes(diskObs, id, len(sent)))
		disk, missingDisk = append(disk, d...), missingDisk+m
		vt := reachTimes(statusObs, id, len(sent))
		visibleTimes = append(visibleTimes, vt)
		v, mv := delays(sent, vt)
		visible, missingVisible = append(visible, v...), missingVisible+mv
	}

	var full []fileChange
	for _, ch := range changes {
		if ch.full {
			full = append(full, ch)
		}
	}
	method := "content"
	if len(disk) == 0 {
		// The checkpoint could not be read (encrypted, or no reader): fall back to the first
		// change in the checkpoint directory after the event was visible in the status API.
		method = "mtime"
		disk, missingDisk = nil, 0
		for _, vt := range visibleTimes {
			d, m := delays(sent, firstChangeAfter(changes, vt))
			disk, missingDisk = append(disk, d...), missingDisk+m
		}
	}
	if len(disk) == 0 {
		return nil, fmt.Errorf("no checkpoint in %s showed the sampled builds (%d file changes seen; status API error: %v)", dir, len(changes), statusErr)
	}

	// State size per interval: the newest full checkpoint, and the median time between them.
	var stateSize int64
	var gaps []float64
	if len(full) > 0 {
		stateSize = full[len(full)-1].size
		for i := 1; i < len(full); i++ {
			if g := full[i].mtime.Sub(full[i-1].mtime); g > 0 {
				gaps = append(gaps, float64(g))
			}
		}
	}
	interval := time.Duration(stats.Median(gaps))
	writeRate := float64(after.WriteBytes-before.WriteBytes) / window.Seconds()
	wcharRate := float64(after.WChar-before.WChar) / window.Seconds()

	// What the exporter wrote into its directory during the window: every new or rewritten
	// file there, by size.
	var dirBytes int64
	for _, ch := range changes {
		if !ch.mtime.Before(before.At) && !ch.mtime.After(after.At) {
			dirBytes += ch.size
		}
	}
	dirRate := float64(dirBytes) / window.Seconds()
	p50, p99 := stats.Median(disk), stats.Quantile(disk, 0.99)
	r.logf("staleness (%s): p50 %s, p99 %s, %d not on disk; visible in status API p50 %s; checkpoint dir %.0f B/s, process write_bytes %.0f B/s; checkpoint %d B every %s",
		method, time.Duration(p50), time.Duration(p99), missingDisk, time.Duration(stats.Median(visible)), dirRate, writeRate, stateSize, interval)
	note := fmt.Sprintf("%d builds x %g Hz for %s (%d ticks, %d events refused); %d sampled builds followed; ",
		len(ids), s.StalenessHz, s.StalenessDuration, len(pace.Ticks), failed, len(samples))
	if method == "content" {
		note += "staleness = mtime of the first checkpoint file whose content (read with the exporter's ReadCheckpointProgress) holds the step - the event's time"
	} else {
		note += "checkpoint not readable: staleness = mtime of the first checkpoint-directory change after the step showed in the status API - the event's time"
	}
	if missingDisk > 0 {
		note += fmt.Sprintf("; %d sampled events never reached disk within %s after the run (counted as missing, not in the quantiles)", missingDisk, s.StalenessDrain+checkpointInterval(c.Config))
	}
	measures := []results.Measure{
		results.New(5, "checkpoint/staleness_p50", "checkpoint staleness p50", "ns", "lower", disk).WithNote(note),
		results.New(5, "checkpoint/staleness_p99", "checkpoint staleness p99", "ns", "lower", []float64{p99}).
			WithTarget("value", "<=", float64(2*time.Second)),
		results.New(5, "checkpoint/visible_p50", "event -> status API p50", "ns", "lower", visible).
			WithNote(fmt.Sprintf("in-memory state of the exporter, polled every %s; %d not visible", statusPoll, missingVisible)),
	}
	if stateSize > 0 && interval > 0 {
		perInterval := float64(stateSize) / interval.Seconds()
		measures = append(measures,
			results.New(5, "checkpoint/exporter_bytes_per_second", "checkpoint bytes written/s", "B/s", "lower", []float64{dirRate}).
				WithBaseline("state size/interval", []float64{perInterval}).
				WithTarget("ratio", "<=", 2).
				WithNote(fmt.Sprintf("sizes of the files written into the checkpoint directory during the %s run (%d B); state = newest full checkpoint %d B, interval = median %s between checkpoints (%d seen)",
					window.Round(time.Millisecond), dirBytes, stateSize, interval.Round(time.Millisecond), len(full))),
			results.New(5, "checkpoint/write_bytes_per_second", "collector bytes written/s (write_bytes)", "B/s", "lower", []float64{writeRate}).
				WithBaseline("state size/interval", []float64{perInterval}).
				WithNote(fmt.Sprintf("the whole process: /proc/<pid>/io write_bytes (page-granular, includes the receiver's file_storage) over %s; audit log to %s (it would hold the bench's own status reads); wchar (all write syscalls incl. sockets) %.0f B/s",
					window.Round(time.Millisecond), auditToDevNull, wcharRate)),
			results.New(5, "checkpoint/state_bytes", fmt.Sprintf("checkpoint size, %d builds", len(ids)), "B", "lower", []float64{float64(stateSize)}),
		)
	}
	return measures, nil
}

// statusSteps reads steps_completed of a phase from the status API's build view.
func statusSteps(ctx context.Context, url, phase string) (int64, time.Time, error) {
	code, body, err := get(ctx, url)
	at := time.Now()
	if err != nil {
		return 0, at, err
	}
	if code != 200 {
		return 0, at, fmt.Errorf("GET %s: %d %s", url, code, truncateBody(body))
	}
	var view struct {
		Phases []struct {
			Name           string `json:"name"`
			StepsCompleted int64  `json:"steps_completed"`
		} `json:"phases"`
	}
	if err := json.Unmarshal(body, &view); err != nil {
		return 0, at, fmt.Errorf("decoding %s: %w", url, err)
	}
	for _, p := range view.Phases {
		if p.Name == phase {
			return p.StepsCompleted, at, nil
		}
	}
	return 0, at, fmt.Errorf("%s has no phase %s", url, phase)
}

func hasAll(progress map[string]float64, ids []string) bool {
	for _, id := range ids {
		if _, ok := progress[id]; !ok {
			return false
		}
	}
	return true
}

// defaultCheckpointInterval is the checkpoint exporter's interval when the config sets none.
const defaultCheckpointInterval = 5 * time.Second

// checkpointInterval is exporters.checkpoint.interval of a config.
func checkpointInterval(config []byte) time.Duration {
	v, err := Lookup(config, "exporters.checkpoint.interval")
	if err != nil {
		return defaultCheckpointInterval
	}
	d, err := time.ParseDuration(fmt.Sprint(v))
	if err != nil || d <= 0 {
		return defaultCheckpointInterval
	}
	return d
}
