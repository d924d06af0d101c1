package sysbench

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// The scenario tests start this test binary as a stand-in for the collector.
	if os.Getenv(fakeCollectorEnv) == "1" {
		os.Exit(fakeCollectorMain(os.Args[1:]))
	}
	goleak.VerifyTestMain(m)
}
