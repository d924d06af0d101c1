package supervise

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"

	"github.com/buildmon/buildmon/cmd/buildmon/internal/testcounter"
)

// runHelper is the command the tests supervise:
//
//	exit N           exits with N
//	counter FILE     appends a line to FILE every 20ms until killed
//	spawn-counter F  runs "counter F" as its own child and waits, so that the counting
//	                 process is a grandchild: only a signal to the whole group reaches it
func runHelper(mode string, args []string) int {
	switch mode {
	case "exit":
		n, _ := strconv.Atoi(args[0])
		return n
	case "counter":
		return testcounter.Run(args)
	case "spawn-counter":
		self, _ := os.Executable()
		c := exec.Command(self, args...)
		c.Env = append(os.Environ(), helperEnv+"=counter")
		c.Stderr = os.Stderr
		if err := c.Run(); err != nil {
			return 1
		}
		return 0
	}
	fmt.Fprintln(os.Stderr, "unknown helper mode", mode)
	return 2
}
