package supervise

import "syscall"

// setParentDeathSignal kills the command if buildmon itself is killed (SIGKILL cannot be
// forwarded), so that a canceled CI job does not leave it running in its separate group.
func setParentDeathSignal(attr *syscall.SysProcAttr) {
	attr.Pdeathsig = syscall.SIGKILL
}
