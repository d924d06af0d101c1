//go:build e2e

package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestSlowBodiesDoNotBlowMemory: 200 connections announce a 1 MiB body and trickle it. The
// receiver's body buffers grow with the bytes that arrive, not to the announced size (before,
// every connection reserved 1 MiB at once and 1,000 of them took the collector past 1 GB),
// and a normal build posted meanwhile is accepted and shown by the status API.
func TestSlowBodiesDoNotBlowMemory(t *testing.T) {
	const conns, announced = 200, 1 << 20
	p := newPorts(t)
	dir := t.TempDir()
	col := startRel(t, relConfig{Ports: p, Dir: dir})
	c := newAPIClient(p, "http")
	if code, body, _, err := c.post(`{"type":"build_started","build_id":"warm","pipeline":"p"}`); err != nil || code != http.StatusAccepted {
		t.Fatalf("warm-up event: %d %s %v", code, body, err)
	}
	base := vmRSS(t, col.cmd.Process.Pid)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() {
		close(stop)
		wg.Wait()
	})
	addr := fmt.Sprintf("127.0.0.1:%d", p.Events)
	for i := range conns {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		// With Expect: 100-continue the server answers "100 Continue" when the handler starts
		// reading the body: then the handler holds whatever it reserved for it.
		fmt.Fprintf(conn, "POST /v1/events HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-ndjson\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", addr, announced)
		_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		line, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil || !strings.Contains(line, "100 Continue") {
			t.Fatalf("connection %d: %q %v", i, line, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.Close()
			tick := time.NewTicker(500 * time.Millisecond)
			defer tick.Stop()
			for {
				if _, err := io.WriteString(conn, " "); err != nil {
					return
				}
				select {
				case <-stop:
					return
				case <-tick.C:
				}
			}
		}()
	}

	// A normal build meanwhile: accepted, in the registry and shown by the status API.
	code, body, _, err := c.post(
		`{"id":"n1","type":"build_started","build_id":"normal","pipeline":"p","phases":[{"name":"BUILD","steps":3}]}`,
		`{"id":"n2","type":"phase_started","build_id":"normal","phase":"BUILD"}`,
		`{"id":"n3","type":"step_completed","build_id":"normal","phase":"BUILD","count":2}`)
	if err != nil || code != http.StatusAccepted {
		t.Fatalf("normal build during the flood: %d %s %v", code, body, err)
	}
	eventually(t, 30*time.Second, func() error {
		n, err := stepsCompleted(c, "normal", "BUILD")
		if err != nil {
			return err
		}
		if n != 2 {
			return fmt.Errorf("status API shows %d steps, want 2", n)
		}
		return nil
	})

	grown := vmRSS(t, col.cmd.Process.Pid) - base
	// Reserving the announced size would be conns MiB; what arrived is a few KiB.
	if limit := int64(conns * announced / 4); grown > limit {
		t.Fatalf("RSS grew by %d MiB with %d connections announcing 1 MiB each (bound %d MiB)", grown>>20, conns, limit>>20)
	}
	t.Logf("RSS %d MiB → %+d MiB with %d trickling connections", base>>20, grown>>20, conns)
}

// TestEventsServerClosesSlowBodies: with the default config a connection that trickles its
// body does not stay open: events.read_timeout (30s) cuts it with a 408. Before, confighttp's
// default had no read timeout and such connections stayed open for minutes.
func TestEventsServerClosesSlowBodies(t *testing.T) {
	p := newPorts(t)
	dir := t.TempDir()
	startRel(t, relConfig{Ports: p, Dir: dir})
	addr := fmt.Sprintf("127.0.0.1:%d", p.Events)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/events HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{", addr)
	go func() {
		// A byte every second, far slower than the body needs.
		for range 120 {
			time.Sleep(time.Second)
			if _, err := io.WriteString(conn, " "); err != nil {
				return
			}
		}
	}()
	_ = conn.SetReadDeadline(time.Now().Add(90 * time.Second)) // a hang fails; the bound is 30s
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a trickling body: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("status %d, want 408", resp.StatusCode)
	}
}

// TestConnectionFloodKeepsFilesWritable: 1,500 connections that send nothing. The receiver
// holds at most events.max_connections (512 here) of them: each further one closes the oldest
// silent connection, so the collector's open file descriptors stay bounded (before, each one
// took a descriptor and 20,000 of them made checkpoint writes fail), checkpoints keep being
// written, and a real client is still served in the middle of the flood.
func TestConnectionFloodKeepsFilesWritable(t *testing.T) {
	const conns, maxConnections = 1500, 512
	p := newPorts(t)
	dir := t.TempDir()
	col := startRel(t, relConfig{Ports: p, Dir: dir, MaxConnections: maxConnections})
	pid := col.cmd.Process.Pid
	fds := func() int {
		entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		if err != nil {
			t.Fatal(err)
		}
		return len(entries)
	}
	base := fds()
	addr := fmt.Sprintf("127.0.0.1:%d", p.Events)
	for i := range conns {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		t.Cleanup(func() { conn.Close() })
	}
	floodAt := time.Now()
	// Every connection has reached the collector or its accept queue now; give the collector
	// the time to take them (each one past the cap closes the oldest silent one, so the count
	// below does not depend on the wait).
	eventually(t, 15*time.Second, func() error {
		if n := fds(); n < base+maxConnections {
			return fmt.Errorf("%d descriptors, the cap not reached yet", n)
		}
		return nil
	})
	if n := fds(); n > base+maxConnections+50 {
		t.Fatalf("%d open descriptors with %d connections (before the flood %d; cap %d)", n, conns, base, maxConnections)
	}
	c := newAPIClient(p, "http")
	if code, body, _, err := c.post(`{"type":"build_started","build_id":"amid-flood","pipeline":"flood"}`); err != nil || code != http.StatusAccepted {
		t.Fatalf("a build posted during the flood: %d %s %v", code, body, err)
	}
	eventually(t, 15*time.Second, func() error {
		newest := time.Time{}
		_ = filepath.Walk(filepath.Join(dir, "checkpoints"), func(_ string, info os.FileInfo, err error) error {
			if err == nil && !info.IsDir() && strings.HasSuffix(info.Name(), ".ckpt") && info.ModTime().After(newest) {
				newest = info.ModTime()
			}
			return nil
		})
		if !newest.After(floodAt) {
			return fmt.Errorf("no checkpoint written since the flood began")
		}
		return nil
	})
}
