//go:build windows

package supervise

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
)

// Windows has no SIGSTOP and no process groups that a signal stops. Run puts the command into
// a job object instead: every process the command starts joins the job (unless it breaks away
// on purpose), so a pause suspends each process of the job (NtSuspendProcess, what Process
// Explorer's "Suspend" does) and the end of the pause resumes each (NtResumeProcess). The job
// kills its processes when buildmon's handle to it closes, so a canceled CI job that kills
// buildmon does not leave the build running, as the parent-death signal does on Linux.

var (
	ntdll            = windows.NewLazySystemDLL("ntdll.dll")
	ntSuspendProcess = ntdll.NewProc("NtSuspendProcess")
	ntResumeProcess  = ntdll.NewProc("NtResumeProcess")
)

// Run starts cmd in a job object and supervises it until it exits. It returns the command's
// exit code and an error only when the command could not be started (code 126 or 127). When
// the job cannot be made, the command runs unpaused and Run says so.
func Run(ctx context.Context, cmd *exec.Cmd, opts Options) (int, error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	// Started suspended, the command cannot start a child before it is in the job.
	cmd.SysProcAttr.CreationFlags |= windows.CREATE_SUSPENDED
	if err := cmd.Start(); err != nil {
		return StartFailureCode(err), err
	}
	var g group
	j, resumed, err := newJob(uint32(cmd.Process.Pid))
	if !resumed {
		// Still suspended and out of reach: it would never run.
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return ExitCannotExecute, fmt.Errorf("starting %s: %w", cmd.Path, err)
	}
	if err != nil {
		g = process{cmd.Process}
		if opts.Poll != nil {
			opts.logf("the command cannot be paused (%v); it runs unpaused", err)
			opts.Poll = nil
		}
	} else {
		defer j.close()
		g = j
	}
	s := &supervisor{g: g, opts: &opts, now: time.Now}

	waited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(waited)
	}()
	s.loop(ctx, waited)
	return cmd.ProcessState.ExitCode(), nil
}

// job is the job object that holds the command's processes.
type job struct {
	h   windows.Handle
	pid uint32 // the command's
}

// newJob makes a job object, puts the suspended process pid into it and resumes the process.
// The process is resumed whatever else fails; resumed is false only when it could not be.
func newJob(pid uint32) (j *job, resumed bool, err error) {
	p, err := windows.OpenProcess(windows.PROCESS_SET_QUOTA|windows.PROCESS_TERMINATE|windows.PROCESS_SUSPEND_RESUME, false, pid)
	if err != nil {
		return nil, false, fmt.Errorf("opening process %d: %w", pid, err)
	}
	defer func() { _ = windows.CloseHandle(p) }()
	j, err = assignJob(p)
	if rerr := ntCall(ntResumeProcess, p); rerr != nil {
		if j != nil {
			j.close()
		}
		return nil, false, errors.Join(err, fmt.Errorf("resuming process %d: %w", pid, rerr))
	}
	if err != nil {
		return nil, true, err
	}
	j.pid = pid
	return j, true, nil
}

func assignJob(p windows.Handle) (*job, error) {
	h, err := windows.CreateJobObject(nil, nil)
	if err != nil {
		return nil, fmt.Errorf("creating a job object: %w", err)
	}
	j := &job{h: h}
	limits := windows.JOBOBJECT_EXTENDED_LIMIT_INFORMATION{}
	limits.BasicLimitInformation.LimitFlags = windows.JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
	if _, err := windows.SetInformationJobObject(h, windows.JobObjectExtendedLimitInformation,
		uintptr(unsafe.Pointer(&limits)), uint32(unsafe.Sizeof(limits))); err != nil {
		j.close()
		return nil, fmt.Errorf("setting the job's limits: %w", err)
	}
	if err := windows.AssignProcessToJobObject(h, p); err != nil {
		j.close()
		return nil, fmt.Errorf("assigning the command to the job: %w", err)
	}
	return j, nil
}

func (j *job) close() { _ = windows.CloseHandle(j.h) }

// maxJobProcesses bounds the processes a pause suspends; a build tree is far smaller.
const maxJobProcesses = 4096

// jobProcessIDs is JOBOBJECT_BASIC_PROCESS_ID_LIST with room for maxJobProcesses.
type jobProcessIDs struct {
	assigned, listed uint32
	ids              [maxJobProcesses]uintptr
}

// pids lists the processes in the job now.
func (j *job) pids() ([]uint32, error) {
	var list jobProcessIDs
	if err := windows.QueryInformationJobObject(j.h, windows.JobObjectBasicProcessIdList,
		uintptr(unsafe.Pointer(&list)), uint32(unsafe.Sizeof(list)), nil); err != nil {
		return nil, fmt.Errorf("listing the job's processes: %w", err)
	}
	return processIDs(list.ids[:], list.listed), nil
}

// each calls nt (NtSuspendProcess or NtResumeProcess) on every process of the job. A process
// that exited in between is skipped; the first other failure is returned after trying all.
func (j *job) each(nt *windows.LazyProc) error {
	pids, err := j.pids()
	if err != nil {
		return err
	}
	var errs []error
	for _, pid := range pids {
		p, err := windows.OpenProcess(windows.PROCESS_SUSPEND_RESUME, false, pid)
		if err != nil {
			continue // exited since the list was made
		}
		if err := ntCall(nt, p); err != nil {
			errs = append(errs, fmt.Errorf("process %d: %w", pid, err))
		}
		_ = windows.CloseHandle(p)
	}
	return errors.Join(errs...)
}

func (j *job) stop() error { return j.each(ntSuspendProcess) }
func (j *job) cont() error { return j.each(ntResumeProcess) }

// signal: an interrupt (Ctrl+C, Ctrl+Break) reached the command from the console it shares
// with buildmon already; buildmon only makes sure a paused command is resumed to handle it
// (the supervisor continues a stopped group after forwarding).
func (j *job) signal(os.Signal) error { return nil }

func (j *job) String() string {
	return fmt.Sprintf("the processes of job %d (the command and its children)", j.pid)
}

// ntCall calls an ntdll function taking a process handle and returning an NTSTATUS.
func ntCall(proc *windows.LazyProc, p windows.Handle) error {
	if err := proc.Find(); err != nil {
		return err
	}
	status, _, _ := proc.Call(uintptr(p))
	if status != 0 {
		return windows.NTStatus(status)
	}
	return nil
}

// process is the command alone, when no job could be made: it cannot be paused.
type process struct{ p *os.Process }

func (process) stop() error            { return errors.New("no job object to suspend") }
func (process) cont() error            { return nil }
func (process) signal(os.Signal) error { return nil }
func (g process) String() string       { return fmt.Sprintf("process %d", g.p.Pid) }

// forwardable: the interrupts Go reports on Windows (Ctrl+C, Ctrl+Break; console close as
// SIGTERM).
func forwardable(sig os.Signal) bool { return isTermination(sig) }

func isTermination(sig os.Signal) bool {
	return sig == os.Interrupt || sig == syscall.SIGTERM
}
