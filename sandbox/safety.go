package sandbox

import (
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strings"
)

// realToken is the shape of a token from @BotFather: the bot's id, a colon
// and a 35-character secret. The sandbox's own token is short on purpose.
var realToken = regexp.MustCompile(`^\d+:[A-Za-z0-9_-]{30,}$`)

// Token is the Bot API token the sandbox's bot and emulator share; it can
// never be mistaken for a real one. BotID is its id part.
const (
	Token       = "123456:sandbox"
	BotID int64 = 123456
)

// CheckSafe lists the reasons sandbox mode must not start here: a real
// Telegram token in the settings means this is (or is configured like)
// production, and a listener on a non-loopback address would offer the
// emulated Telegram and payments, with free "payments", to the network.
// setting names where listen came from (HTTP_ADDR or --listen).
func CheckSafe(botToken, setting, listen string) []string {
	var problems []string
	if realToken.MatchString(strings.TrimSpace(botToken)) {
		problems = append(problems, "BOT_TOKEN: looks like a real token from @BotFather; the sandbox refuses to start next to one "+
			"(it fakes Telegram and payments). Run `wgbot serve` for the real bot, or unset BOT_TOKEN (and remove it from .env) to use the sandbox")
	}
	if err := loopbackOnly(listen); err != nil {
		problems = append(problems, fmt.Sprintf("%s: %v; the sandbox serves fake payments and must only listen on loopback, "+
			"such as 127.0.0.1:8088", setting, err))
	}
	return problems
}

// loopbackOnly accepts host:port whose host is a loopback address or
// "localhost"; any other name could resolve to anything.
func loopbackOnly(hostPort string) error {
	host, _, err := net.SplitHostPort(hostPort)
	if err != nil {
		return fmt.Errorf("%q is not host:port", hostPort)
	}
	if host == "" {
		return fmt.Errorf("%q listens on every interface", hostPort)
	}
	if strings.EqualFold(host, "localhost") {
		return nil
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("%q is not a loopback address (use 127.0.0.1 or ::1)", hostPort)
	}
	if !addr.Unmap().IsLoopback() {
		return fmt.Errorf("%q is not a loopback address", hostPort)
	}
	return nil
}
