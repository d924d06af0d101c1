//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/buildmon/buildmon/internal/wire"
)

// The fleet of the end-to-end tests: agents, the stock router and gateways started from the
// shipped configs testdata/fleet/{agent,router,gateway}.yaml, with every address and folder
// set through the environment, as `make fleet` does.

// routerBinary is the fleet's router (built by `make router`).
func routerBinary(t testing.TB) string {
	t.Helper()
	p := os.Getenv("BUILDMON_ROUTER")
	if p == "" {
		p = filepath.Join(repoRoot(t), "_build-router", "otelcol-router")
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("router binary %s not found (run `make router`): %v", p, err)
	}
	return p
}

func fleetConfig(t testing.TB, name string) string {
	return filepath.Join(repoRoot(t), "testdata", "fleet", name)
}

// fleetAgent is one build host's agent.
type fleetAgent struct {
	*collector
	p    ports
	host string
	dir  string
}

// fleetGateway is one gateway of the central tier.
type fleetGateway struct {
	*collector
	p   ports
	dir string
}

// fleetOptions shape a test fleet.
type fleetOptions struct {
	agents, gateways int
	alertmanager     bool
	// agentEnv adds environment variables to agent i.
	agentEnv map[int][]string
	// routingAttribute overrides the router's routing attribute.
	routingAttribute string
	// jaeger sends the gateways' traces to a Jaeger (testFleet.jaeger).
	jaeger bool
}

type testFleet struct {
	t        testing.TB
	agents   []*fleetAgent
	gateways []*fleetGateway
	router   *collector
	prom     *prometheus
	am       *alertmanager
	jaeger   *jaeger
}

func env(kv ...string) []string {
	out := make([]string, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, kv[i]+"="+kv[i+1])
	}
	return out
}

func loopback(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

// startFleet starts Prometheus (remote-write receiver), optionally Alertmanager, the gateways,
// the router and the agents (host names fleet-host-1, …), each waited for until healthy.
func startFleet(t testing.TB, o fleetOptions) *testFleet {
	t.Helper()
	if o.agents == 0 {
		o.agents = 3
	}
	if o.gateways == 0 {
		o.gateways = 2
	}
	f := &testFleet{t: t, prom: startRemoteWritePrometheus(t)}
	amURL := ""
	if o.alertmanager {
		f.am = startAlertmanager(t)
		amURL = f.am.url
	}
	var traces []string
	if o.jaeger {
		f.jaeger = startJaeger(t)
		traces = env("BUILDMON_TRACES_EXPORTER", "otlp/traces", "BUILDMON_TRACES_ENDPOINT", f.jaeger.OTLPEndpoint)
	}
	var gwAddrs []string
	for i := 0; i < o.gateways; i++ {
		g := &fleetGateway{p: newPorts(t), dir: t.TempDir()}
		g.collector = startCollector(t, fleetConfig(t, "gateway.yaml"), g.dir, fmt.Sprintf("http://127.0.0.1:%d/", g.p.Health), append(env(
			"BUILDMON_OTLP_ENDPOINT", loopback(g.p.OTLP),
			"BUILDMON_STATUS_ENDPOINT", loopback(g.p.Status),
			"BUILDMON_HEALTH_ENDPOINT", loopback(g.p.Health),
			"BUILDMON_TELEMETRY_PORT", strconv.Itoa(g.p.Telemetry),
			"BUILDMON_DATA_DIR", g.dir,
			"BUILDMON_REMOTE_WRITE_URL", f.prom.url+"/api/v1/write",
			"BUILDMON_ALERTMANAGER_URL", amURL,
		), traces...)...)
		f.gateways = append(f.gateways, g)
		gwAddrs = append(gwAddrs, loopback(g.p.OTLP))
	}
	rp := newPorts(t)
	routerEnv := env(
		"BUILDMON_OTLP_ENDPOINT", loopback(rp.OTLP),
		"BUILDMON_HEALTH_ENDPOINT", loopback(rp.Health),
		"BUILDMON_GATEWAYS", "["+strings.Join(gwAddrs, ", ")+"]",
	)
	if o.routingAttribute != "" {
		routerEnv = append(routerEnv, "BUILDMON_ROUTING_ATTRIBUTE="+o.routingAttribute)
	}
	f.router = startCollectorBinary(t, routerBinary(t), fleetConfig(t, "router.yaml"), t.TempDir(),
		fmt.Sprintf("http://127.0.0.1:%d/", rp.Health), routerEnv...)
	for i := 0; i < o.agents; i++ {
		a := &fleetAgent{p: newPorts(t), host: fmt.Sprintf("fleet-host-%d", i+1), dir: t.TempDir()}
		e := env(
			"BUILDMON_EVENTS_ENDPOINT", loopback(a.p.Events),
			"BUILDMON_STATUS_ENDPOINT", loopback(a.p.Status),
			"BUILDMON_HEALTH_ENDPOINT", loopback(a.p.Health),
			"BUILDMON_TELEMETRY_PORT", strconv.Itoa(a.p.Telemetry),
			"BUILDMON_DATA_DIR", a.dir,
			"BUILDMON_HOST_NAME", a.host,
			"BUILDMON_ROUTER_ENDPOINT", loopback(rp.OTLP),
			"BUILDMON_REPORT_INTERVAL", "1s",
		)
		e = append(e, o.agentEnv[i]...)
		a.collector = startCollector(t, fleetConfig(t, "agent.yaml"), a.dir, fmt.Sprintf("http://127.0.0.1:%d/", a.p.Health), e...)
		f.agents = append(f.agents, a)
	}
	return f
}

// post sends events to the agent's events API and reports whether it answered 202.
func (a *fleetAgent) post(events ...string) (bool, error) {
	code, body, err := postEvents(fmt.Sprintf("http://127.0.0.1:%d/v1/events", a.p.Events), events...)
	if err != nil {
		return false, err
	}
	if code != http.StatusAccepted {
		return false, fmt.Errorf("events API: %d %s", code, body)
	}
	return true, nil
}

func (a *fleetAgent) mustPost(t testing.TB, events ...string) {
	t.Helper()
	if _, err := a.post(events...); err != nil {
		t.Fatalf("agent %s: %v", a.host, err)
	}
}

// fleetBuild is the plan of the builds the fleet tests run: INIT 1 step, BUILD 3, TEST 2.
var fleetPhases = []struct {
	name  string
	steps int
}{{"INIT", 1}, {"BUILD", 3}, {"TEST", 2}}

func startEvent(id, pipeline string) string {
	var ph []string
	for _, p := range fleetPhases {
		ph = append(ph, fmt.Sprintf(`{"name":%q,"steps":%d}`, p.name, p.steps))
	}
	return fmt.Sprintf(`{"id":"%s-start","type":"build_started","build_id":%q,"pipeline":%q,"phases":[%s]}`, id, id, pipeline, strings.Join(ph, ","))
}

// phaseEvents are the events of one whole phase: started, its steps, completed.
func phaseEvents(id, phase string, steps int) []string {
	ev := []string{fmt.Sprintf(`{"id":"%s-%s-start","type":"phase_started","build_id":%q,"phase":%q}`, id, phase, id, phase)}
	for s := 0; s < steps; s++ {
		ev = append(ev, fmt.Sprintf(`{"id":"%s-%s-%d","type":"step_completed","build_id":%q,"phase":%q}`, id, phase, s, id, phase))
	}
	return append(ev, fmt.Sprintf(`{"id":"%s-%s-done","type":"phase_completed","build_id":%q,"phase":%q}`, id, phase, id, phase))
}

func finishEvent(id string) string {
	return fmt.Sprintf(`{"id":"%s-finish","type":"build_finished","build_id":%q,"result":"success"}`, id, id)
}

// runBuild runs a whole build of fleetPhases on agent a: started, every phase, finished. The
// events carry client times from start on, a second per step (INIT 1 s, BUILD 3 s, TEST 2 s),
// so that the build's phases have durations an ETA history can learn.
func runBuild(t testing.TB, a *fleetAgent, id, pipeline string, start time.Time) {
	t.Helper()
	at := start
	a.mustPost(t, timed(at, startEvent(id, pipeline))...)
	for _, p := range fleetPhases {
		evs := phaseEvents(id, p.name, p.steps)
		a.mustPost(t, timed(at, evs[0])...)
		for _, ev := range evs[1:] {
			if !strings.Contains(ev, `"phase_completed"`) {
				at = at.Add(time.Second)
			}
			a.mustPost(t, timed(at, ev)...)
		}
	}
	a.mustPost(t, timed(at, finishEvent(id))...)
}

// timed gives each event the client time at.
func timed(at time.Time, evs ...string) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = `{"time":"` + at.UTC().Format(time.RFC3339Nano) + `",` + strings.TrimPrefix(ev, "{")
	}
	return out
}

// buildAt returns a build's status from a status API (found false on 404).
func buildAt(statusPort int, id string) (st wire.BuildStatus, found bool, err error) {
	code, body, err := httpGet(context.Background(), fmt.Sprintf("http://127.0.0.1:%d/v1/builds/%s", statusPort, id))
	if err != nil {
		return st, false, err
	}
	switch code {
	case http.StatusNotFound:
		return st, false, nil
	case http.StatusOK:
		return st, true, json.Unmarshal(body, &st)
	default:
		return st, false, fmt.Errorf("status of %s: %d %s", id, code, body)
	}
}

// gatewaysOf returns the indexes of the gateways whose status API has the build.
func (f *testFleet) gatewaysOf(id string) ([]int, []wire.BuildStatus, error) {
	var at []int
	var sts []wire.BuildStatus
	for i, g := range f.gateways {
		st, found, err := buildAt(g.p.Status, id)
		if err != nil {
			return nil, nil, fmt.Errorf("gateway %d: %w", i, err)
		}
		if found {
			at, sts = append(at, i), append(sts, st)
		}
	}
	return at, sts, nil
}

// samePhases reports how a gateway's view of a build differs from its agent's: phases (name,
// state, steps, progress), overall progress, state and result.
func samePhases(agent, gw wire.BuildStatus) error {
	if agent.State != gw.State || agent.Result != gw.Result {
		return fmt.Errorf("state %s/%s at the agent, %s/%s at the gateway", agent.State, agent.Result, gw.State, gw.Result)
	}
	if agent.Progress != gw.Progress {
		return fmt.Errorf("progress %v at the agent, %v at the gateway", agent.Progress, gw.Progress)
	}
	if agent.Paused != gw.Paused {
		return fmt.Errorf("paused %v at the agent, %v at the gateway", agent.Paused, gw.Paused)
	}
	if len(agent.Phases) != len(gw.Phases) {
		return fmt.Errorf("%d phases at the agent, %d at the gateway", len(agent.Phases), len(gw.Phases))
	}
	for i := range agent.Phases {
		a, g := agent.Phases[i], gw.Phases[i]
		if a.Name != g.Name || a.State != g.State || a.StepsTotal != g.StepsTotal || a.StepsCompleted != g.StepsCompleted || a.Progress != g.Progress {
			return fmt.Errorf("phase %d: %+v at the agent, %+v at the gateway", i, a, g)
		}
	}
	return nil
}

// atOneGatewayAsOnAgent checks that build id is at exactly one gateway and that its phases,
// steps and progress there are those its agent shows; it returns the gateway's index.
func (f *testFleet) atOneGatewayAsOnAgent(a *fleetAgent, id string) (int, wire.BuildStatus, error) {
	agentView, found, err := buildAt(a.p.Status, id)
	if err != nil || !found {
		return -1, agentView, fmt.Errorf("%s at its agent: found %v, %v", id, found, err)
	}
	at, sts, err := f.gatewaysOf(id)
	if err != nil {
		return -1, agentView, err
	}
	if len(at) != 1 {
		return -1, agentView, fmt.Errorf("%s at gateways %v, want exactly one", id, at)
	}
	if err := samePhases(agentView, sts[0]); err != nil {
		return -1, agentView, fmt.Errorf("%s: %w", id, err)
	}
	return at[0], sts[0], nil
}

// reportsAt checks that every report the build's status links to is served by the gateway.
func reportsAt(g *fleetGateway, st wire.BuildStatus, wantBuild bool, wantPhases ...string) error {
	links := []string{}
	if wantBuild {
		if st.Reports.Build == "" {
			return fmt.Errorf("%s: no build report", st.ID)
		}
		links = append(links, st.Reports.Build)
	}
	for _, ph := range wantPhases {
		l, ok := st.Reports.Phases[ph]
		if !ok {
			return fmt.Errorf("%s: no report of phase %s (%v)", st.ID, ph, st.Reports.Phases)
		}
		links = append(links, l)
	}
	for _, l := range links {
		code, body, err := httpGet(context.Background(), fmt.Sprintf("http://127.0.0.1:%d%s", g.p.Status, l))
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("GET %s at the gateway: %d %s", l, code, body)
		}
	}
	return nil
}

// reportFiles counts the report files under a gateway's checkpoint folder.
func reportFiles(dir string) int {
	n := 0
	_ = filepath.WalkDir(filepath.Join(dir, "checkpoints"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.Contains(p, "report") && strings.HasSuffix(p, ".json") {
			n++
		}
		return nil
	})
	return n
}

// counter counts accepted events per build, for tests that check none is missing.
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) add(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[id]++
}

func (c *counter) get(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[id]
}
