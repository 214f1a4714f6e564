package sandbox

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"wgbot/postgres/pgtest"
)

// childEnv makes the test binary play one of the processes of
// TestClusterOwnerAcrossProcesses instead of running the tests.
const childEnv = "WGBOT_SANDBOX_TEST_CHILD"

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "":
		pgtest.Main(m)
	case "owner":
		ownerChild()
	case "churn":
		churnChild()
	default:
		fmt.Fprintln(os.Stderr, "unknown child", os.Getenv(childEnv))
		os.Exit(2)
	}
	os.Exit(0)
}

// ownerReport is what an owner child saw: the account clusterOwner gave
// it and what a program run with that account's credential (as initdb is)
// found for its own uid.
type ownerReport struct {
	Name     string
	UID, GID uint32
	IDName   string // `id -un` run as the account: getpwuid of its uid, as initdb does
	Err      string
}

// ownerChild waits for the go signal (a line on stdin), so that all the
// children ask at the same moment, then takes the cluster's account, runs
// a program as it, and reports on stdout.
func ownerChild() {
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	var r ownerReport
	dir := os.Getenv("CHILD_DIR")
	if err := os.MkdirAll(dir, 0o711); err != nil {
		r.Err = err.Error()
		_ = json.NewEncoder(os.Stdout).Encode(r)
		return
	}
	owner, release, err := clusterOwner(os.Getenv("CHILD_ACCOUNT"), dir, filepath.Join(dir, "data"),
		slog.New(slog.NewTextHandler(os.Stderr, nil)))
	if err != nil {
		r.Err = err.Error()
	} else {
		r.Name, r.UID, r.GID = owner.name, owner.uid, owner.gid
		// Some time between the look-up and the exec, as StartCluster has
		// (the leftover check, the password file, the chown).
		time.Sleep(300 * time.Millisecond)
		cmd := exec.Command("id", "-un")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: owner.credential()}
		out, err := cmd.CombinedOutput()
		r.IDName = strings.TrimSpace(string(out))
		if err != nil {
			r.Err = fmt.Sprintf("id -un as uid %d: %v: %s", owner.uid, err, out)
		}
		release()
	}
	_ = json.NewEncoder(os.Stdout).Encode(r)
}

// churnChild adds and removes unrelated system users until its stdin is
// closed, as a package installing next to the sandbox does.
func churnChild() {
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(done)
	}()
	for i := 0; ; i++ {
		name := fmt.Sprintf("wgbt-churn-%d-%d", os.Getpid(), i%3)
		_ = exec.Command("useradd", "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", name).Run()
		_ = exec.Command("userdel", name).Run()
		select {
		case <-done:
			return
		default:
		}
	}
}

// removeAccount deletes the test's own account (never sandboxUser, which
// sandboxes of other test processes use) under the lock every user of it
// takes.
func removeAccount(t *testing.T, account string) {
	t.Helper()
	lock, err := lockOwner(account, syscall.LOCK_EX)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if out, err := exec.Command("userdel", account).CombinedOutput(); err != nil && !strings.Contains(string(out), "does not exist") {
		t.Fatalf("userdel %s: %v: %s", account, err, out)
	}
	if _, err := user.LookupGroup(account); err == nil {
		if out, err := exec.Command("groupdel", account).CombinedOutput(); err != nil {
			t.Fatalf("groupdel %s: %v: %s", account, err, out)
		}
	}
	if _, err := user.Lookup(account); err == nil {
		t.Fatalf("%s still exists after userdel", account)
	}
	os.Remove(ownerLockPath(account))
}

// accountState is how sandboxUser looks in the user database, to show the
// test left it alone.
func accountState() string {
	u, err := user.Lookup(sandboxUser)
	if errors.As(err, new(user.UnknownUserError)) {
		return "absent"
	}
	if err != nil {
		return "look-up failed: " + err.Error()
	}
	return "uid " + u.Uid + " gid " + u.Gid
}

// watchAccount records every state of sandboxUser other than want until
// stop is called, which returns them.
func watchAccount(want string) (stop func() []string) {
	done, result := make(chan struct{}), make(chan []string)
	go func() {
		var seen []string
		for {
			if now := accountState(); now != want && !slices.Contains(seen, now) {
				seen = append(seen, now)
			}
			select {
			case <-done:
				result <- seen
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	return func() []string {
		close(done)
		return <-result
	}
}

// Several processes start a sandbox at once on a machine without the
// sandbox's account (as the sandbox and cmd/wgbot test packages do on a
// fresh machine), while another process adds and removes unrelated users
// (a package being installed). Every one of them must end up with the same
// account, the one /etc/passwd holds, and a program run as it must find
// its own uid there, as initdb does ("could not look up effective user ID
// 999"). useradd checks the name before it locks the account files, so
// several useradd of one name all succeed, each rewriting the entry with a
// new uid: the account found by the first one then no longer exists.
//
// The account is the test's own (a name with its pid), removed at the end:
// the cmd/wgbot tests' sandboxes run at the same time as the real
// sandboxUser, which this test must leave as it was.
func TestClusterOwnerAcrossProcesses(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the sandbox's account is created only when it runs as root")
	}
	for _, tool := range []string{"useradd", "userdel", "groupdel", "id"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed for this test: %v", tool, err)
		}
	}
	account := fmt.Sprintf("wgbot-sbtest-%d", os.Getpid())
	if account == sandboxUser {
		t.Fatal("the test must not use the sandbox's real account")
	}
	shared := accountState()
	stopWatch := watchAccount(shared)
	t.Cleanup(func() {
		removeAccount(t, account)
		if seen := stopWatch(); len(seen) > 0 {
			t.Errorf("%s changed during the test: %q, was %s", sandboxUser, seen, shared)
		}
	})
	for round := range 3 {
		t.Run(strconv.Itoa(round), func(t *testing.T) {
			removeAccount(t, account)

			churn := exec.Command(os.Args[0], "-test.run=^$")
			churn.Env = append(os.Environ(), childEnv+"=churn")
			churnIn, err := churn.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := churn.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() {
				churnIn.Close()
				churn.Wait()
				for i := range 3 { // left if the child was killed between useradd and userdel
					_ = exec.Command("userdel", fmt.Sprintf("wgbt-churn-%d-%d", churn.Process.Pid, i)).Run()
				}
			}()

			const n = 6
			var owners []*exec.Cmd
			var outs []*bytes.Buffer
			var gos []io.WriteCloser
			for range n {
				cmd := exec.Command(os.Args[0], "-test.run=^$")
				cmd.Env = append(os.Environ(), childEnv+"=owner", "CHILD_ACCOUNT="+account, "CHILD_DIR="+filepath.Join(tempVar(t), "pg"))
				var out, errOut bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &errOut
				in, err := cmd.StdinPipe()
				if err != nil {
					t.Fatal(err)
				}
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				defer func() {
					if t.Failed() && errOut.Len() > 0 {
						t.Logf("child log:\n%s", errOut.String())
					}
				}()
				owners, outs, gos = append(owners, cmd), append(outs, &out), append(gos, in)
			}
			time.Sleep(200 * time.Millisecond) // let them all reach the go signal
			for _, in := range gos {
				in.Write([]byte("go\n"))
				in.Close()
			}
			var reports []ownerReport
			for i, cmd := range owners {
				if err := cmd.Wait(); err != nil {
					t.Errorf("child %d: %v", i, err)
				}
				var r ownerReport
				if err := json.Unmarshal(outs[i].Bytes(), &r); err != nil {
					t.Fatalf("child %d printed %q: %v", i, outs[i].String(), err)
				}
				reports = append(reports, r)
			}

			final, err := user.Lookup(account)
			if err != nil {
				t.Fatalf("after the children: %v", err)
			}
			passwd, err := os.ReadFile("/etc/passwd")
			if err != nil {
				t.Fatal(err)
			}
			if n := bytes.Count(passwd, []byte("\n"+account+":")); n != 1 {
				t.Errorf("/etc/passwd has %d lines for %s", n, account)
			}
			for i, r := range reports {
				switch {
				case r.Err != "":
					t.Errorf("child %d: %s", i, r.Err)
				case r.Name != account:
					t.Errorf("child %d runs PostgreSQL as %q (uid %d), not %s", i, r.Name, r.UID, account)
				case strconv.FormatUint(uint64(r.UID), 10) != final.Uid:
					t.Errorf("child %d was given uid %d for %s, which now has uid %s", i, r.UID, account, final.Uid)
				case r.IDName != account:
					t.Errorf("a program run as child %d's uid %d calls itself %q, want %s", i, r.UID, r.IDName, account)
				}
			}
		})
	}
}
