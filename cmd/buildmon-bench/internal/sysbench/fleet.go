package sysbench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/buildmon/buildmon/cmd/buildmon-bench/internal/results"
	"github.com/buildmon/buildmon/cmd/buildmon-bench/internal/stats"
)

// Item 8 of the bench: a fleet (agents → router → gateways) started from the shipped configs
// testdata/fleet/{agent,router,gateway}.yaml with their addresses set in the environment.

// FleetSettings are the knobs of the fleet measurements.
type FleetSettings struct {
	RoutingRuns     int           // runs of each of the 12 pipelines in the routing comparison
	RoutingFleets   int           // fleets (fresh gateway addresses, so a fresh hash ring) per attribute
	ThroughputTime  time.Duration // how long events are offered to the agents
	ThroughputBuild int           // builds per agent that the events go to
	LatencySamples  int           // events whose way to the gateway is timed
	MemoryBuilds    [2]int        // builds held by one gateway at the two RSS readings
}

// DefaultFleetSettings are what `make bench` runs.
func DefaultFleetSettings() FleetSettings {
	return FleetSettings{RoutingRuns: 6, RoutingFleets: 3, ThroughputTime: 10 * time.Second, ThroughputBuild: 50, LatencySamples: 200,
		MemoryBuilds: [2]int{1000, 4000}}
}

type fleetProcs struct {
	agents   []*Collector
	gateways []*Collector
	gwStart  []func(context.Context) (*Collector, error) // starts gateway i again (same data dir)
	router   *Collector
	events   []int // agents' events API ports
	status   []int // agents' status API ports
	gwStatus []int // gateways' status API ports
}

func (f *fleetProcs) stop(r *Runner) {
	for _, c := range f.agents {
		r.stop(c)
	}
	if f.router != nil {
		r.stop(f.router)
	}
	for _, c := range f.gateways {
		r.stop(c)
	}
}

// startFleet starts gateways, the router (routing on routingAttr) and agents, every one from
// the shipped configs; agentEnv is added to each agent's environment.
func (r *Runner) startFleet(ctx context.Context, name string, agents, gateways int, routingAttr, remoteWrite string, agentEnv ...string) (*fleetProcs, error) {
	read := func(file string) ([]byte, error) { return os.ReadFile(filepath.Join(r.FleetConfigDir, file)) }
	agentCfg, err := read("agent.yaml")
	if err != nil {
		return nil, err
	}
	routerCfg, err := read("router.yaml")
	if err != nil {
		return nil, err
	}
	gatewayCfg, err := read("gateway.yaml")
	if err != nil {
		return nil, err
	}
	used := map[int]bool{}
	port := func() int {
		p, perr := freePort(used)
		if perr != nil && err == nil {
			err = perr
		}
		return p
	}
	addr := func(p int) string { return "127.0.0.1:" + strconv.Itoa(p) }
	f := &fleetProcs{}
	var gwAddrs []string
	for i := range gateways {
		otlp, status, health, tel := port(), port(), port(), port()
		if err != nil {
			return f, err
		}
		dir := filepath.Join(r.TmpDir, fmt.Sprintf("%s-gateway-%d-data", name, i))
		start := func(ctx context.Context) (*Collector, error) {
			return StartCollector(ctx, r.Bin, r.TmpDir, fmt.Sprintf("%s-gateway-%d", name, i), gatewayCfg, Ports{Status: status, Health: health},
				"BUILDMON_OTLP_ENDPOINT="+addr(otlp), "BUILDMON_STATUS_ENDPOINT="+addr(status), "BUILDMON_HEALTH_ENDPOINT="+addr(health),
				"BUILDMON_TELEMETRY_PORT="+strconv.Itoa(tel), "BUILDMON_DATA_DIR="+dir, "BUILDMON_REMOTE_WRITE_URL="+remoteWrite)
		}
		f.gwStart = append(f.gwStart, start)
		c, serr := start(ctx)
		if serr != nil {
			return f, fmt.Errorf("gateway %d: %w", i, serr)
		}
		f.gateways = append(f.gateways, c)
		f.gwStatus = append(f.gwStatus, status)
		gwAddrs = append(gwAddrs, addr(otlp))
	}
	otlp, health := port(), port()
	if err != nil {
		return f, err
	}
	f.router, err = StartCollector(ctx, r.RouterBin, r.TmpDir, name+"-router", routerCfg, Ports{Health: health},
		"BUILDMON_OTLP_ENDPOINT="+addr(otlp), "BUILDMON_HEALTH_ENDPOINT="+addr(health),
		"BUILDMON_GATEWAYS=["+strings.Join(gwAddrs, ", ")+"]", "BUILDMON_ROUTING_ATTRIBUTE="+routingAttr)
	if err != nil {
		return f, fmt.Errorf("router: %w", err)
	}
	for i := range agents {
		events, status, health, tel := port(), port(), port(), port()
		if err != nil {
			return f, err
		}
		dir := filepath.Join(r.TmpDir, fmt.Sprintf("%s-agent-%d-data", name, i))
		env := append([]string{"BUILDMON_EVENTS_ENDPOINT=" + addr(events), "BUILDMON_STATUS_ENDPOINT=" + addr(status),
			"BUILDMON_HEALTH_ENDPOINT=" + addr(health), "BUILDMON_TELEMETRY_PORT=" + strconv.Itoa(tel), "BUILDMON_DATA_DIR=" + dir,
			"BUILDMON_HOST_NAME=" + fmt.Sprintf("bench-host-%d", i+1), "BUILDMON_ROUTER_ENDPOINT=" + addr(otlp)}, agentEnv...)
		c, serr := StartCollector(ctx, r.Bin, r.TmpDir, fmt.Sprintf("%s-agent-%d", name, i), agentCfg, Ports{Events: events, Status: status, Health: health}, env...)
		if serr != nil {
			return f, fmt.Errorf("agent %d: %w", i, serr)
		}
		f.agents = append(f.agents, c)
		f.events = append(f.events, events)
		f.status = append(f.status, status)
	}
	r.logf("%s: fleet of %d agents, router (routing on %s), %d gateways", name, agents, routingAttr, gateways)
	return f, nil
}

// gatewayView is what the fleet bench reads of a build at a gateway.
type gatewayView struct {
	State  string   `json:"state"`
	ETA    *float64 `json:"eta_seconds"`
	Phases []struct {
		StepsCompleted int64 `json:"steps_completed"`
	} `json:"phases"`
}

// findAtGateway returns the index of the gateway that has build id, and its view (-1 if none).
func (f *fleetProcs) findAtGateway(ctx context.Context, id string) (int, gatewayView, error) {
	for i, p := range f.gwStatus {
		code, body, err := get(ctx, URL(p, "/v1/builds/"+id))
		if err != nil {
			return -1, gatewayView{}, err
		}
		if code == http.StatusOK {
			var v gatewayView
			return i, v, json.Unmarshal(body, &v)
		}
	}
	return -1, gatewayView{}, nil
}

func postEvents(ctx context.Context, port int, lines ...string) error {
	ct := "application/json"
	body := lines[0]
	if len(lines) > 1 {
		ct, body = "application/x-ndjson", strings.Join(lines, "\n")+"\n"
	}
	code, resp, err := post(ctx, URL(port, "/v1/events"), ct, []byte(body))
	if err != nil {
		return err
	}
	if code != http.StatusAccepted {
		return fmt.Errorf("events API: %d %s", code, truncateBody(resp))
	}
	return nil
}

// pollUntil calls cond every 10 ms until it returns true or timeout passes.
func pollUntil(ctx context.Context, timeout time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not reached within %s", timeout)
		}
		if err := sleep(ctx, 10*time.Millisecond); err != nil {
			return err
		}
	}
}

// Fleet measures routing (balance and ETA history coverage per routing attribute), events
// per second through the fleet, the latency from an agent's 202 to the gateway's status API,
// and how many builds a gateway holds in 256 MiB.
func (r *Runner) Fleet(ctx context.Context) ([]results.Measure, error) {
	if r.RouterBin == "" {
		return nil, errors.New("no router binary (make router)")
	}
	sink := newRemoteWriteSink()
	defer sink.Close()
	var out []results.Measure
	for _, attr := range []string{"cicd.pipeline.name", "cicd.pipeline.run.id"} {
		key := map[string]string{"cicd.pipeline.name": "pipeline", "cicd.pipeline.run.id": "runid"}[attr]
		var balance, coverage []float64
		var notes []string
		for k := range r.FleetKnobs.RoutingFleets {
			b, c, note, err := r.fleetRouting(ctx, attr, fmt.Sprintf("%s-%d", key, k), sink.URL)
			if err != nil {
				return out, fmt.Errorf("routing on %s: %w", attr, err)
			}
			balance, coverage, notes = append(balance, b), append(coverage, c), append(notes, note)
		}
		out = append(out,
			results.New(8, "fleet_routing_balance_"+key, "fleet routing on "+attr+": builds at the busiest of 2 gateways / mean (12 pipelines)", "ratio", "lower", balance).
				WithNote(strings.Join(notes, "; ")),
			results.New(8, "fleet_routing_history_"+key, "fleet routing on "+attr+": runs with fleet history at their gateway", "ratio", "higher", coverage))
	}
	ms, err := r.fleetThroughput(ctx, sink.URL)
	out = append(out, ms...)
	if err != nil {
		return out, err
	}
	ms, err = r.fleetMemory(ctx, sink.URL)
	return append(out, ms...), err
}

// fleetRouting runs RoutingRuns runs of each of 12 pipelines, one after another, each run on
// the next of 3 agents, into 2 gateways. The agents keep no ETA history of their own
// (BUILDMON_ETA_HISTORY=0), so an ETA at progress 0 can only come from the gateway's history.
// It returns the balance (builds at the busiest gateway / builds at the average one) and the
// history coverage: the share of runs, after each pipeline's first, whose gateway had an ETA
// for them at progress 0.
func (r *Runner) fleetRouting(ctx context.Context, attr, name, remoteWrite string) (balance, coverage float64, note string, err error) {
	s := r.FleetKnobs
	f, err := r.startFleet(ctx, "fleet-routing-"+name, 3, 2, attr, remoteWrite, "BUILDMON_REPORT_INTERVAL=1s", "BUILDMON_ETA_HISTORY=0")
	defer f.stop(r)
	if err != nil {
		return 0, 0, "", err
	}
	perGateway := make([]float64, 2)
	covered, eligible := 0, 0
	n := 0
	for run := range s.RoutingRuns {
		for p := range 12 {
			id := fmt.Sprintf("route-%s-p%d-r%d", name, p, run)
			agent := f.events[n%3]
			n++
			if err := postEvents(ctx, agent,
				fmt.Sprintf(`{"type":"build_started","build_id":%q,"pipeline":"service-%c/build","phases":[{"name":"BUILD","steps":2}]}`, id, 'a'+p),
				fmt.Sprintf(`{"type":"phase_started","build_id":%q,"phase":"BUILD"}`, id)); err != nil {
				return 0, 0, "", err
			}
			var g int
			var v gatewayView
			if err := pollUntil(ctx, 30*time.Second, func() (bool, error) {
				var ferr error
				g, v, ferr = f.findAtGateway(ctx, id)
				return g >= 0, ferr
			}); err != nil {
				return 0, 0, "", fmt.Errorf("%s at a gateway: %w", id, err)
			}
			perGateway[g]++
			if run > 0 {
				eligible++
				if v.ETA != nil {
					covered++
				}
			}
			if err := postEvents(ctx, agent,
				fmt.Sprintf(`{"type":"step_completed","build_id":%q,"phase":"BUILD","count":2}`, id),
				fmt.Sprintf(`{"type":"phase_completed","build_id":%q,"phase":"BUILD"}`, id),
				fmt.Sprintf(`{"type":"build_finished","build_id":%q,"result":"success"}`, id)); err != nil {
				return 0, 0, "", err
			}
			if err := pollUntil(ctx, 30*time.Second, func() (bool, error) {
				_, v, ferr := f.findAtGateway(ctx, id)
				return v.State == "finished", ferr
			}); err != nil {
				return 0, 0, "", fmt.Errorf("%s finished at its gateway: %w", id, err)
			}
		}
	}
	mean := (perGateway[0] + perGateway[1]) / 2
	balance = max(perGateway[0], perGateway[1]) / mean
	coverage = float64(covered) / float64(eligible)
	note = fmt.Sprintf("builds per gateway %v, history for %d of %d", perGateway, covered, eligible)
	r.logf("routing on %s: %s", attr, note)
	return balance, coverage, note, nil
}

// fleetThroughput offers step events to 3 agents for ThroughputTime (NDJSON batches of 100
// from 4 workers per agent) and measures events per second from the first request until the
// gateways show every accepted step; then it times LatencySamples single events from their 202
// at an agent until the gateway's status API shows them.
func (r *Runner) fleetThroughput(ctx context.Context, remoteWrite string) ([]results.Measure, error) {
	s := r.FleetKnobs
	f, err := r.startFleet(ctx, "fleet-throughput", 3, 2, "cicd.pipeline.name", remoteWrite,
		"BUILDMON_REPORT_INTERVAL=5s", "BUILDMON_MAX_BUILDS=10000", "BUILDMON_EVENTS_PER_SECOND=0")
	defer f.stop(r)
	if err != nil {
		return nil, err
	}
	type build struct {
		id    string
		agent int
	}
	var builds []build
	for a := range f.agents {
		for i := range s.ThroughputBuild {
			id := fmt.Sprintf("tp-%d-%03d", a, i)
			builds = append(builds, build{id, a})
			if err := postEvents(ctx, f.events[a],
				fmt.Sprintf(`{"type":"build_started","build_id":%q,"pipeline":"tp-%d","phases":[{"name":"BUILD","steps":1000000}]}`, id, i%6),
				fmt.Sprintf(`{"type":"phase_started","build_id":%q,"phase":"BUILD"}`, id)); err != nil {
				return nil, err
			}
		}
	}
	var accepted atomic.Int64
	perBuild := make([]atomic.Int64, len(builds))
	start := time.Now()
	deadline := start.Add(s.ThroughputTime)
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for a := range f.agents {
		for w := range 4 {
			wg.Add(1)
			go func(a, w int) {
				defer wg.Done()
				var lines []string
				var idx []int
				for seq := 0; time.Now().Before(deadline) && ctx.Err() == nil; seq++ {
					lines, idx = lines[:0], idx[:0]
					for k := range 100 {
						bi := a*s.ThroughputBuild + (w*100+k+seq)%s.ThroughputBuild
						lines = append(lines, fmt.Sprintf(`{"id":"w%d-%d-%d","type":"step_completed","build_id":%q,"phase":"BUILD"}`, w, seq, k, builds[bi].id))
						idx = append(idx, bi)
					}
					if err := postEvents(ctx, f.events[a], lines...); err != nil {
						firstErr.CompareAndSwap(nil, err)
						continue
					}
					accepted.Add(int64(len(lines)))
					for _, bi := range idx {
						perBuild[bi].Add(1)
					}
				}
			}(a, w)
		}
	}
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok && accepted.Load() == 0 {
		return nil, err
	}
	// Drained: every build shows at its gateway every step its agent accepted.
	if err := pollUntil(ctx, 120*time.Second, func() (bool, error) {
		for i, b := range builds {
			g, v, err := f.findAtGateway(ctx, b.id)
			if err != nil {
				return false, err
			}
			if g < 0 || len(v.Phases) == 0 || v.Phases[0].StepsCompleted < perBuild[i].Load() {
				return false, nil
			}
		}
		return true, nil
	}); err != nil {
		return nil, fmt.Errorf("draining the fleet: %w", err)
	}
	elapsed := time.Since(start)
	rate := float64(accepted.Load()) / elapsed.Seconds()
	r.logf("fleet: %d events accepted in %s, all at the gateways after %s: %.0f events/s", accepted.Load(), s.ThroughputTime, elapsed.Round(time.Millisecond), rate)
	out := []results.Measure{results.New(8, "fleet_events_per_second", "fleet: events/s from 3 agents through the router to 2 gateways (until all are at the gateways)", "1/s", "higher", []float64{rate}).
		WithNote(fmt.Sprintf("%d events in %s offered, drained after %s", accepted.Load(), s.ThroughputTime, elapsed.Round(time.Millisecond)))}

	// Latency: one step at a time to a build on each agent in turn.
	var lat []float64
	for i := range s.LatencySamples {
		b := builds[(i*s.ThroughputBuild+i)%len(builds)]
		bi := (i*s.ThroughputBuild + i) % len(builds)
		want := perBuild[bi].Load() + 1
		if err := postEvents(ctx, f.events[b.agent], fmt.Sprintf(`{"id":"lat-%d","type":"step_completed","build_id":%q,"phase":"BUILD"}`, i, b.id)); err != nil {
			return out, err
		}
		at := time.Now()
		perBuild[bi].Add(1)
		if err := pollUntil(ctx, 30*time.Second, func() (bool, error) {
			_, v, err := f.findAtGateway(ctx, b.id)
			return len(v.Phases) > 0 && v.Phases[0].StepsCompleted >= want, err
		}); err != nil {
			return out, fmt.Errorf("latency sample %d: %w", i, err)
		}
		lat = append(lat, float64(time.Since(at).Nanoseconds()))
	}
	sort.Float64s(lat)
	p99 := stats.Quantile(lat, 0.99)
	r.logf("fleet: latency from 202 at an agent to the gateway's status API: median %s, p99 %s", time.Duration(stats.Median(lat)), time.Duration(p99))
	out = append(out,
		results.New(8, "fleet_latency_p99", "fleet: p99 from an event's 202 at the agent to the gateway's status API", "ns", "lower", []float64{p99}).
			WithNote(fmt.Sprintf("%d samples, median %s (polled every 10 ms)", len(lat), time.Duration(stats.Median(lat)))))

	// Recovery: SIGKILL the gateway that holds the most builds, send one step to each of its
	// builds while it is down, start it again and time until every one of them shows the step.
	held := make([][]int, len(f.gateways))
	for i, b := range builds {
		g, _, err := f.findAtGateway(ctx, b.id)
		if err != nil {
			return out, err
		}
		if g >= 0 {
			held[g] = append(held[g], i)
		}
	}
	victim := 0
	for g := range held {
		if len(held[g]) > len(held[victim]) {
			victim = g
		}
	}
	f.gateways[victim].Kill()
	for _, bi := range held[victim] {
		b := builds[bi]
		if err := postEvents(ctx, f.events[b.agent], fmt.Sprintf(`{"id":"down-%d","type":"step_completed","build_id":%q,"phase":"BUILD"}`, bi, b.id)); err != nil {
			return out, err
		}
		perBuild[bi].Add(1)
	}
	if err := sleep(ctx, 2*time.Second); err != nil {
		return out, err
	}
	c, err := f.gwStart[victim](ctx)
	if err != nil {
		return out, fmt.Errorf("restarting gateway %d: %w", victim, err)
	}
	f.gateways[victim] = c
	restarted := time.Now()
	restored := 0
	for _, bi := range held[victim] {
		if g, _, err := f.findAtGateway(ctx, builds[bi].id); err == nil && g == victim {
			restored++
		}
	}
	if err := pollUntil(ctx, 60*time.Second, func() (bool, error) {
		for _, bi := range held[victim] {
			_, v, err := f.findAtGateway(ctx, builds[bi].id)
			if err != nil {
				return false, err
			}
			if len(v.Phases) == 0 || v.Phases[0].StepsCompleted < perBuild[bi].Load() {
				return false, nil
			}
		}
		return true, nil
	}); err != nil {
		return out, fmt.Errorf("gateway %d complete after its restart: %w", victim, err)
	}
	recovery := time.Since(restarted)
	r.logf("fleet: gateway %d killed and restarted: %d of its %d builds restored from its checkpoint at once, all complete %s after it was healthy (agents' report interval 5 s)",
		victim, restored, len(held[victim]), recovery.Round(time.Millisecond))
	out = append(out,
		results.New(8, "fleet_gateway_recovery", "fleet: gateway SIGKILL + restart: healthy → every build it holds has the steps sent while it was down", "ns", "lower", []float64{float64(recovery.Nanoseconds())}).
			WithNote(fmt.Sprintf("%d builds, %d restored from its checkpoint at once; agents' report_interval 5 s", len(held[victim]), restored)))
	return out, nil
}

// fleetMemory sends MemoryBuilds[0], then MemoryBuilds[1] running builds through one agent
// and the router into one gateway and reads the gateway's RSS after each (median of 5
// readings); the builds that fit
// in 256 MiB follow from the line through the two readings.
func (r *Runner) fleetMemory(ctx context.Context, remoteWrite string) ([]results.Measure, error) {
	s := r.FleetKnobs
	f, err := r.startFleet(ctx, "fleet-memory", 1, 1, "cicd.pipeline.name", remoteWrite,
		"BUILDMON_REPORT_INTERVAL=5s", "BUILDMON_MAX_BUILDS="+strconv.Itoa(s.MemoryBuilds[1]+100), "BUILDMON_EVENTS_PER_SECOND=0")
	defer f.stop(r)
	if err != nil {
		return nil, err
	}
	var rss [2]float64
	started := 0
	for k, n := range s.MemoryBuilds {
		var lines []string
		for ; started < n; started++ {
			id := fmt.Sprintf("mem-%05d", started)
			lines = append(lines,
				fmt.Sprintf(`{"type":"build_started","build_id":%q,"pipeline":"mem-%d","phases":[{"name":"BUILD","steps":10},{"name":"TEST","steps":10}]}`, id, started%50),
				fmt.Sprintf(`{"type":"phase_started","build_id":%q,"phase":"BUILD"}`, id),
				fmt.Sprintf(`{"type":"step_completed","build_id":%q,"phase":"BUILD"}`, id))
			if len(lines) >= 900 {
				if err := postEvents(ctx, f.events[0], lines...); err != nil {
					return nil, err
				}
				lines = lines[:0]
			}
		}
		if len(lines) > 0 {
			if err := postEvents(ctx, f.events[0], lines...); err != nil {
				return nil, err
			}
		}
		// All of them at the gateway, then two report intervals of steady state.
		if err := pollUntil(ctx, 120*time.Second, func() (bool, error) {
			code, body, err := get(ctx, URL(f.gwStatus[0], "/v1/builds"))
			if err != nil || code != http.StatusOK {
				return false, err
			}
			return bytes.Contains(body, []byte(fmt.Sprintf(`"count":%d`, n))), nil
		}); err != nil {
			return nil, fmt.Errorf("%d builds at the gateway: %w", n, err)
		}
		if err := sleep(ctx, 10*time.Second); err != nil {
			return nil, err
		}
		// RSS moves with the garbage collector's cycles: the median of 5 readings 1 s apart.
		var readings []float64
		for range 5 {
			sm, err := f.gateways[0].Sample()
			if err != nil {
				return nil, err
			}
			readings = append(readings, mib(sm.RSS))
			if err := sleep(ctx, time.Second); err != nil {
				return nil, err
			}
		}
		rss[k] = stats.Median(readings)
		r.logf("fleet: gateway RSS with %d builds: %.0f MiB", n, rss[k])
	}
	slope := (rss[1] - rss[0]) / float64(s.MemoryBuilds[1]-s.MemoryBuilds[0])
	fit := float64(s.MemoryBuilds[0]) + (256-rss[0])/slope
	note := fmt.Sprintf("RSS %.0f MiB at %d builds, %.0f MiB at %d (%.1f KiB per build)", rss[0], s.MemoryBuilds[0], rss[1], s.MemoryBuilds[1], slope*1024)
	return []results.Measure{
		results.New(8, "fleet_gateway_builds_256mib", "fleet: running builds one gateway holds at 256 MiB RSS (remote write, checkpoint)", "builds", "higher", []float64{fit}).WithNote(note),
	}, nil
}
