package main

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// testModeEnv turns the test binary into the buildmon CLI, so that exec tests and commands
// nested in `buildmon phase` need no separate build. With the first argument "__counter FILE
// [N]" it is instead a command that appends a line to FILE every 20ms (N lines, or forever).
const testModeEnv = "BUILDMON_TEST_MODE"

func TestMain(m *testing.M) {
	if os.Getenv(testModeEnv) == "cli" {
		if len(os.Args) > 2 && os.Args[1] == "__counter" {
			os.Exit(counter(os.Args[2:]))
		}
		os.Exit(run(os.Args[1:], os.Environ(), os.Stdin, os.Stdout, os.Stderr))
	}
	goleak.VerifyTestMain(m)
}

func counter(args []string) int {
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
		time.Sleep(20 * time.Millisecond)
	}
	return 0
}
