package wgconf

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Tests that need several OS processes re-run this test binary as a child.
// The environment tells the child its role; TestMain runs it instead of the
// tests.
const (
	envRole   = "WGCONF_TEST_ROLE"
	envConfig = "WGCONF_TEST_CONFIG"
	envWorker = "WGCONF_TEST_WORKER"
	envStop   = "WGCONF_TEST_STOP"   // reader: stop once this file exists
	envExpect = "WGCONF_TEST_EXPECT" // reader: file holding the expected unmanaged bytes
)

const (
	adderPeers  = 200 // peers each adder process adds
	crashPeers  = 300 // peers in every version the crash test writes
	interRounds = 50  // rounds of the interleaving test
)

func TestMain(m *testing.M) {
	if role := os.Getenv(envRole); role != "" {
		if err := runChild(role); err != nil {
			fmt.Fprintf(os.Stderr, "child %s %s: %v\n", role, os.Getenv(envWorker), err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func runChild(role string) error {
	cfg := os.Getenv(envConfig)
	worker, _ := strconv.Atoi(os.Getenv(envWorker))
	w, err := NewWriter(Config{Path: cfg, LockTimeout: time.Minute})
	if err != nil {
		return err
	}
	ctx := context.Background()
	switch role {
	case "adder":
		awaitGo()
		return runAdder(ctx, w, worker)
	case "interleave":
		awaitGo()
		return runInterleave(ctx, w, worker)
	case "reader":
		return runReader(cfg)
	case "crasher":
		return runCrasher(ctx, w)
	case "holder":
		unlock, err := Lock(ctx, DefaultLockPath(cfg))
		if err != nil {
			return err
		}
		fmt.Println("locked")
		io.Copy(io.Discard, os.Stdin) // hold until the parent closes stdin
		return unlock()
	}
	return fmt.Errorf("unknown role %q", role)
}

// awaitGo lets the parent start all workers at the same moment, so that
// their writes really interleave.
func awaitGo() {
	fmt.Println("ready")
	bufio.NewReader(os.Stdin).ReadString('\n')
}

func adderID(worker, j int) string { return fmt.Sprintf("w%d-%03d", worker, j) }

func adderPeer(worker, j int) Peer { return peerFor(adderID(worker, j), worker*1000+j) }

// adderKeeps says which of its peers an adder leaves in the file.
func adderKeeps(j int) bool { return j%4 == 0 }

// runAdder adds adderPeers peers and removes all but every fourth, each
// removal one step behind the next addition. Its ids are its own, so every
// call must write.
func runAdder(ctx context.Context, w *Writer, worker int) error {
	remove := func(j int) error {
		changed, err := w.RemovePeer(ctx, adderID(worker, j))
		if err == nil && !changed {
			err = fmt.Errorf("remove %s wrote nothing", adderID(worker, j))
		}
		return err
	}
	for j := range adderPeers {
		changed, err := w.AddPeer(ctx, adderPeer(worker, j))
		if err != nil {
			return err
		}
		if !changed {
			return fmt.Errorf("add %s wrote nothing", adderID(worker, j))
		}
		if j > 0 && !adderKeeps(j-1) {
			if err := remove(j - 1); err != nil {
				return err
			}
		}
	}
	if last := adderPeers - 1; !adderKeeps(last) {
		return remove(last)
	}
	return nil
}

// runReader parses the file in a loop until the stop file appears. Every
// version it sees must parse, keep the unmanaged lines and be exactly what
// wgbot renders for its managed peers: a torn or half-written file fails.
func runReader(cfg string) error {
	expected, err := os.ReadFile(os.Getenv(envExpect))
	if err != nil {
		return err
	}
	versions := map[[32]byte]bool{}
	reads := 0
	for {
		_, statErr := os.Stat(os.Getenv(envStop))
		data, err := os.ReadFile(cfg)
		if err != nil {
			return err
		}
		f, err := Parse(data)
		if err != nil {
			return fmt.Errorf("read %d: %w\n%s", reads, err, data)
		}
		if got := f.unmanagedBytes(); !bytes.Equal(got, expected) {
			return fmt.Errorf("read %d: unmanaged lines changed:\n%s", reads, got)
		}
		if err := f.SetManagedPeers(f.ManagedPeers()); err != nil {
			return fmt.Errorf("read %d: %w", reads, err)
		}
		if !bytes.Equal(f.Render(), data) {
			return fmt.Errorf("read %d: file is not what wgbot renders:\n%s", reads, data)
		}
		versions[sha256.Sum256(data)] = true
		reads++
		if statErr == nil {
			break
		}
		time.Sleep(200 * time.Microsecond) // leave the two CPUs to the writers
	}
	fmt.Printf("reads=%d versions=%d\n", reads, len(versions))
	return nil
}

func sharedID(k int) string { return fmt.Sprintf("shared-%d", k) }

// runInterleave adds and removes the same shared peers as the other workers,
// in an order that depends on the worker, plus peers of its own. Its last
// step on each shared peer is the same in every worker: add the even ones,
// remove the odd ones. So whatever the interleaving, the file must end with
// exactly the even shared peers and every worker's odd own peers.
func runInterleave(ctx context.Context, w *Writer, worker int) error {
	for r := range interRounds {
		for k := range 4 {
			var err error
			if (r+worker+k)%2 == 0 {
				_, err = w.AddPeer(ctx, peerFor(sharedID(k), 60000+k))
			} else {
				_, err = w.RemovePeer(ctx, sharedID(k))
			}
			if err != nil {
				return err
			}
		}
		if _, err := w.AddPeer(ctx, interleaveOwn(worker, r)); err != nil {
			return err
		}
		if r%2 == 1 {
			if _, err := w.RemovePeer(ctx, interleaveOwn(worker, r-1).ID); err != nil {
				return err
			}
		}
	}
	for k := range 4 {
		var err error
		if k%2 == 0 {
			_, err = w.AddPeer(ctx, peerFor(sharedID(k), 60000+k))
		} else {
			_, err = w.RemovePeer(ctx, sharedID(k))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func interleaveOwn(worker, r int) Peer {
	return peerFor(fmt.Sprintf("i%d-%02d", worker, r), 50000+worker*100+r)
}

// versionPeers is version k of the crash test's managed peers. Every peer
// changes from one version to the next, so a file mixing two versions cannot
// pass for either; the "version" peer carries k.
func versionPeers(k int) []Peer {
	peers := make([]Peer, 0, crashPeers+1)
	for i := range crashPeers {
		p := peerFor(fmt.Sprintf("p%03d", i), i)
		p.Endpoint = fmt.Sprintf("198.51.100.%d:%d", i%250+1, 1024+(k*7+i)%60000)
		peers = append(peers, p)
	}
	return append(peers, Peer{ID: "version", PublicKey: testKey("version"), PersistentKeepalive: k})
}

func fileVersion(f *File) int {
	for _, p := range f.ManagedPeers() {
		if p.ID == "version" {
			return p.PersistentKeepalive
		}
	}
	return 0
}

// runCrasher writes version after version until it is killed, through a
// Cache as the reconciler does, so that it writes into the spare.
func runCrasher(ctx context.Context, w *Writer) error {
	fmt.Println("ready")
	deadline := time.Now().Add(30 * time.Second) // in case the parent dies
	var cache Cache
	for time.Now().Before(deadline) {
		_, err := w.UpdateCached(ctx, &cache, func(f *File, _ bool) error {
			return f.SetManagedPeers(versionPeers(fileVersion(f) + 1))
		}, nil)
		if err != nil {
			return err
		}
	}
	return errors.New("never killed")
}

type child struct {
	name   string
	cmd    *exec.Cmd
	stdout *bufio.Reader
	stdin  io.WriteCloser
	stderr *bytes.Buffer
}

// startChild starts this test binary in role. The child is killed when the
// test ends, whatever happened.
func startChild(t *testing.T, role, cfg string, worker int, env ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envRole+"="+role, envConfig+"="+cfg, envWorker+"="+strconv.Itoa(worker))
	cmd.Env = append(cmd.Env, env...)
	c := &child{name: fmt.Sprintf("%s %d", role, worker), cmd: cmd, stderr: &bytes.Buffer{}}
	cmd.Stderr = c.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c.stdout = bufio.NewReader(stdout)
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return c
}

// waitLine waits for the child to print want.
func (c *child) waitLine(t *testing.T, want string) {
	t.Helper()
	got, err := c.stdout.ReadString('\n')
	if strings.TrimSpace(got) != want {
		t.Fatalf("child %s printed %q (%v), want %q; stderr:\n%s", c.name, got, err, want, c.stderr)
	}
}

// startTogether waits until every child is ready, then lets them all go.
func startTogether(t *testing.T, children []*child) {
	t.Helper()
	for _, c := range children {
		c.waitLine(t, "ready")
	}
	for _, c := range children {
		if _, err := io.WriteString(c.stdin, "go\n"); err != nil {
			t.Fatal(err)
		}
	}
}

func (c *child) wait(t *testing.T) string {
	t.Helper()
	out, _ := io.ReadAll(c.stdout)
	if err := c.cmd.Wait(); err != nil {
		t.Errorf("child %s: %v\n%s", c.name, err, c.stderr)
	}
	return string(out)
}

func TestConcurrentWritersAcrossProcesses(t *testing.T) {
	const writers = 8
	dir := t.TempDir()
	cfg := filepath.Join(dir, "wg0.conf")
	initial := mustReadFile(t, "testdata/server-iptables.conf")
	writeTestFile(t, cfg, initial, 0o600)
	expect := filepath.Join(t.TempDir(), "expected")
	writeTestFile(t, expect, initial, 0o600)
	stop := filepath.Join(t.TempDir(), "stop")

	start := time.Now()
	reader := startChild(t, "reader", cfg, 0, envExpect+"="+expect, envStop+"="+stop)
	var adders []*child
	for w := range writers {
		adders = append(adders, startChild(t, "adder", cfg, w))
	}
	startTogether(t, adders)
	for _, a := range adders {
		a.wait(t)
	}
	writeTestFile(t, stop, nil, 0o600)
	var reads, versions int
	out := reader.wait(t)
	if _, err := fmt.Sscanf(out, "reads=%d versions=%d", &reads, &versions); err != nil {
		t.Fatalf("reader printed %q: %v", out, err)
	}
	t.Logf("%d processes made %d writes in %v; the reader parsed %d reads, %d distinct versions",
		writers, writers*(adderPeers+adderPeers*3/4), time.Since(start).Round(time.Millisecond), reads, versions)
	if versions < 2 {
		t.Errorf("reader saw %d versions; it did not read while the writers wrote", versions)
	}

	data := mustReadFile(t, cfg)
	f := mustParse(t, data)
	var want []Peer
	for w := range writers {
		for j := range adderPeers {
			if adderKeeps(j) {
				want = append(want, adderPeer(w, j))
			}
		}
	}
	slices.SortFunc(want, func(a, b Peer) int { return strings.Compare(a.ID, b.ID) })
	if got := f.ManagedPeers(); !equalPeers(got, want) {
		t.Errorf("final managed peers: got %d %q, want %d %q", len(got), peerIDs(got), len(want), peerIDs(want))
	}
	// The Interface section, the hand-made peer and every comment are the
	// untouched start of the file.
	if !bytes.HasPrefix(data, initial) || !bytes.Equal(f.unmanagedBytes(), initial) {
		t.Errorf("lines wgbot does not own changed:\n%s", f.unmanagedBytes())
	}
	checkFileMode(t, cfg, 0o600)
	if tmp := tempFiles(t, dir); len(tmp) > 0 {
		t.Errorf("temp files left: %q", tmp)
	}
}

func TestInterleavedAddRemoveAcrossProcesses(t *testing.T) {
	const workers = 4
	dir := t.TempDir()
	cfg := filepath.Join(dir, "wg0.conf")
	initial := mustReadFile(t, "testdata/dualstack-nft.conf")
	writeTestFile(t, cfg, initial, 0o600)

	var children []*child
	for w := range workers {
		children = append(children, startChild(t, "interleave", cfg, w))
	}
	startTogether(t, children)
	for _, c := range children {
		c.wait(t)
	}

	want := []Peer{peerFor(sharedID(0), 60000), peerFor(sharedID(2), 60002)}
	for w := range workers {
		for r := 1; r < interRounds; r += 2 {
			want = append(want, interleaveOwn(w, r))
		}
	}
	slices.SortFunc(want, func(a, b Peer) int { return strings.Compare(a.ID, b.ID) })
	data := mustReadFile(t, cfg)
	f := mustParse(t, data)
	if got := f.ManagedPeers(); !equalPeers(got, want) {
		t.Errorf("final managed peers:\n got %q\nwant %q", peerIDs(got), peerIDs(want))
	}
	if !bytes.Equal(f.unmanagedBytes(), initial) {
		t.Errorf("lines wgbot does not own changed:\n%s", f.unmanagedBytes())
	}
	if tmp := tempFiles(t, dir); len(tmp) > 0 {
		t.Errorf("temp files left: %q", tmp)
	}
}

// TestCrashSafety kills a writer with SIGKILL at random moments, 200 times.
// After every kill the file must be one whole version, byte for byte, never
// older than the one before; a temp file the killed writer left is removed by
// the next writer, so at most one is ever there. A kill while the spare was
// being filled leaves it torn, which must not matter.
func TestCrashSafety(t *testing.T) {
	const kills = 200
	dir := t.TempDir()
	cfg := filepath.Join(dir, "wg0.conf")
	initial := mustReadFile(t, "testdata/client.conf")
	writeTestFile(t, cfg, initial, 0o600)

	rendered := map[int][]byte{}
	expected := func(k int) []byte {
		if k == 0 {
			return initial
		}
		if b, ok := rendered[k]; ok {
			return b
		}
		f := mustParse(t, initial)
		if err := f.SetManagedPeers(versionPeers(k)); err != nil {
			t.Fatal(err)
		}
		rendered[k] = f.Render()
		return rendered[k]
	}

	start := time.Now()
	last, midWrite := 0, 0
	for i := range kills {
		c := startChild(t, "crasher", cfg, i)
		c.waitLine(t, "ready")
		time.Sleep(time.Duration(rand.N(8000*raceSlowdown)) * time.Microsecond)
		if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		err := c.cmd.Wait()
		if ws, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("kill %d: writer ended with %v, not by SIGKILL; stderr:\n%s", i, err, c.stderr)
		}

		data := mustReadFile(t, cfg)
		f, err := Parse(data)
		if err != nil {
			t.Fatalf("kill %d: file does not parse: %v", i, err)
		}
		k := fileVersion(f)
		if !bytes.Equal(data, expected(k)) {
			t.Fatalf("kill %d: file is not a whole version %d:\n%s", i, k, data)
		}
		if k < last {
			t.Fatalf("kill %d: version went back from %d to %d", i, last, k)
		}
		last = k
		tmp := tempFiles(t, dir)
		if len(tmp) > 1 {
			t.Fatalf("kill %d: %d temp files; stale ones are not cleaned: %q", i, len(tmp), tmp)
		}
		torn := false
		if sp, err := os.ReadFile(sparePath(cfg)); err == nil {
			// Torn, or whole and newer than the file: killed before the rename.
			g, err := Parse(sp)
			torn = err != nil || !bytes.Equal(sp, expected(fileVersion(g))) || fileVersion(g) > k
		}
		if len(tmp) == 1 || torn {
			midWrite++
		}
		checkFileMode(t, cfg, 0o600)
	}
	t.Logf("%d kills in %v: %d versions written, %d kills landed mid-write (a temp file left, or the spare torn or newer than the file)",
		kills, time.Since(start).Round(time.Millisecond), last, midWrite)
	if last == 0 || midWrite == 0 {
		t.Errorf("the kills never landed while writing (versions %d, mid-write %d): the test proves nothing", last, midWrite)
	}

	// The next write removes what the last killed writer left, and takes the
	// lock the killed process held.
	w, err := NewWriter(Config{Path: cfg, LockTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Update(context.Background(), func(f *File) error {
		return f.SetManagedPeers(versionPeers(fileVersion(f) + 1))
	}); err != nil {
		t.Fatal(err)
	}
	if tmp := tempFiles(t, dir); len(tmp) > 0 {
		t.Errorf("temp files left after a successful write: %q", tmp)
	}
	if got := mustReadFile(t, cfg); !bytes.Equal(got, expected(last+1)) {
		t.Errorf("final write is not version %d", last+1)
	}
}

func checkFileMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != want {
		t.Errorf("%s has mode %v, want %v", path, fi.Mode(), want)
	}
}
