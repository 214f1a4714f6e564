package sandbox

import "syscall"

// serverProcAttr puts the server in its own process group, so a Ctrl-C in
// the terminal reaches only the sandbox, which then stops the server in
// order; and if the sandbox is killed outright, the kernel sends the server
// SIGINT (a fast shutdown) through the parent-death signal.
func serverProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGINT, Credential: cred}
}
