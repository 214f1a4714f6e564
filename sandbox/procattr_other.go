//go:build !linux

package sandbox

import "syscall"

// serverProcAttr puts the server in its own process group, so a Ctrl-C in
// the terminal reaches only the sandbox, which then stops the server in
// order. Without Linux's parent-death signal, a server whose sandbox was
// killed outright is stopped by the next sandbox's start instead.
func serverProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Credential: cred}
}
