package telegram

import (
	"strconv"
	"strings"
	"testing"
)

// TestDeviceNamesAfterRemovals (issue 17, item 5): a new device never
// takes a name or a config file name the user had, whatever was removed,
// and a device can be renamed, with the name checked.
func TestDeviceNamesAfterRemovals(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	for i, lang := range languages() {
		{
			u := user(int64(17301+i), lang)
			h.tg.SendText(u, "/start")
			h.waitMessages(u.ID, 1)
			h.payStars(u, "month", "stx-names-"+lang)
			openSub := func() {
				if _, ok := h.withButton(u.ID, "sub"); ok {
					h.press(u, "sub")
				} else {
					h.press(u, "sub!")
				}
			}
			id := func(name string) string { return strconv.FormatInt(h.peerOf(u.ID, name), 10) }
			add := func(want string) {
				t.Helper()
				openSub()
				n := len(h.messages(u.ID))
				h.press(u, "dev:add")
				doc := h.waitMessages(u.ID, n+3)[n]
				if doc.Document == nil || doc.Document.Name != "wgbot-"+want+".conf" {
					t.Fatalf("added device sent as %s, want wgbot-%s.conf:\n%s", doc.Method, want, dump(h.messages(u.ID)[n:]))
				}
			}
			remove := func(name string) {
				t.Helper()
				openSub()
				peer := id(name)
				h.press(u, "dev:rm:"+peer)
				h.press(u, "dev:rmok:"+peer)
			}
			add("device-2")
			remove("device-2")
			add("device-3")
			remove("device-1")
			add("device-4")

			// Renaming: the name is checked, kept unique, and the file
			// name carries the device's number.
			openSub()
			h.press(u, "dev:ren:"+id("device-3"))
			for _, tc := range []struct {
				name string
				want msg
			}{
				{"device-9", mErrDeviceName},
				{strings.Repeat("x", 25), mErrDeviceName},
				{"DEVICE-4", mErrDeviceName},
				{"device-4 ", mErrDeviceName},
			} {
				n := len(h.messages(u.ID))
				h.tg.SendText(u, tc.name)
				if got := h.waitMessages(u.ID, n+1)[n].Text; got != text(lang, tc.want) {
					t.Errorf("name %q answered %q", tc.name, got)
				}
			}
			n := len(h.messages(u.ID))
			h.tg.SendText(u, "  Phone ")
			screen := h.waitMessages(u.ID, n+1)[n]
			if !strings.HasPrefix(screen.Text, text(lang, mDeviceRenamed, "Phone")) {
				t.Errorf("after renaming:\n%s", screen.Text)
			}
			openSub()
			h.press(u, "dev:ren:"+id("device-4"))
			n = len(h.messages(u.ID))
			h.tg.SendText(u, "phone")
			if got := h.waitMessages(u.ID, n+1)[n].Text; got != text(lang, mErrDeviceNameTaken) {
				t.Errorf("a name another device has answered %q", got)
			}
			h.press(u, "dev:keep")
			n = len(h.messages(u.ID))
			h.tg.SendText(u, "Laptop") // no longer a name: the menu
			if got := h.waitMessages(u.ID, n+1)[n].Text; got != text(lang, mMenu) {
				t.Errorf("a message after Cancel answered %q", got)
			}

			// Leaving through any other button ends the rename too: the
			// next plain message is not taken as the name.
			openSub()
			h.press(u, "dev:ren:"+id("device-4"))
			h.press(u, "menu!")
			n = len(h.messages(u.ID))
			h.tg.SendText(u, "Tablet")
			if got := h.waitMessages(u.ID, n+1)[n].Text; got != text(lang, mMenu) {
				t.Errorf("a message after leaving the rename by the menu answered %q", got)
			}

			openSub()
			n = len(h.messages(u.ID))
			h.press(u, "dev:cfg:"+id("Phone"))
			if doc := h.waitMessages(u.ID, n+1)[n]; doc.Document == nil || doc.Document.Name != "wg3-Phone.conf" {
				t.Errorf("renamed device's config sent as %+v", doc.Document)
			}
			var names string
			h.queryRow(`SELECT string_agg(p.name || ':' || p.number, ',' ORDER BY p.id) FROM peers p
				JOIN subscriptions s ON s.id = p.subscription_id JOIN users u ON u.id = s.user_id WHERE u.telegram_id = $1`, []any{u.ID}, &names)
			if names != "device-1:1,device-2:2,Phone:3,device-4:4" {
				t.Errorf("%s: the user's devices: %s", lang, names)
			}
		}
	}
}
