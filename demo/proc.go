package demo

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// StopTimeout is how long a child has between SIGTERM and SIGKILL.
const StopTimeout = 5 * time.Second

// proc is one child process in its own process group, with stdout and
// stderr going to its own file in the log directory.
type proc struct {
	label   string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{} // closed once Wait returned
	err     error         // Wait's result, set before done is closed
}

// startProc starts bin with args; its output goes to logDir/label.log and
// its pid to logDir/label.pid.
func startProc(label, logDir, bin string, args ...string) (*proc, error) {
	logPath := filepath.Join(logDir, label+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Close() // the child holds its own copy of the descriptor
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", label, err)
	}
	p := &proc{label: label, logPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := os.WriteFile(filepath.Join(logDir, label+".pid"), []byte(strconv.Itoa(p.pid())+"\n"), 0o644); err != nil {
		p.stop(StopTimeout)
		return nil, err
	}
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process group (and SIGCONT, for a child someone
// froze with SIGSTOP), waits up to timeout, then sends SIGKILL, and returns
// once the process is reaped. Whatever else is left in the group afterwards
// is killed too.
func (p *proc) stop(timeout time.Duration) error {
	pgid := p.pid() // the child leads its own group
	var killed bool
	if !p.exited() {
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		_ = syscall.Kill(-pgid, syscall.SIGCONT)
		t := time.NewTimer(timeout)
		select {
		case <-p.done:
			t.Stop()
		case <-t.C:
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			killed = true
			<-p.done
		}
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL) // stragglers; ESRCH when none
	if killed {
		return fmt.Errorf("%s (pid %d) did not stop within %s after SIGTERM; killed", p.label, p.pid(), timeout)
	}
	return nil
}

// exitError describes an early exit, with the end of the child's log.
func (p *proc) exitError() error {
	return fmt.Errorf("%s (pid %d) exited early: %v\n--- last lines of %s ---\n%s",
		p.label, p.pid(), p.err, p.logPath, tail(p.logPath, 15))
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.TrimSpace(string(bytes.Join(lines, []byte("\n"))))
}

// Alive reports whether a process with this pid, or any process in the
// group it led, still exists (zombies included). Tests use it to check that
// the demo leaves nothing behind.
func Alive(pid int) bool {
	for _, target := range []int{pid, -pid} {
		err := syscall.Kill(target, 0)
		if err == nil || errors.Is(err, syscall.EPERM) {
			return true
		}
	}
	return false
}

// lockDir takes an exclusive lock on dir/meshdemo.lock for as long as the
// returned file stays open, or says that another demo holds it.
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, "meshdemo.lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("another demo is running with the log directory %s (stop it, or choose another directory with --logs)", dir)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f, nil
}
