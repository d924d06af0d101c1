// Package testcounter is what the client's tests use to see whether a supervised command
// runs: a process that appends a line to a file every 20 ms, and the checks that watch that
// file grow or stall. Only tests import it.
package testcounter // import "github.com/buildmon/buildmon/cmd/buildmon/internal/testcounter"

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Period is how often the counter appends a line.
const Period = 20 * time.Millisecond

// Run is the counter's main: args are FILE [N]; it appends a line to FILE every Period, N
// times or until it is killed.
func Run(args []string) int {
	f, err := os.OpenFile(args[0], os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	n := -1
	if len(args) > 1 {
		n, _ = strconv.Atoi(args[1])
	}
	for i := 0; n < 0 || i < n; i++ {
		fmt.Fprintln(f, i)
		time.Sleep(Period)
	}
	return 0
}

// Lines returns the lines the counter wrote to path so far (0 while there is no file).
func Lines(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return strings.Count(string(b), "\n")
}

// Grows reports whether the counter file grows within a generous window.
func Grows(path string) bool {
	a := Lines(path)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(Period)
		if Lines(path) > a {
			return true
		}
	}
	return false
}

// Stalls reports whether the counter file stays the same over a window many times the
// counter's period, after letting a write in progress settle.
func Stalls(path string) bool {
	time.Sleep(5 * Period)
	a := Lines(path)
	time.Sleep(20 * Period)
	return Lines(path) == a
}

// Eventually polls cond with generous time; the assertions are about state, not speed.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
