package payment_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"wgbot"
	"wgbot/postgres/pgtest"
)

// checkoutChildEnv makes the test binary a child process that presses Pay
// from several goroutines at the start time it is given.
const checkoutChildEnv = "WGBOT_CHECKOUT_CHILD"

// pressConcurrently presses Pay for the month plan from n goroutines
// released together at start. The checkout it would create is a line
// "started" on out; each press prints "order <id> <url>".
func pressConcurrently(ctx context.Context, e *env, n int, start time.Time, out func(string)) error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			time.Sleep(time.Until(start))
			order, err := e.svc.CreateOrder(ctx, e.user, "month", "cryptopay", "USD")
			if err != nil {
				errs[i] = err
				return
			}
			url, err := e.svc.Checkout(ctx, order.ID, 10*time.Second, func(o wgbot.Order) (string, error) {
				out("started")
				time.Sleep(300 * time.Millisecond) // the provider's answer takes a while
				return "https://pay.example.com/" + itoa(o.ID), nil
			})
			errs[i] = err
			out(fmt.Sprintf("order %d %s", order.ID, url))
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func checkoutChild() error {
	nanos, err := strconv.ParseInt(os.Getenv("CHILD_START"), 10, 64)
	if err != nil {
		return fmt.Errorf("CHILD_START: %w", err)
	}
	ctx := context.Background()
	e, err := connect(ctx, os.Getenv(checkoutChildEnv))
	if err != nil {
		return err
	}
	defer e.pool.Close()
	var mu sync.Mutex
	return pressConcurrently(ctx, e, 5, time.Unix(0, nanos), func(line string) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Println(line)
	})
}

// Pay presses of one user handled at once by several wgbot processes make
// one order and create its checkout once; every press shows that checkout.
func TestPayPressesAcrossProcesses(t *testing.T) {
	const processes = 4
	url := pgtest.URL(t)
	ctx := context.Background()
	e, err := connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer e.pool.Close()
	start := time.Now().Add(time.Second)
	var cmds []*exec.Cmd
	var outs []*bytes.Buffer
	for range processes {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), checkoutChildEnv+"="+url, "CHILD_START="+strconv.FormatInt(start.UnixNano(), 10))
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds, outs = append(cmds, cmd), append(outs, &out)
	}
	var mu sync.Mutex
	var lines []string
	if err := pressConcurrently(ctx, e, 5, start, func(line string) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, line)
	}); err != nil {
		t.Errorf("this process: %v", err)
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("process %d: %v\n%s", i, err, outs[i])
		}
		lines = append(lines, strings.Split(strings.TrimSpace(outs[i].String()), "\n")...)
	}
	started, shown := 0, map[string]int{}
	for _, line := range lines {
		if line == "started" {
			started++
		} else {
			shown[line]++
		}
	}
	if started != 1 || len(shown) != 1 {
		t.Fatalf("%d checkouts created, presses showed %v; want one checkout shown to all 25", started, shown)
	}
	if n := e.count(t, `SELECT count(*) FROM orders`); n != 1 {
		t.Fatalf("%d orders, want 1", n)
	}
}
