package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"wgbot"
	"wgbot/config"
	"wgbot/postgres"
	"wgbot/postgres/pgtest"
	"wgbot/secret"
)

var (
	scalePeers   = flag.Int("scale.peers", 10_000, "BenchmarkScale: peers seeded on each server")
	scaleTrials  = flag.Int("scale.trials", 3_000, "BenchmarkScale: trials issued in each run, over all issuers")
	scaleIssuers = flag.Int("scale.issuers", 3, "BenchmarkScale: issuing processes")
	scaleConc    = flag.Int("scale.conc", 16, "BenchmarkScale: concurrent trials in each issuing process")
)

// BenchmarkScale is issue 16's scale acceptance: S servers on one
// PostgreSQL, each holding scale.peers peers (10,000: 100,000 at ten
// servers) and run by its own `wgbot node` process in file mode (its own
// wg0.conf), while several issuing processes take trials at once. Each
// issuing process is the serve binary's own wiring (openApp in node mode:
// the store, the allocator, the server pick, the wait for the owning
// node) driving service.IssueTrial, without the Telegram front: through
// the Bot API the serve process paces its messages at Telegram's global
// limit (about 30 a second, several per trial), which would measure that
// limit, not issuance. It reports:
//   - trials/s over all issuers and per server, from the first trial's
//     start to the last one's end; each trial returns once the owning node
//     reported it applied, as in serve;
//   - the ceiling in the same run: pgbench committing a one-row insert
//     under the same advisory lock (DB_IP_ALLOC_LOCK_ID, server), the
//     server drawn at random among the S, at the same total concurrency;
//   - commit→applied p50/p99/max per issuance: both ends are seen by one
//     observer connection LISTENing on the database: the allocator's NOTIFY
//     "server:revision" (delivered at its commit) and the owning node's
//     "server applied revision" NOTIFY (sent once its wg0.conf is durably
//     written), the first one covering the issuance's revision;
//   - the nodes' and the issuers' CPU (user+system) per issuance.
//
// The runs: one server alone; ten servers with trials on one of them
// (the other nine drained, their nodes running), which shows whether a
// server's issuance slows as servers are added; ten servers taking trials
// at once, bound by this machine's two cores.
//
// Run it with `make bench-scale` (no root: file mode needs no device).
func BenchmarkScale(b *testing.B) {
	for _, c := range []struct{ servers, issuing int }{{1, 1}, {10, 1}, {10, 10}} {
		b.Run(fmt.Sprintf("servers=%d/peers=%d/issuing=%d", c.servers, c.servers**scalePeers, c.issuing), func(b *testing.B) {
			benchScale(b, c.servers, c.issuing)
		})
	}
}

// issuerPoolMax is each issuer's DB_POOL_MAX, serve's default.
const issuerPoolMax = 10

// issuerEnv makes the test binary an issuing process (benchIssuer).
const issuerEnv = "WGBOT_BENCH_ISSUER"

// issuerResult is what an issuing process prints when done.
type issuerResult struct {
	Issued     int
	Errors     int
	FirstError string
	Start, End int64   // Unix nanoseconds
	Latencies  []int64 // microseconds, one per trial
}

func benchScale(b *testing.B, nServers, issuing int) {
	ctx := context.Background()
	dbURL := pgtest.URL(b)
	base := map[string]string{"DATABASE_URL": dbURL, "MASTER_KEY": benchMasterKey, "LOG_FORMAT": "json"}
	names := make([]string, nServers)
	for i := range names {
		names[i] = fmt.Sprintf("s%02d", i+1)
		if out, err := runWgbot(base, "servers", "add", names[i], "--location", "Bench", "--endpoint", names[i]+".example.com:51820",
			"--subnet", fmt.Sprintf("10.%d.0.0/16", 64+i)).CombinedOutput(); err != nil {
			b.Fatalf("servers add %s: %v\n%s", names[i], err, out)
		}
	}
	for _, name := range names[issuing:] { // no new peers there; the node keeps running
		if out, err := runWgbot(base, "servers", "drain", name).CombinedOutput(); err != nil {
			b.Fatalf("servers drain %s: %v\n%s", name, err, out)
		}
	}
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	master, _ := base64.StdEncoding.DecodeString(benchMasterKey)
	keys, err := secret.NewKeyring(master)
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	for i, name := range names {
		var id int64
		if err := pool.QueryRow(ctx, `SELECT id FROM servers WHERE name = $1`, name).Scan(&id); err != nil {
			b.Fatal(err)
		}
		pgtest.SeedPeers(b, pool, keys, id, netip.AddrFrom4([4]byte{10, byte(64 + i), 0, 2}), *scalePeers)
	}
	const firstUser = 900_000_000
	if _, err := pool.Exec(ctx, `INSERT INTO users (telegram_id) SELECT $1 + g FROM generate_series(1, $2) g`,
		firstUser, *scaleTrials); err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `ANALYZE`); err != nil {
		b.Fatal(err)
	}
	b.Logf("seeded %d peers on %d servers in %v", nServers**scalePeers, nServers, time.Since(t0).Round(time.Millisecond))

	nodes := make([]*os.Process, nServers)
	confs, metricsAt := make([]string, nServers), make([]string, nServers)
	for i, name := range names {
		confs[i] = filepath.Join(b.TempDir(), "wg0.conf")
		key, _ := wgtypes.GeneratePrivateKey()
		os.WriteFile(confs[i], []byte(fmt.Sprintf("[Interface]\nAddress = 10.%d.0.1/16\nListenPort = 51820\nPrivateKey = %s\n", 64+i, key)), 0o600)
		env := nodeSettings(b, dbURL, confs[i], name)
		env["WG_APPLY_MODE"], env["NODE_HEARTBEAT"], env["WG_RESYNC_INTERVAL"] = "file", "1s", "1h"
		// A node needs few connections (its reads, the heartbeat, the
		// applied revision; LISTEN has its own): ten nodes at the default
		// DB_POOL_MAX of 10 would take most of max_connections=100.
		env["DB_POOL_MIN"], env["DB_POOL_MAX"] = "1", "3"
		metricsAt[i] = "http://" + env["METRICS_ADDR"] + "/metrics"
		stop, _, proc := startWgbotCommand(b, env, "node")
		defer stop()
		nodes[i] = proc
	}
	t0 = time.Now()
	stopSealing := sealForNodes(b, base)
	waitCaughtUp(b, pool, nServers, 5*time.Minute)
	stopSealing()
	b.Logf("%d nodes wrote their wg0.conf in %v", nServers, time.Since(t0).Round(time.Millisecond))

	// The issuers can have at most this many transactions open at once.
	conc := *scaleIssuers * issuerPoolMax
	ceilingBefore := pgbenchServers(b, dbURL, conc, issuing)
	obs := observe(b, dbURL)
	issuers := startIssuers(b, base, firstUser)
	nodeCPU0 := make([]time.Duration, nServers)
	for i, p := range nodes {
		nodeCPU0[i] = procCPUOf(b, p.Pid)
	}
	writes0 := fileWrites(b, metricsAt)
	pgCPU0 := backendsCPU(b, pool, nil)
	busy0, total0 := machineCPU(b)
	results := runIssuers(b, issuers)
	busy, total := machineCPU(b)
	pgCPU := sum(backendsCPU(b, pool, pgCPU0))
	var nodeCPU, idleCPU time.Duration
	for i, p := range nodes {
		used := procCPUOf(b, p.Pid) - nodeCPU0[i]
		nodeCPU += used
		if i >= issuing {
			idleCPU += used
		}
	}
	waitCaughtUp(b, pool, nServers, time.Minute)
	writes := fileWrites(b, metricsAt) - writes0
	time.Sleep(200 * time.Millisecond) // the last applied NOTIFY on its way to the observer
	events := obs.stop()

	ceilingAfter := pgbenchServers(b, dbURL, conc, issuing)
	var issued, failed int
	var first, last int64
	var lat []time.Duration
	var issuerCPU time.Duration
	for _, p := range issuers {
		issuerCPU += p.cmd.ProcessState.UserTime() + p.cmd.ProcessState.SystemTime()
	}
	for i, r := range results {
		issued += r.Issued
		failed += r.Errors
		if r.Errors > 0 {
			b.Errorf("issuer %d: %d trials failed, the first with: %s", i, r.Errors, r.FirstError)
		}
		if first == 0 || r.Start < first {
			first = r.Start
		}
		last = max(last, r.End)
		for _, us := range r.Latencies {
			lat = append(lat, time.Duration(us)*time.Microsecond)
		}
	}
	elapsed := time.Duration(last - first)
	delays, unmatched := commitToApplied(events)
	if unmatched > 0 {
		b.Errorf("%d issuances' revisions were never reported applied", unmatched)
	}
	if len(delays) < issued {
		b.Errorf("%d commits seen by the observer, %d trials issued", len(delays), issued)
	}
	spread := checkFiles(b, pool, names, confs)
	slices.Sort(lat)
	slices.Sort(delays)
	rate := float64(issued) / elapsed.Seconds()
	ceiling := (ceilingBefore + ceilingAfter) / 2
	b.ReportMetric(rate, "trials/s")
	b.ReportMetric(rate/float64(issuing), "trials/s/server")
	b.ReportMetric(ceilingBefore, "ceiling-before-tps")
	b.ReportMetric(ceilingAfter, "ceiling-after-tps")
	b.ReportMetric(100*rate/ceiling, "%-of-ceiling")
	b.ReportMetric(ms(percentile(lat, 50)), "issue-p50-ms")
	b.ReportMetric(ms(percentile(lat, 99)), "issue-p99-ms")
	b.ReportMetric(ms(percentile(delays, 50)), "applied-p50-ms")
	b.ReportMetric(ms(percentile(delays, 99)), "applied-p99-ms")
	b.ReportMetric(ms(delays[len(delays)-1]), "applied-max-ms")
	b.ReportMetric(ms(nodeCPU/time.Duration(max(issued, 1))), "node-cpu-ms/issue")
	b.ReportMetric(float64(writes)/float64(max(issued, 1)), "file-writes/issue")
	b.ReportMetric(ms(issuerCPU/time.Duration(max(issued, 1))), "issuer-cpu-ms/issue")
	b.ReportMetric(ms(pgCPU/time.Duration(max(issued, 1))), "pg-cpu-ms/issue")
	if issuing < nServers {
		b.ReportMetric(ms(idleCPU/time.Duration(max(issued, 1))), "idle-nodes-cpu-ms/issue")
	}
	b.ReportMetric(100*float64(busy-busy0)/float64(total-total0), "machine-busy-%")
	b.ReportMetric(100*(issuerCPU+nodeCPU+pgCPU).Seconds()/elapsed.Seconds()/float64(runtime.NumCPU()), "ours-%-of-machine")
	counted, held := timeCounts(b, pool)
	b.ReportMetric(ms(counted), "count-peers-ms")
	b.ReportMetric(ms(held), "server-load-ms")
	b.ReportMetric(float64(failed), "failed")
	b.Logf("%d trials in %v by %d processes × %d; per server %v", issued, elapsed.Round(time.Millisecond), *scaleIssuers, *scaleConc, spread)
}

// servingNodeMode is what makes the issuers and the sealer serve
// processes of a multi-host deployment: they wait for the nodes, and the
// database is already migrated.
var servingNodeMode = map[string]string{"WG_APPLY_MODE": "node", "NODE_SERVER": "s01", "DB_MIGRATE_ON_START": "false"}

// sealForNodes does for the seeded peers what serve does: once a node
// registers its key, it seals that server's preshared keys to it, so the
// node can open them. The issuers seal the keys of the peers they issue.
func sealForNodes(b *testing.B, base map[string]string) (stop func()) {
	env := maps.Clone(servingNodeMode)
	maps.Copy(env, base)
	s, err := config.Load(func(k string) string { return env[k] }, "")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := openApp(ctx, s, slog.New(slog.DiscardHandler), false)
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.svc.SealNodeKeysEvery(ctx, 100*time.Millisecond)
	}()
	return sync.OnceFunc(func() {
		cancel()
		<-done
		a.Close()
	})
}

func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, len(sorted)*p/100)]
}

// waitCaughtUp waits until every server's node reported its current
// revision applied.
func waitCaughtUp(b *testing.B, pool *pgxpool.Pool, n int, within time.Duration) {
	deadline := time.Now().Add(within)
	for {
		var done int
		err := pool.QueryRow(context.Background(), `SELECT count(*) FROM servers sv JOIN node_status n ON n.server_id = sv.id
			WHERE n.revision >= sv.revision`).Scan(&done)
		if err == nil && done == n {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d nodes caught up (%v)", done, n, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// notice is one notification as the observer received it.
type notice struct {
	at          time.Time
	applied     bool // postgres.AppliedChannel; else postgres.NotifyChannel (a commit)
	server, rev int64
}

type observer struct {
	cancel context.CancelFunc
	done   chan struct{}
	events []notice
}

// observe LISTENs for commits and applied revisions on one connection of
// its own, timestamping each notification as it arrives.
func observe(b *testing.B, dbURL string) *observer {
	ctx, cancel := context.WithCancel(context.Background())
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+postgres.NotifyChannel+"; LISTEN "+postgres.AppliedChannel); err != nil {
		b.Fatal(err)
	}
	o := &observer{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(o.done)
		defer conn.Close(context.Background())
		for {
			n, err := conn.WaitForNotification(ctx)
			if err != nil {
				return
			}
			at := time.Now()
			server, rev, ok := postgres.ParseApplied(n.Payload)
			if ok {
				o.events = append(o.events, notice{at: at, applied: n.Channel == postgres.AppliedChannel, server: server, rev: rev})
			}
		}
	}()
	return o
}

func (o *observer) stop() []notice {
	o.cancel()
	<-o.done
	return o.events
}

// commitToApplied matches each commit with the first applied revision of
// its server that covers it, in the order the observer saw them.
func commitToApplied(events []notice) (delays []time.Duration, unmatched int) {
	applied := map[int64][]notice{}
	for _, e := range events {
		if e.applied {
			applied[e.server] = append(applied[e.server], e)
		}
	}
	for _, c := range events {
		if c.applied {
			continue
		}
		i := slices.IndexFunc(applied[c.server], func(a notice) bool { return a.rev >= c.rev && !a.at.Before(c.at) })
		if i < 0 {
			unmatched++
			continue
		}
		delays = append(delays, applied[c.server][i].at.Sub(c.at))
	}
	return delays, unmatched
}

// checkFiles checks that each node's wg0.conf holds exactly its server's
// active peers, and returns how many trials each server got.
func checkFiles(b *testing.B, pool *pgxpool.Pool, names, confs []string) map[string]int {
	spread := map[string]int{}
	for i, name := range names {
		var active, trials int
		if err := pool.QueryRow(context.Background(), `SELECT count(*), count(*) FILTER (WHERE p.name <> 'seed')
			FROM peers p JOIN servers sv ON sv.id = p.server_id WHERE sv.name = $1 AND p.status = 'active'`, name).Scan(&active, &trials); err != nil {
			b.Fatal(err)
		}
		if inFile := strings.Count(string(mustRead(b, confs[i])), "[Peer]"); inFile != active {
			b.Errorf("%s's wg0.conf has %d peers, the database %d active", name, inFile, active)
		}
		spread[name] = trials
	}
	return spread
}

// startIssuers starts the issuing processes, each with its own share of
// the users, and waits until each is wired and ready.
func startIssuers(b *testing.B, base map[string]string, firstUser int64) []*issuerProc {
	per := *scaleTrials / *scaleIssuers
	procs := make([]*issuerProc, *scaleIssuers)
	for i := range procs {
		lo := firstUser + 1 + int64(i*per)
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = []string{issuerEnv + "=1", "PATH=" + os.Getenv("PATH"),
			"WGBOT_ISSUER_USERS=" + fmt.Sprintf("%d:%d", lo, lo+int64(per)-1), "WGBOT_ISSUER_CONC=" + strconv.Itoa(*scaleConc),
			"DB_POOL_MAX=" + strconv.Itoa(issuerPoolMax)}
		for k, v := range servingNodeMode {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		for k, v := range base {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		cmd.Dir = os.TempDir()
		p := &issuerProc{cmd: cmd, stderr: &lockedBuffer{}}
		cmd.Stderr = p.stderr
		var err error
		if p.stdin, err = cmd.StdinPipe(); err != nil {
			b.Fatal(err)
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		p.out = bufio.NewScanner(out)
		p.out.Buffer(make([]byte, 1<<20), 64<<20)
		procs[i] = p
	}
	for i, p := range procs {
		if line := p.next(); line != "READY" {
			b.Fatalf("issuer %d did not start: %q\n%s", i, line, tail(p.stderr.String(), 20))
		}
	}
	return procs
}

type issuerProc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    *bufio.Scanner
	stderr *lockedBuffer
}

func (p *issuerProc) next() string {
	if !p.out.Scan() {
		return ""
	}
	return p.out.Text()
}

// runIssuers starts every issuer at once and collects their results.
func runIssuers(b *testing.B, procs []*issuerProc) []issuerResult {
	for _, p := range procs {
		io.WriteString(p.stdin, "GO\n")
	}
	results := make([]issuerResult, len(procs))
	for i, p := range procs {
		line, ok := strings.CutPrefix(p.next(), "RESULT ")
		if !ok || json.Unmarshal([]byte(line), &results[i]) != nil {
			b.Fatalf("issuer %d gave no result\n%s", i, tail(p.stderr.String(), 20))
		}
		p.stdin.Close()
		p.cmd.Wait()
	}
	return results
}

// benchIssuer is the issuing process: serve's wiring in node mode, then
// IssueTrial for each of its users, WGBOT_ISSUER_CONC at a time, once the
// parent says GO on stdin.
func benchIssuer() error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := config.Load(os.Getenv, "")
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a, err := openApp(ctx, s, log, false)
	if err != nil {
		return err
	}
	defer a.Close()
	go a.rec.Run(ctx)
	var lo, hi int64
	if _, err := fmt.Sscanf(os.Getenv("WGBOT_ISSUER_USERS"), "%d:%d", &lo, &hi); err != nil {
		return fmt.Errorf("WGBOT_ISSUER_USERS: %w", err)
	}
	conc, _ := strconv.Atoi(os.Getenv("WGBOT_ISSUER_CONC"))
	rows, err := a.pool.Query(ctx, `SELECT id, telegram_id FROM users WHERE telegram_id BETWEEN $1 AND $2 ORDER BY telegram_id`, lo, hi)
	if err != nil {
		return err
	}
	users, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (wgbot.User, error) {
		var u wgbot.User
		return u, r.Scan(&u.ID, &u.TelegramID)
	})
	if err != nil {
		return err
	}
	fmt.Println("READY")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return err
	}

	res := issuerResult{Latencies: make([]int64, len(users)), Start: time.Now().UnixNano()}
	var next atomic.Int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(users) {
					return
				}
				t0 := time.Now()
				_, err := a.svc.IssueTrial(ctx, users[i])
				res.Latencies[i] = time.Since(t0).Microseconds()
				mu.Lock()
				if err != nil {
					res.Errors++
					if res.FirstError == "" {
						res.FirstError = err.Error()
					}
				} else {
					res.Issued++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	res.End = time.Now().UnixNano()
	out, err := json.Marshal(res)
	if err != nil {
		return err
	}
	fmt.Printf("RESULT %s\n", out)
	return nil
}

// pgbenchServers is the ceiling: a one-row insert transaction under
// pg_advisory_xact_lock(DB_IP_ALLOC_LOCK_ID, server) on a fresh table for
// 5 s, the server drawn at random among n, at conc clients. The table is
// made anew each time, so the figure before the trials and the one after
// measure the same thing.
func pgbenchServers(b *testing.B, dbURL string, conc, n int) float64 {
	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	waitConnections(b, pool, conc+1)
	if _, err := pool.Exec(context.Background(), `DROP TABLE IF EXISTS bench_rows`); err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(context.Background(), `CREATE TABLE bench_rows (id bigserial PRIMARY KEY, server_id bigint, ip inet, created_at timestamptz DEFAULT now())`); err != nil {
		b.Fatal(err)
	}
	return pgtest.Pgbench(b, dbURL, fmt.Sprintf(`\set s random(1, %d)
BEGIN;
SELECT pg_advisory_xact_lock(720301, :s);
INSERT INTO bench_rows (server_id, ip) VALUES (:s, '10.64.0.2');
COMMIT;
`, n), conc)
}

// waitConnections waits until PostgreSQL has n connections to spare: the
// backends of processes that just closed their pools take a moment to go.
func waitConnections(b *testing.B, pool *pgxpool.Pool, n int) {
	deadline := time.Now().Add(15 * time.Second)
	for {
		var free int
		var users string
		err := pool.QueryRow(context.Background(), `SELECT current_setting('max_connections')::int - count(*),
			string_agg(coalesce(nullif(application_name, ''), '?'), ', ') FROM pg_stat_activity WHERE backend_type = 'client backend'`).Scan(&free, &users)
		if err != nil {
			b.Fatal(err)
		}
		if free >= n {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("PostgreSQL has %d connections to spare, pgbench needs %d; connected: %s", free, n, users)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// backendsCPU is the CPU time of every PostgreSQL backend serving this
// database (the issuers', the nodes', this test's), by pid, less what
// before holds for the same pid. PostgreSQL's own background processes
// (WAL writer, checkpointer) serve no database and are not counted.
func backendsCPU(b *testing.B, pool *pgxpool.Pool, before map[int]time.Duration) map[int]time.Duration {
	rows, err := pool.Query(context.Background(), `SELECT pid FROM pg_stat_activity WHERE datname = current_database()`)
	if err != nil {
		b.Fatal(err)
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		b.Fatal(err)
	}
	cpu := map[int]time.Duration{}
	for _, pid := range pids {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
			cpu[int(pid)] = procCPU(b, int(pid)) - before[int(pid)]
		}
	}
	return cpu
}

func sum(m map[int]time.Duration) time.Duration {
	var t time.Duration
	for _, d := range m {
		t += d
	}
	return t
}

// timeCounts times, as the median of 20 reads, every server's active
// peers read by counting the peers (what `servers list` and /metrics did)
// and by postgres.ServerActivePeers (server_load less the disabled ones).
func timeCounts(b *testing.B, pool *pgxpool.Pool) (counted, held time.Duration) {
	median := func(sql string) time.Duration {
		var took []time.Duration
		for range 20 {
			t0 := time.Now()
			rows, err := pool.Query(context.Background(), sql)
			if err != nil {
				b.Fatal(err)
			}
			rows.Close()
			if rows.Err() != nil {
				b.Fatal(rows.Err())
			}
			took = append(took, time.Since(t0))
		}
		slices.Sort(took)
		return took[len(took)/2]
	}
	counted = median(`SELECT sv.name, (SELECT count(*) FROM peers p WHERE p.server_id = sv.id AND p.status = 'active') FROM servers sv`)
	held = median(`SELECT sv.name, ` + postgres.ServerActivePeers + ` FROM servers sv`)
	return counted, held
}

// fileWrites is how many times the nodes wrote their wg0.conf so far,
// from their /metrics.
func fileWrites(b *testing.B, urls []string) int64 {
	var n int64
	for _, u := range urls {
		code, body := fetch(u)
		if code != 200 {
			b.Fatalf("%s: %d %s", u, code, body)
		}
		for _, l := range strings.Split(body, "\n") {
			if v, ok := strings.CutPrefix(l, `wgbot_reconcile_changes_total{target="file"} `); ok {
				f, _ := strconv.ParseFloat(v, 64)
				n += int64(f)
			}
		}
	}
	return n
}

// machineCPU is the machine's busy and total CPU ticks so far
// (/proc/stat), to tell how much of it the run had.
func machineCPU(b *testing.B) (busy, total int64) {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		b.Fatal(err)
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	for i, f := range strings.Fields(line)[1:] {
		v, _ := strconv.ParseInt(f, 10, 64)
		total += v
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return busy, total
}

// procCPUOf is procCPU for a process that may have exited: zero then.
func procCPUOf(b *testing.B, pid int) time.Duration {
	if _, err := os.Stat(fmt.Sprintf("/proc/%d/stat", pid)); err != nil {
		b.Errorf("node process %d is gone", pid)
		return 0
	}
	return procCPU(b, pid)
}
