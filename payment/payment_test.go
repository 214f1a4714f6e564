package payment_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"wgbot"
	"wgbot/metrics"
	"wgbot/payment"
	"wgbot/payment/cryptopay/cryptopaytest"
	"wgbot/payment/yookassa/yookassatest"
	"wgbot/postgres/pgtest"
	"wgbot/service"
	"wgbot/service/servicetest"
)

func TestMain(m *testing.M) {
	if os.Getenv(checkoutChildEnv) != "" {
		if err := checkoutChild(); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	pgtest.Main(m)
}

type env struct {
	pool *pgxpool.Pool
	svc  *service.Service
	user wgbot.User
	log  *slog.Logger
}

func setup(t *testing.T) *env {
	e, err := connect(context.Background(), pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.pool.Close)
	return e
}

// connect builds the service on the database at url with its user 1001;
// a child process of a test calls it too.
func connect(ctx context.Context, url string) (*env, error) { return build(ctx, url, false) }

// build is connect with the store's outbox on (jobs) or off.
func build(ctx context.Context, url string, jobs bool) (*env, error) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	stack, err := servicetest.Build(ctx, url, servicetest.Options{Jobs: jobs,
		Server: wgbot.Server{Name: "main", Interface: "wg0", Endpoint: "vpn.example.com:51820",
			Subnet: netip.MustParsePrefix("10.50.0.0/24"), Address: netip.MustParseAddr("10.50.0.1"), PublicKey: "srv"},
		Key: bytes.Repeat([]byte{5}, 32), Log: log,
	})
	if err != nil {
		return nil, err
	}
	pool, svc := stack.Pool, stack.Service
	u, err := svc.Register(ctx, wgbot.User{TelegramID: 1001, Language: "en"}, "")
	if err != nil {
		pool.Close()
		return nil, err
	}
	return &env{pool: pool, svc: svc, user: u, log: log}, nil
}

func (e *env) count(t *testing.T, sql string) int {
	var n int
	if err := e.pool.QueryRow(context.Background(), sql).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// deliver posts a webhook body to the handler from the given address.
func deliver(h http.Handler, from string, body []byte, header map[string]string) int {
	req := httptest.NewRequest(http.MethodPost, "/webhooks/provider", bytes.NewReader(body))
	req.RemoteAddr = from
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code
}

const yooSource = "185.71.76.10:443" // inside YooKassa's published ranges

func newYooKassa(t *testing.T, e *env) (*payment.YooKassa, *yookassatest.Server) {
	emu := yookassatest.NewServer("shop-1", "test_secret")
	t.Cleanup(emu.Close)
	y, err := payment.NewYooKassa(payment.YooKassaConfig{BaseURL: emu.URL, ShopID: "shop-1", SecretKey: "test_secret",
		ReturnURL: "https://t.me/wgbot_test_bot"}, e.svc, metrics.New(nil), e.log)
	if err != nil {
		t.Fatal(err)
	}
	return y, emu
}

// startYooKassa opens a checkout for the user's month order; it returns the
// payment id.
func startYooKassa(t *testing.T, e *env, y *payment.YooKassa, emu *yookassatest.Server) (wgbot.Order, string) {
	ctx := context.Background()
	order, err := e.svc.CreateOrder(ctx, e.user, "month", y.Provider(), y.Currency())
	if err != nil {
		t.Fatal(err)
	}
	url, err := y.Start(ctx, order, e.user)
	if err != nil || url == "" {
		t.Fatalf("start checkout: %q %v", url, err)
	}
	ps := emu.Payments()
	return order, ps[len(ps)-1].ID
}

func TestYooKassa(t *testing.T) {
	t.Run("paid: credited once however often it is delivered", func(t *testing.T) {
		e := setup(t)
		y, emu := newYooKassa(t, e)
		_, id := startYooKassa(t, e, y, emu)
		if err := emu.Succeed(id); err != nil {
			t.Fatal(err)
		}
		body := emu.NotificationBody("payment.succeeded", id)
		var wg sync.WaitGroup
		codes := make(chan int, 50)
		for range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				codes <- deliver(y, yooSource, body, nil)
			}()
		}
		wg.Wait()
		close(codes)
		for c := range codes {
			if c != http.StatusOK {
				t.Fatalf("delivery answered %d", c)
			}
		}
		if n := e.count(t, `SELECT count(*) FROM payments`); n != 1 {
			t.Fatalf("%d payments credited, want 1", n)
		}
		if n := e.count(t, `SELECT count(*) FROM peers`); n != 1 {
			t.Fatalf("%d peers, want 1", n)
		}
		if n := e.count(t, `SELECT count(*) FROM orders WHERE status = 'paid'`); n != 1 {
			t.Fatal("order not marked paid")
		}
	})
	t.Run("refund reverses the credit once", func(t *testing.T) {
		e := setup(t)
		y, emu := newYooKassa(t, e)
		_, id := startYooKassa(t, e, y, emu)
		emu.Succeed(id)
		deliver(y, yooSource, emu.NotificationBody("payment.succeeded", id), nil)
		p, _ := emu.Payment(id)
		if _, err := emu.Refund(id, p.Amount); err != nil {
			t.Fatal(err)
		}
		refundBody := emu.NotificationBody("refund.succeeded", id)
		for range 3 {
			if c := deliver(y, yooSource, refundBody, nil); c != http.StatusOK {
				t.Fatalf("refund delivery answered %d", c)
			}
		}
		if n := e.count(t, `SELECT count(*) FROM payments WHERE status = 'refunded'`); n != 1 {
			t.Fatal("payment not refunded")
		}
		if n := e.count(t, `SELECT count(*) FROM subscriptions WHERE status = 'revoked'`); n != 1 {
			t.Fatal("a fully refunded first month should end access")
		}
	})
	tests := []struct {
		name   string
		from   string
		prep   func(emu *yookassatest.Server, id string) []byte
		status int
	}{
		{"disallowed source address", "203.0.113.9:443", func(emu *yookassatest.Server, id string) []byte {
			emu.Succeed(id)
			return emu.NotificationBody("payment.succeeded", id)
		}, http.StatusForbidden},
		{"forged succeeded, fetched status pending", yooSource, func(emu *yookassatest.Server, id string) []byte {
			return emu.NotificationBody("payment.succeeded", id) // the payment itself is still pending
		}, http.StatusOK},
		{"amount differs from the order", yooSource, func(emu *yookassatest.Server, id string) []byte {
			emu.Succeed(id) // genuine, but the order (changed below) expects another amount
			return emu.NotificationBody("payment.succeeded", id)
		}, http.StatusOK},
		{"malformed JSON", yooSource, func(emu *yookassatest.Server, id string) []byte { return []byte(`{"type":`) }, http.StatusBadRequest},
		{"body over 64 KiB", yooSource, func(emu *yookassatest.Server, id string) []byte {
			return append([]byte(`{"type":"notification","x":"`), bytes.Repeat([]byte("a"), 70<<10)...)
		}, http.StatusRequestEntityTooLarge},
		{"API unreachable during verification", yooSource, func(emu *yookassatest.Server, id string) []byte {
			emu.Succeed(id)
			emu.FailNext(3, http.StatusInternalServerError)
			return emu.NotificationBody("payment.succeeded", id)
		}, http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := setup(t)
			y, emu := newYooKassa(t, e)
			order, id := startYooKassa(t, e, y, emu)
			if strings.HasPrefix(tt.name, "amount") {
				e.pool.Exec(context.Background(), `UPDATE orders SET amount = amount + 100 WHERE id = $1`, order.ID)
			}
			if c := deliver(y, tt.from, tt.prep(emu, id), nil); c != tt.status {
				t.Fatalf("answered %d, want %d", c, tt.status)
			}
			if n := e.count(t, `SELECT count(*) FROM payments`) + e.count(t, `SELECT count(*) FROM peers`); n != 0 {
				t.Fatalf("a refused notification wrote %d rows", n)
			}
		})
	}
}

func TestCryptoPay(t *testing.T) {
	const token = "12345:AAcryptopaytesttoken"
	newCryptoPay := func(t *testing.T, e *env) (*payment.CryptoPay, *cryptopaytest.Server, int64) {
		emu := cryptopaytest.NewServer(token)
		t.Cleanup(emu.Close)
		c, err := payment.NewCryptoPay(payment.CryptoPayConfig{BaseURL: emu.BaseURL(), Token: token, Fiat: "USD"}, e.svc, metrics.New(nil), e.log)
		if err != nil {
			t.Fatal(err)
		}
		order, err := e.svc.CreateOrder(context.Background(), e.user, "month", c.Provider(), c.Currency())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Start(context.Background(), order, e.user); err != nil {
			t.Fatal(err)
		}
		invs := emu.Invoices()
		return c, emu, invs[len(invs)-1].InvoiceID
	}
	t.Run("paid: credited once", func(t *testing.T) {
		e := setup(t)
		c, emu, id := newCryptoPay(t, e)
		if err := emu.Pay(id); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				body, sig := emu.SignedBody(id) // a new update_id each time: dedupe is by invoice
				if code := deliver(c, "127.0.0.1:1", body, map[string]string{"crypto-pay-api-signature": sig}); code != http.StatusOK {
					t.Errorf("answered %d", code)
				}
			}()
		}
		wg.Wait()
		if n := e.count(t, `SELECT count(*) FROM payments WHERE provider = 'cryptopay' AND provider_payment_id = '`+strconv.FormatInt(id, 10)+`'`); n != 1 {
			t.Fatalf("%d credits, want 1", n)
		}
		if n := e.count(t, `SELECT count(*) FROM peers`); n != 1 {
			t.Fatalf("%d peers, want 1", n)
		}
	})
	t.Run("one byte altered after signing", func(t *testing.T) {
		e := setup(t)
		c, emu, id := newCryptoPay(t, e)
		emu.Pay(id)
		body, sig := emu.SignedBody(id)
		body[len(body)/2] ^= 1
		if code := deliver(c, "127.0.0.1:1", body, map[string]string{"crypto-pay-api-signature": sig}); code != http.StatusUnauthorized {
			t.Fatalf("answered %d, want 401", code)
		}
		if code := deliver(c, "127.0.0.1:1", body, nil); code != http.StatusUnauthorized {
			t.Fatalf("unsigned: answered %d, want 401", code)
		}
		if n := e.count(t, `SELECT count(*) FROM payments`); n != 0 {
			t.Fatal("a forged update was credited")
		}
	})
}
