package main

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/buildmon/buildmon/cmd/buildmon/internal/testcounter"
)

// testModeEnv turns the test binary into the buildmon CLI, so that exec tests and commands
// nested in `buildmon phase` need no separate build. With the first argument "__counter FILE
// [N]" it is instead a command that appends a line to FILE every 20ms (N lines, or forever).
const testModeEnv = "BUILDMON_TEST_MODE"

func TestMain(m *testing.M) {
	if os.Getenv(testModeEnv) == "cli" {
		if len(os.Args) > 2 && os.Args[1] == "__counter" {
			os.Exit(testcounter.Run(os.Args[2:]))
		}
		os.Exit(run(os.Args[1:], os.Environ(), os.Stdin, os.Stdout, os.Stderr))
	}
	goleak.VerifyTestMain(m)
}
