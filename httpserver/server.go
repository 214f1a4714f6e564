package httpserver

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"golang.org/x/net/netutil"
)

// Defaults of Limits. A webhook is a few kilobytes from a data centre, so
// a client that has not sent its request within these is stuck or hostile.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 20 * time.Second
	DefaultWriteTimeout      = 60 * time.Second
	DefaultIdleTimeout       = 60 * time.Second
	DefaultMaxHeaderBytes    = 32 << 10
	DefaultMaxBodyBytes      = 1 << 20 // Telegram's largest update fits
	DefaultMaxConns          = 512
)

// Limits bound what one client can hold of a listener: I11 says slow or
// idle clients are cut off. Zero fields take the defaults above.
type Limits struct {
	ReadHeaderTimeout time.Duration // from accept (or the end of the last request) to the end of the headers
	ReadTimeout       time.Duration // the whole request, body included
	// WriteTimeout runs from the end of the request headers to the end of
	// the response, so it must cover reading the body and the slowest
	// handler's work.
	WriteTimeout   time.Duration
	IdleTimeout    time.Duration // a kept-alive connection between requests
	MaxHeaderBytes int
	MaxBodyBytes   int64 // larger bodies are answered 413; handlers may cap lower
	MaxConns       int   // connections open at once; more wait in the kernel's backlog
}

func (l Limits) withDefaults() Limits {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	def(&l.ReadTimeout, DefaultReadTimeout)
	def(&l.WriteTimeout, DefaultWriteTimeout)
	def(&l.IdleTimeout, DefaultIdleTimeout)
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if l.MaxConns <= 0 {
		l.MaxConns = DefaultMaxConns
	}
	return l
}

// Server is one listener's HTTP server with its limits applied.
type Server struct {
	srv      *http.Server
	maxConns int
}

// NewServer wraps h in the body cap and returns a server with every
// timeout of l set.
func NewServer(h http.Handler, l Limits) *Server {
	l = l.withDefaults()
	return &Server{
		srv: &http.Server{
			Handler:           limitBody(h, l.MaxBodyBytes),
			ReadHeaderTimeout: l.ReadHeaderTimeout,
			ReadTimeout:       l.ReadTimeout,
			WriteTimeout:      l.WriteTimeout,
			IdleTimeout:       l.IdleTimeout,
			MaxHeaderBytes:    l.MaxHeaderBytes,
		},
		maxConns: l.MaxConns,
	}
}

// Serve accepts at most MaxConns connections at once from ln until
// Shutdown; then it returns http.ErrServerClosed.
func (s *Server) Serve(ln net.Listener) error {
	return s.srv.Serve(netutil.LimitListener(ln, s.maxConns))
}

// Shutdown stops accepting, closes idle connections and waits for active
// ones until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }

// limitBody refuses a declared Content-Length over max at once and caps
// what a handler can read of any other body, so a chunked body cannot grow
// past it either (the handler's read fails with *http.MaxBytesError, which
// wgbot's handlers answer with 413).
func limitBody(h http.Handler, max int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > max {
			w.Header().Set("Connection", "close")
			http.Error(w, fmt.Sprintf("request body too large (limit %d bytes)", max), http.StatusRequestEntityTooLarge)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, max)
		h.ServeHTTP(w, r)
	})
}
