package main

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"wgbot/postgres/pgtest"
)

// The operator's server and promo commands are in the audit log as the
// CLI's (admin 0), each with the state before and after; a command
// refused, or one that changes nothing, leaves no row.
func TestOperatorCommandsAudited(t *testing.T) {
	env := serveEnv(t, pgtest.URL(t), "http://127.0.0.1:9", nil)
	ok := func(args ...string) { wgbotOK(t, env, args...) }
	refused := func(args ...string) {
		t.Helper()
		if out, err := runWgbot(env, args...).CombinedOutput(); err == nil {
			t.Fatalf("wgbot %s succeeded:\n%s", strings.Join(args, " "), out)
		}
	}
	ok("servers", "add", "ams-1", "--location", "Amsterdam", "--endpoint", "ams.example.com:51820", "--subnet", "10.64.0.0/24")
	refused("servers", "add", "ams-2", "--location", "Amsterdam", "--endpoint", "x:1", "--subnet", "10.64.0.0/25") // overlaps
	ok("servers", "drain", "ams-1")
	ok("servers", "drain", "ams-1") // drained already: nothing changes
	refused("servers", "drain", "nowhere")
	ok("servers", "enable", "ams-1")
	ok("servers", "remove", "ams-1")
	refused("servers", "remove", "ams-1")
	ok("promo", "add", "SPRING", "--days", "3")
	ok("promo", "disable", "SPRING")
	ok("promo", "disable", "SPRING")

	conn, err := pgx.Connect(context.Background(), env["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(context.Background(), `SELECT source || ':' || admin_id || ':' || action || ':' ||
			COALESCE(before->>'state', before->>'disabled', '-') || '>' || COALESCE(after->>'state', after->>'disabled', '-')
		FROM audit_log ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	want := "cli:0:server_add:->active cli:0:drain:active>draining cli:0:enable:draining>active cli:0:server_remove:active>- " +
		"cli:0:promo_add:->false cli:0:promo_disable:false>true"
	if strings.Join(got, " ") != want {
		t.Fatalf("audit log:\n%s\nwant:\n%s", strings.Join(got, " "), want)
	}
}
