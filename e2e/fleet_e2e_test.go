//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/buildmon/buildmon/internal/wire"
)

// TestFleetBuildsReachOneGateway runs 30 builds of 6 pipelines spread over 3 agents: every
// build is at exactly one gateway, with the phases, steps and progress its agent shows, and
// the reports of its phases and of the build are written and served there. Then a run of a
// pipeline on a host that never ran it gets an ETA at its gateway from the runs other hosts
// finished, where its agent has none.
func TestFleetBuildsReachOneGateway(t *testing.T) {
	f := startFleet(t, fleetOptions{jaeger: true})
	const builds, pipelines = 30, 6
	id := func(i int) string { return fmt.Sprintf("fleet-%02d", i) }
	pipeline := func(i int) string { return fmt.Sprintf("pipeline-%d", i%pipelines) }
	agent := func(i int) *fleetAgent { return f.agents[i%len(f.agents)] }
	// Builds 0–23 run to the end (client times: INIT 1 s, BUILD 3 s, TEST 2 s, a minute ago);
	// 24–29 stop in the middle of BUILD.
	runsStart := time.Now().Add(-time.Minute)
	var wg sync.WaitGroup
	for i := 0; i < builds; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if i < 24 {
				runBuild(t, agent(i), id(i), pipeline(i), runsStart)
				return
			}
			a := agent(i)
			a.mustPost(t, startEvent(id(i), pipeline(i)))
			a.mustPost(t, phaseEvents(id(i), "INIT", 1)...)
			a.mustPost(t, phaseEvents(id(i), "BUILD", 3)[:3]...) // started, 2 of 3 steps
		}(i)
	}
	wg.Wait()

	perGateway := make([]int, len(f.gateways))
	eventually(t, 60*time.Second, func() error {
		clear(perGateway)
		for i := 0; i < builds; i++ {
			g, st, err := f.atOneGatewayAsOnAgent(agent(i), id(i))
			if err != nil {
				return err
			}
			perGateway[g]++
			if i < 24 {
				if err := reportsAt(f.gateways[g], st, true, "INIT", "BUILD", "TEST"); err != nil {
					return err
				}
			} else if err := reportsAt(f.gateways[g], st, false, "INIT"); err != nil {
				return err
			}
		}
		// The report files are written on the gateway's disk, not only served.
		for i, g := range f.gateways {
			if n := reportFiles(g.dir); perGateway[i] > 0 && n == 0 {
				return fmt.Errorf("gateway %d has builds but no report files under its checkpoint folder", i)
			}
		}
		return nil
	})
	t.Logf("builds per gateway: %v", perGateway)

	// The gateways send the traces the agents made (through the router) to Jaeger: one trace
	// per build, as a single collector sends it.
	t.Run("traces in Jaeger", func(t *testing.T) {
		for i := 0; i < 24; i++ {
			checkBuildTrace(t, f.jaeger, pipeline(i), id(i), "success", map[string]int{"INIT": 1, "BUILD": 3, "TEST": 2}, "")
		}
	})

	// Builds 24–29 still run and are re-emitted every second: Prometheus takes every remote
	// write request of the gateways.
	t.Run("Prometheus refuses nothing", func(t *testing.T) {
		for i, g := range f.gateways {
			for _, refused := range []string{"duplicate sample for timestamp", "out of order sample"} {
				if strings.Contains(g.out.String(), refused) {
					t.Errorf("gateway %d: Prometheus refused a remote write request (%q in its log)", i, refused)
				}
			}
		}
	})

	t.Run("fleet ETA for a pipeline on a host that never ran it", func(t *testing.T) {
		// pipeline-0 ran only on fleet-host-1 (build i runs on agent i%3, pipeline i%6).
		a := f.agents[1]
		const newRun = "fleet-eta-new-host"
		a.mustPost(t, startEvent(newRun, pipeline(0)))
		a.mustPost(t, phaseEvents(newRun, "INIT", 1)[:1]...) // INIT started, no step yet: progress 0
		eventually(t, 30*time.Second, func() error {
			agentView, found, err := buildAt(a.p.Status, newRun)
			if err != nil || !found {
				return fmt.Errorf("at the agent: %v %v", found, err)
			}
			if agentView.ETASeconds != nil {
				return fmt.Errorf("the agent on %s, which never ran %s, has an ETA %v", a.host, pipeline(0), *agentView.ETASeconds)
			}
			at, sts, err := f.gatewaysOf(newRun)
			if err != nil {
				return err
			}
			if len(at) != 1 {
				return fmt.Errorf("at gateways %v", at)
			}
			// The history's runs took 6 s (INIT 1 s, BUILD 3 s, TEST 2 s); this run is in INIT.
			if sts[0].ETASeconds == nil || *sts[0].ETASeconds < 2 || *sts[0].ETASeconds > 12 {
				return fmt.Errorf("ETA at the gateway %v, want 2-12 s from the history's 6 s runs: %+v", sts[0].ETASeconds, sts[0])
			}
			// The gateway's per-phase history of the pipeline, built by fleet-host-1's runs.
			if sts[0].ETASource != wire.ETASourceHistory {
				return fmt.Errorf("ETA source %q at the gateway, want %q", sts[0].ETASource, wire.ETASourceHistory)
			}
			t.Logf("ETA of %s at gateway %d: %.2f s from %s (no ETA at its agent)", newRun, at[0], *sts[0].ETASeconds, sts[0].ETASource)
			return nil
		})
	})
}

// TestFleetAgentKilledMidBuild kills an agent with SIGKILL in the middle of a build (an
// ephemeral runner dying): its gateway keeps the build's last state and the reports of every
// phase that finished.
func TestFleetAgentKilledMidBuild(t *testing.T) {
	f := startFleet(t, fleetOptions{agents: 1})
	a := f.agents[0]
	const id = "fleet-ephemeral"
	a.mustPost(t, startEvent(id, "ephemeral"))
	a.mustPost(t, phaseEvents(id, "INIT", 1)...)
	a.mustPost(t, phaseEvents(id, "BUILD", 3)...)
	a.mustPost(t, phaseEvents(id, "TEST", 2)[:2]...) // TEST running, 1 of 2 steps
	var last int
	eventually(t, 30*time.Second, func() error {
		g, st, err := f.atOneGatewayAsOnAgent(a, id)
		if err != nil {
			return err
		}
		last = g
		return reportsAt(f.gateways[g], st, false, "INIT", "BUILD")
	})
	a.kill()
	time.Sleep(3 * time.Second) // three report intervals without the agent
	st, found, err := buildAt(f.gateways[last].p.Status, id)
	if err != nil || !found {
		t.Fatalf("the gateway lost the build of the dead agent: %v %v", found, err)
	}
	if st.State != "running" || st.Phase != "TEST" {
		t.Fatalf("gateway shows %s in %s, want its last state: running in TEST", st.State, st.Phase)
	}
	for _, ph := range st.Phases {
		want := map[string]int64{"INIT": 1, "BUILD": 3, "TEST": 1}[ph.Name]
		if ph.StepsCompleted != want {
			t.Fatalf("phase %s: %d steps completed at the gateway, want %d", ph.Name, ph.StepsCompleted, want)
		}
	}
	if err := reportsAt(f.gateways[last], st, false, "INIT", "BUILD"); err != nil {
		t.Fatal(err)
	}
}

// driveSteps posts one step of BUILD to each build every 100 ms until stop is closed, counting
// the steps its agent acknowledged (202).
func driveSteps(t testing.TB, f *testFleet, ids []string, agentOf func(int) *fleetAgent, acked *counter, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func(i int, id string) {
			defer wg.Done()
			for seq := 0; ; seq++ {
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
				ev := fmt.Sprintf(`{"id":"%s-step-%d","type":"step_completed","build_id":%q,"phase":"BUILD"}`, id, seq, id)
				if ok, _ := agentOf(i).post(ev); ok {
					acked.add(id)
				}
			}
		}(i, id)
	}
	return &wg
}

// startLongBuilds starts n builds spread over the agents with a BUILD phase of 100000 steps.
func startLongBuilds(t testing.TB, f *testFleet, prefix string, n int) ([]string, func(int) *fleetAgent) {
	ids := make([]string, n)
	agentOf := func(i int) *fleetAgent { return f.agents[i%len(f.agents)] }
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%02d", prefix, i)
		agentOf(i).mustPost(t,
			fmt.Sprintf(`{"id":"%s-start","type":"build_started","build_id":%q,"pipeline":"long-%d","phases":[{"name":"BUILD","steps":100000}]}`, ids[i], ids[i], i%6),
			fmt.Sprintf(`{"id":"%s-build","type":"phase_started","build_id":%q,"phase":"BUILD"}`, ids[i], ids[i]))
	}
	return ids, agentOf
}

// finishAll finishes every build and waits until each gateway shows it finished with every
// step its agent acknowledged.
func finishAll(t testing.TB, f *testFleet, ids []string, agentOf func(int) *fleetAgent, acked *counter, timeout time.Duration) {
	t.Helper()
	for i, id := range ids {
		agentOf(i).mustPost(t, finishEvent(id))
	}
	eventually(t, timeout, func() error {
		for i, id := range ids {
			_, st, err := f.atOneGatewayAsOnAgent(agentOf(i), id)
			if err != nil {
				return err
			}
			if st.State != "finished" {
				return fmt.Errorf("%s is %s at its gateway", id, st.State)
			}
			if got, want := st.Phases[0].StepsCompleted, int64(acked.get(id)); got != want {
				return fmt.Errorf("%s: %d steps at its gateway, %d acknowledged by its agent", id, got, want)
			}
		}
		return nil
	})
}

// TestFleetGatewayKilledAndRestarted kills a gateway with SIGKILL while builds run and starts
// it again: its builds come back from its checkpoint, and at the end every build is at its
// gateway with every step its agent acknowledged.
func TestFleetGatewayKilledAndRestarted(t *testing.T) {
	f := startFleet(t, fleetOptions{})
	ids, agentOf := startLongBuilds(t, f, "fleet-gwkill", 12)
	acked := &counter{}
	stop := make(chan struct{})
	wg := driveSteps(t, f, ids, agentOf, acked, stop)
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()

	// Which gateway holds which builds? The one with the most is killed.
	held := make([][]string, len(f.gateways))
	eventually(t, 30*time.Second, func() error {
		for g := range held {
			held[g] = held[g][:0]
		}
		for _, id := range ids {
			at, _, err := f.gatewaysOf(id)
			if err != nil {
				return err
			}
			if len(at) != 1 {
				return fmt.Errorf("%s at gateways %v", id, at)
			}
			held[at[0]] = append(held[at[0]], id)
		}
		return nil
	})
	victim := 0
	for g := range held {
		if len(held[g]) > len(held[victim]) {
			victim = g
		}
	}
	t.Logf("killing gateway %d, which holds %d of %d builds", victim, len(held[victim]), len(ids))
	time.Sleep(2 * time.Second) // let a checkpoint of them be written
	gw := f.gateways[victim]
	gw.kill()
	time.Sleep(3 * time.Second) // agents keep accepting steps meanwhile
	gw.restart()
	// Straight after the restart, the builds are there from the checkpoint.
	for _, id := range held[victim] {
		if _, found, err := buildAt(gw.p.Status, id); err != nil || !found {
			t.Fatalf("%s not restored from gateway %d's checkpoint: %v %v", id, victim, found, err)
		}
	}
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()
	finishAll(t, f, ids, agentOf, acked, 60*time.Second)
}

// TestFleetCentralTierDown kills the router and both gateways for 30 s: the agents keep
// accepting events and pause builds locally (a CRITICAL host alert raised on one agent while
// the central tier is down), and after recovery every build's final state reaches its gateway
// with every acknowledged step.
func TestFleetCentralTierDown(t *testing.T) {
	f := startFleet(t, fleetOptions{})
	ids, agentOf := startLongBuilds(t, f, "fleet-down", 6)
	acked := &counter{}
	stop := make(chan struct{})
	wg := driveSteps(t, f, ids, agentOf, acked, stop)
	eventually(t, 30*time.Second, func() error {
		for _, id := range ids {
			if at, _, err := f.gatewaysOf(id); err != nil || len(at) != 1 {
				return fmt.Errorf("%s at gateways %v (%v)", id, at, err)
			}
		}
		return nil
	})
	f.router.kill()
	for _, g := range f.gateways {
		g.kill()
	}
	down := time.Now()
	// While the central tier is down, fleet-host-2's memory rule turns CRITICAL (its agent
	// restarts with a threshold below any real use); the agents answer 202, and fleet-host-2's
	// builds, and only those, are paused.
	f.agents[1].stop()
	f.agents[1].restart("BUILDMON_MEMORY_CRITICAL=0.01")
	before := make([]int, len(ids))
	for i, id := range ids {
		before[i] = acked.get(id)
	}
	eventually(t, 30*time.Second, func() error {
		for i, id := range ids {
			st, found, err := buildAt(agentOf(i).p.Status, id)
			if err != nil || !found {
				return fmt.Errorf("%s at its agent: %v %v", id, found, err)
			}
			if wantPaused := agentOf(i) == f.agents[1]; st.Paused != wantPaused {
				return fmt.Errorf("%s on %s: paused %v, want %v", id, agentOf(i).host, st.Paused, wantPaused)
			}
		}
		return nil
	})
	time.Sleep(time.Until(down.Add(30 * time.Second)))
	for i, id := range ids {
		if acked.get(id) <= before[i] {
			t.Fatalf("%s: no event accepted by its agent while the central tier was down", id)
		}
	}
	for _, g := range f.gateways {
		g.restart()
	}
	f.router.restart()
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()
	finishAll(t, f, ids, agentOf, acked, 90*time.Second)
}

// TestFleetCriticalHostAlert: a CRITICAL host alert on one agent pauses that host's builds
// only (at the agents and at the gateways), and Alertmanager holds it once: one alert, sent by
// the one gateway that holds the host.
func TestFleetCriticalHostAlert(t *testing.T) {
	f := startFleet(t, fleetOptions{alertmanager: true, agentEnv: map[int][]string{1: env("BUILDMON_MEMORY_CRITICAL", "0.01")}})
	ids, agentOf := startLongBuilds(t, f, "fleet-critical", 6)
	eventually(t, 30*time.Second, func() error {
		for i, id := range ids {
			_, st, err := f.atOneGatewayAsOnAgent(agentOf(i), id)
			if err != nil {
				return err
			}
			if wantPaused := agentOf(i) == f.agents[1]; st.Paused != wantPaused {
				return fmt.Errorf("%s on %s: paused %v at its gateway, want %v", id, agentOf(i).host, st.Paused, wantPaused)
			}
		}
		return nil
	})
	eventually(t, 30*time.Second, func() error {
		alerts, err := f.am.alerts(true)
		if err != nil {
			return err
		}
		var ours []amAlert
		for _, a := range alerts {
			if a.Labels["alertname"] == "host_memory_critical" {
				ours = append(ours, a)
			}
		}
		if len(ours) != 1 {
			return fmt.Errorf("%d host_memory_critical alerts in Alertmanager, want 1: %+v", len(ours), ours)
		}
		if ours[0].Labels["host"] != f.agents[1].host || !strings.EqualFold(ours[0].Labels["severity"], "critical") {
			return fmt.Errorf("alert labels %v, want host %s, severity critical", ours[0].Labels, f.agents[1].host)
		}
		return nil
	})
	// Exactly one gateway holds the host's alert (and so sends it).
	holders := 0
	for _, g := range f.gateways {
		_, body, err := httpGet(t.Context(), fmt.Sprintf("http://127.0.0.1:%d/v1/hosts/%s", g.p.Status, f.agents[1].host))
		if err == nil && strings.Contains(string(body), "host_memory_critical") {
			holders++
		}
	}
	if holders != 1 {
		t.Fatalf("%d gateways hold the host alert, want 1", holders)
	}
}
