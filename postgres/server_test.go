package postgres_test

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"wgbot"
	"wgbot/postgres"
	"wgbot/postgres/pgtest"
)

// ensureServerChildEnv makes the test binary a child that calls
// EnsureServer from several goroutines at the start time it is given.
const ensureServerChildEnv = "WGBOT_ENSURE_SERVER_CHILD"

var mainServer = wgbot.Server{Name: "wg0", Interface: "wg0", Endpoint: "vpn.example.com:51820",
	Subnet: netip.MustParsePrefix("10.44.0.0/24"), Address: netip.MustParseAddr("10.44.0.1"), PublicKey: "srv"}

// ensureConcurrently calls EnsureServer from n goroutines released together
// at start, and returns the ids they got.
func ensureConcurrently(ctx context.Context, url string, n int, start time.Time) ([]int64, error) {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	if err := pool.Ping(ctx); err != nil {
		return nil, err
	}
	store := postgres.NewStore(pool, postgres.Options{LockID: 720301}, nil)
	ids := make([]int64, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			time.Sleep(time.Until(start))
			srv, err := store.EnsureServer(ctx, mainServer)
			ids[i], errs[i] = srv.ID, err
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return ids, nil
}

func ensureServerChild(url string) error {
	nanos, err := strconv.ParseInt(os.Getenv("CHILD_START"), 10, 64)
	if err != nil {
		return fmt.Errorf("CHILD_START: %w", err)
	}
	ids, err := ensureConcurrently(context.Background(), url, 4, time.Unix(0, nanos))
	if err != nil {
		return err
	}
	for _, id := range ids {
		fmt.Println(id)
	}
	return nil
}

// Several wgbot processes starting at once on a fresh database each ensure
// the server row: every one must succeed and all must get the same row. A
// SELECT … FOR UPDATE followed by an INSERT lets two of them insert.
func TestEnsureServerConcurrentFirstStart(t *testing.T) {
	ctx := context.Background()
	const rounds, processes = 5, 4
	for round := range rounds {
		url := pgtest.URL(t)
		start := time.Now().Add(500 * time.Millisecond)
		var cmds []*exec.Cmd
		var outs []*bytes.Buffer
		for range processes {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), ensureServerChildEnv+"="+url, "CHILD_START="+strconv.FormatInt(start.UnixNano(), 10))
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			cmds, outs = append(cmds, cmd), append(outs, &out)
		}
		ids, err := ensureConcurrently(ctx, url, 4, start)
		if err != nil {
			t.Errorf("round %d, this process: %v", round, err)
		}
		seen := map[string]bool{}
		for _, id := range ids {
			seen[strconv.FormatInt(id, 10)] = true
		}
		for i, cmd := range cmds {
			if err := cmd.Wait(); err != nil {
				t.Errorf("round %d, process %d: %v\n%s", round, i, err, outs[i])
				continue
			}
			for _, line := range bytes.Fields(outs[i].Bytes()) {
				seen[string(line)] = true
			}
		}
		if len(seen) != 1 {
			t.Errorf("round %d: EnsureServer returned %d different ids, want 1: %v", round, len(seen), seen)
		}
		pool, err := pgxpool.New(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		var rows int
		err = pool.QueryRow(ctx, `SELECT count(*) FROM servers`).Scan(&rows)
		pool.Close()
		if err != nil || rows != 1 {
			t.Errorf("round %d: %d server rows (%v), want 1", round, rows, err)
		}
	}
}
