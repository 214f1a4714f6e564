package httpserver_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"wgbot/httpserver"
)

// readAll stands for a webhook: it reads the whole body, answering 413
// when the server's cap stops it, as wgbot's handlers do.
var readAll = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		http.Error(w, "too large", http.StatusRequestEntityTooLarge)
	case err != nil:
		http.Error(w, "bad request", http.StatusBadRequest)
	default:
		fmt.Fprintf(w, "read %d bytes", len(body))
	}
})

func routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /webhooks/cryptopay", readAll)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	return mux
}

// countingListener records how many accepted connections are open at once.
type countingListener struct {
	net.Listener
	open, peak atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	n := l.open.Add(1)
	for {
		p := l.peak.Load()
		if n <= p || l.peak.CompareAndSwap(p, n) {
			break
		}
	}
	return &countedConn{Conn: c, l: l}, nil
}

type countedConn struct {
	net.Conn
	l    *countingListener
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.l.open.Add(-1) })
	return c.Conn.Close()
}

// serve starts a server with limits on a loopback port and returns its
// address and listener.
func serve(t *testing.T, h http.Handler, l httpserver.Limits) (string, *countingListener) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &countingListener{Listener: ln}
	srv := httpserver.NewServer(h, l)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(cl) }()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return ln.Addr().String(), cl
}

// The attack: 200 connections trickle a body to a webhook. Each is
// closed once ReadTimeout has passed, and a normal request is answered
// while they trickle. With only ReadHeaderTimeout they stayed open.
func TestSlowBodiesAreCutOff(t *testing.T) {
	const slow = 200
	const readTimeout = 2 * time.Second
	addr, ln := serve(t, routes(), httpserver.Limits{ReadHeaderTimeout: time.Second, ReadTimeout: readTimeout,
		WriteTimeout: 5 * time.Second, MaxConns: 2 * slow})

	start := time.Now()
	closedAfter := make(chan time.Duration, slow)
	stop := make(chan struct{})
	defer close(stop)
	for range slow {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		go trickle(c, start, stop, closedAfter)
	}
	waitFor(t, 5*time.Second, "the slow connections to be accepted", func() bool { return ln.open.Load() == slow })

	// A normal webhook call while they trickle.
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Post("http://"+addr+"/webhooks/cryptopay", "application/json", strings.NewReader(`{"ok":true}`))
	if err != nil {
		t.Fatalf("a normal request while %d clients trickle: %v", slow, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "read 11 bytes" {
		t.Fatalf("a normal request while %d clients trickle: %d %q", slow, resp.StatusCode, body)
	}

	// A trickler sends one byte every 100ms of a 1000-byte body: left alone
	// it would hold its connection for 100 s.
	deadline := time.After(readTimeout + 5*time.Second)
	var latest time.Duration
	for i := range slow {
		select {
		case d := <-closedAfter:
			latest = max(latest, d)
		case <-deadline:
			t.Fatalf("%d of %d trickling connections still open %v after they started (ReadTimeout %v)",
				slow-i, slow, time.Since(start).Round(time.Millisecond), readTimeout)
		}
	}
	t.Logf("all %d trickling connections closed by the server, the last after %v", slow, latest.Round(time.Millisecond))
	waitFor(t, 2*time.Second, "the server to close its side", func() bool { return ln.open.Load() == 0 })
}

// trickle sends a request whose body comes one byte at a time and reports
// when the server ends the connection (its answer and EOF, or a reset).
func trickle(c net.Conn, start time.Time, stop <-chan struct{}, closedAfter chan<- time.Duration) {
	defer c.Close()
	fmt.Fprintf(c, "POST /webhooks/cryptopay HTTP/1.1\r\nHost: wgbot\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
	ended := make(chan struct{})
	go func() {
		io.Copy(io.Discard, c) // returns when the server closes
		close(ended)
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ended:
			closedAfter <- time.Since(start)
			return
		case <-stop:
			return
		case <-tick.C:
			c.Write([]byte("x"))
		}
	}
}

// More clients than MaxConns: the server never holds more connections than
// the cap, and the ones waiting are served once holders are cut off.
func TestConnectionCap(t *testing.T) {
	const limit, holders, waiting = 10, 10, 20
	addr, ln := serve(t, routes(), httpserver.Limits{ReadHeaderTimeout: time.Second, MaxConns: limit})

	// Holders send half a request line and nothing more.
	for range holders {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("GET /hea"))
	}
	waitFor(t, 5*time.Second, "the holders to be accepted", func() bool { return ln.open.Load() == limit })

	var wg sync.WaitGroup
	errs := make(chan error, waiting)
	for range waiting {
		wg.Go(func() {
			client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			resp, err := client.Get("http://" + addr + "/healthz")
			if err != nil {
				errs <- err
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				errs <- fmt.Errorf("status %d", resp.StatusCode)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("a request waiting for a free connection: %v", err)
	}
	if peak := ln.peak.Load(); peak != limit {
		t.Errorf("at most %d connections were open at once, want exactly the cap %d", peak, limit)
	}
}

// Headers over MaxHeaderBytes get 431; a body over MaxBodyBytes gets 413,
// whether its length is declared or it comes chunked to a handler with no
// cap of its own; one just under the cap is read whole.
func TestOversizedRequestsRefused(t *testing.T) {
	const maxBody = 4 << 10
	addr, _ := serve(t, routes(), httpserver.Limits{MaxHeaderBytes: 4 << 10, MaxBodyBytes: maxBody})
	url := "http://" + addr + "/webhooks/cryptopay"

	send := func(req *http.Request) (int, string) {
		t.Helper()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	big := strings.Repeat("x", maxBody+1)

	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader("{}"))
	req.Header.Set("X-Padding", strings.Repeat("a", 64<<10))
	if code, _ := send(req); code != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("64 KiB of headers: %d, want 431", code)
	}

	req, _ = http.NewRequest(http.MethodPost, url, strings.NewReader(big))
	if code, body := send(req); code != http.StatusRequestEntityTooLarge || !strings.Contains(body, "request body too large") {
		t.Errorf("declared body over the cap: %d %q, want 413 saying so", code, body)
	}

	// io.MultiReader hides the length: the body goes chunked.
	req, _ = http.NewRequest(http.MethodPost, url, io.MultiReader(strings.NewReader(big)))
	if req.ContentLength != 0 {
		t.Fatal("the body should go without a declared length")
	}
	if code, _ := send(req); code != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked body over the cap: %d, want 413", code)
	}

	req, _ = http.NewRequest(http.MethodPost, url, strings.NewReader(big[:maxBody]))
	if code, body := send(req); code != http.StatusOK || body != fmt.Sprintf("read %d bytes", maxBody) {
		t.Errorf("body at the cap: %d %q", code, body)
	}
}

// An idle kept-alive connection is closed after IdleTimeout.
func TestIdleConnectionsClosed(t *testing.T) {
	addr, ln := serve(t, routes(), httpserver.Limits{IdleTimeout: 500 * time.Millisecond})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: wgbot\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("first request: %v %v", resp, err)
	}
	resp.Body.Close()
	waitFor(t, 5*time.Second, "the idle connection to be closed", func() bool { return ln.open.Load() == 0 })
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
