package tgtest

import (
	"bytes"
	"context"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

func TestAuthAndUnknownMethod(t *testing.T) {
	s := newServer(t)
	tests := []struct {
		name, path string
		status     int
		body       string
	}{
		{"wrong token", "/bot123456:wrong/getMe", 401, `{"ok":false,"error_code":401,"description":"Unauthorized"}`},
		{"unknown method", "/bot" + testToken + "/sendTelepathy", 404, `{"ok":false,"error_code":404,"description":"Not Found"}`},
		{"no method", "/bot" + testToken + "/", 404, `{"ok":false,"error_code":404,"description":"Not Found"}`},
		{"method names ignore case", "/bot" + testToken + "/GETME", 200, `{"ok":true,"result":{"id":123456,"is_bot":true,"first_name":"Test Bot","username":"tgtest_bot","can_join_groups":true,"can_read_all_group_messages":false,"supports_inline_queries":false,"can_connect_to_business":false,"has_main_web_app":false}}`},
		{"download with a wrong token", "/file/bot123456:wrong/documents/file_1.conf", 404, `{"ok":false,"error_code":404,"description":"Not Found"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.Get(s.URL() + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			r := decodeReply(t, resp)
			if r.Status != tt.status || r.Raw != tt.body {
				t.Errorf("got %d %s\nwant %d %s", r.Status, r.Raw, tt.status, tt.body)
			}
		})
	}
}

// Every encoding a client may use reaches the same method with the same
// parameters.
func TestRequestEncodings(t *testing.T) {
	s := newServer(t)
	s.AddUser(alice)
	chat := strconv.FormatInt(alice.ID, 10)
	markup := `{"inline_keyboard":[[{"text":"Buy","callback_data":"buy"}]]}`
	endpoint := s.URL() + "/bot" + testToken + "/sendMessage"

	multipartBody := func() (*bytes.Buffer, string) {
		var buf bytes.Buffer
		w := multipart.NewWriter(&buf)
		_ = w.WriteField("chat_id", chat)
		_ = w.WriteField("text", "multipart")
		_ = w.WriteField("reply_markup", markup)
		_ = w.Close()
		return &buf, w.FormDataContentType()
	}
	send := map[string]func() (*http.Response, error){
		"json": func() (*http.Response, error) {
			body := fmt.Sprintf(`{"chat_id":%s,"text":"json","reply_markup":%s}`, chat, markup)
			return http.Post(endpoint, "application/json", bytes.NewBufferString(body))
		},
		"json with markup as a string": func() (*http.Response, error) {
			body := fmt.Sprintf(`{"chat_id":"%s","text":"json string","reply_markup":%q}`, chat, markup)
			return http.Post(endpoint, "application/json; charset=utf-8", bytes.NewBufferString(body))
		},
		"urlencoded": func() (*http.Response, error) {
			return http.PostForm(endpoint, url.Values{"chat_id": {chat}, "text": {"urlencoded"}, "reply_markup": {markup}})
		},
		"multipart": func() (*http.Response, error) {
			body, contentType := multipartBody()
			return http.Post(endpoint, contentType, body)
		},
		"query string": func() (*http.Response, error) {
			return http.Get(endpoint + "?" + url.Values{"chat_id": {chat}, "text": {"query string"}, "reply_markup": {markup}}.Encode())
		},
	}
	for name, do := range send {
		t.Run(name, func(t *testing.T) {
			resp, err := do()
			if err != nil {
				t.Fatal(err)
			}
			if r := decodeReply(t, resp); !r.OK {
				t.Fatalf("%s", r.Raw)
			}
		})
	}
	msgs := s.Messages(alice.ID)
	if len(msgs) != len(send) {
		t.Fatalf("%d messages, want %d", len(msgs), len(send))
	}
	for _, m := range msgs {
		if len(m.Keyboard) != 1 || m.Keyboard[0][0].CallbackData != "buy" {
			t.Errorf("message %q lost its keyboard: %+v", m.Text, m.Keyboard)
		}
	}
}

func TestGetUpdatesOffset(t *testing.T) {
	s := newServer(t)
	get := func(v url.Values) []int64 { return updateIDs(updatesOf(t, callForm(t, s, "getUpdates", v))) }

	for i := range 3 {
		s.SendText(alice, fmt.Sprint("msg ", i))
	}
	if got := get(nil); !slices.Equal(got, []int64{1, 2, 3}) {
		t.Fatalf("first getUpdates = %v", got)
	}
	// Without an offset nothing is confirmed: the same updates come again.
	if got := get(nil); !slices.Equal(got, []int64{1, 2, 3}) {
		t.Errorf("unconfirmed updates = %v", got)
	}
	if got := get(url.Values{"limit": {"1"}}); !slices.Equal(got, []int64{1}) {
		t.Errorf("limit 1 = %v", got)
	}
	// offset confirms every update below it, for good.
	if got := get(url.Values{"offset": {"3"}}); !slices.Equal(got, []int64{3}) {
		t.Errorf("offset 3 = %v", got)
	}
	if got := get(nil); !slices.Equal(got, []int64{3}) {
		t.Errorf("confirmed updates came back: %v", got)
	}
	s.SendText(alice, "four")
	s.SendText(alice, "five")
	// A negative offset keeps only the last -offset updates.
	if got := get(url.Values{"offset": {"-1"}}); !slices.Equal(got, []int64{5}) {
		t.Errorf("offset -1 = %v", got)
	}
	if got := get(url.Values{"offset": {"6"}}); len(got) != 0 {
		t.Errorf("after confirming everything = %v", got)
	}
	if n := s.PendingUpdates(); n != 0 {
		t.Errorf("PendingUpdates = %d", n)
	}

	// Redeliver hands an old update out again, alone, even below the offset,
	// and it is confirmed like any other once received.
	s.SendText(alice, "six")
	if err := s.Redeliver(2); err != nil {
		t.Fatal(err)
	}
	if got := get(url.Values{"offset": {"6"}}); !slices.Equal(got, []int64{6}) {
		t.Errorf("before the redelivery = %v", got)
	}
	ups := updatesOf(t, callForm(t, s, "getUpdates", url.Values{"offset": {"7"}}))
	if len(ups) != 1 || ups[0].UpdateID != 2 || ups[0].Message.Text != "msg 1" {
		t.Errorf("redelivered = %+v", ups)
	}
	if got := get(url.Values{"offset": {"3"}}); len(got) != 0 {
		t.Errorf("redelivery not confirmed: %v", got)
	}
	if err := s.Redeliver(99); err == nil {
		t.Error("Redeliver of an update never sent succeeded")
	}
}

func TestGetUpdatesLongPoll(t *testing.T) {
	s := newServer(t)
	type result struct {
		reply apiReply
		took  time.Duration
	}
	poll := func(timeout int) <-chan result {
		ch := make(chan result, 1)
		go func() {
			start := time.Now()
			r := callForm(t, s, "getUpdates", url.Values{"timeout": {strconv.Itoa(timeout)}})
			ch <- result{r, time.Since(start)}
		}()
		return ch
	}
	waitPolls := func(n int) {
		t.Helper()
		ctx := testContext(t)
		if err := s.Wait(ctx, func() bool { s.mu.Lock(); defer s.mu.Unlock(); return s.pollGen >= int64(n) }); err != nil {
			t.Fatal(err)
		}
	}

	// A waiting poll returns as soon as an update arrives.
	first := poll(30)
	waitPolls(1)
	s.SendText(alice, "wake up")
	r := <-first
	if ids := updateIDs(updatesOf(t, r.reply)); !slices.Equal(ids, []int64{1}) || r.took > 10*time.Second {
		t.Errorf("long poll returned %v after %v", ids, r.took)
	}

	// A second poll ends the first with 409, as Telegram does when two bot
	// instances run at once.
	callForm(t, s, "getUpdates", url.Values{"offset": {"2"}})
	older := poll(30)
	waitPolls(3)
	newer := poll(1)
	o := <-older
	if o.reply.Status != http.StatusConflict || o.reply.Description != "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running" {
		t.Errorf("older poll = %d %s", o.reply.Status, o.reply.Raw)
	}
	if n := <-newer; !n.reply.OK || string(n.reply.Result) != "[]" {
		t.Errorf("newer poll = %s", n.reply.Raw)
	}

	// Setting a webhook ends a waiting poll with the webhook conflict.
	waiting := poll(30)
	waitPolls(5)
	if r := callForm(t, s, "setWebhook", url.Values{"url": {"http://127.0.0.1:1/hook"}}); !r.OK {
		t.Fatal(r.Raw)
	}
	if w := <-waiting; w.reply.Status != http.StatusConflict || w.reply.Description != webhookConflict().description {
		t.Errorf("poll during setWebhook = %d %s", w.reply.Status, w.reply.Raw)
	}
}

func TestCommandEntities(t *testing.T) {
	s := newServer(t)
	s.SendText(alice, "/start@tgtest_bot ref_42")
	s.SendText(alice, "привет /help")
	ups := updatesOf(t, callForm(t, s, "getUpdates", nil))
	if len(ups) != 2 {
		t.Fatalf("%d updates", len(ups))
	}
	e := ups[0].Message.Entities
	if len(e) != 1 || e[0].Type != "bot_command" || e[0].Offset != 0 || e[0].Length != 17 {
		t.Errorf("entities of /start@tgtest_bot = %+v", e)
	}
	// Offsets count UTF-16 code units, not bytes.
	e = ups[1].Message.Entities
	if len(e) != 1 || e[0].Offset != 7 || e[0].Length != 5 {
		t.Errorf("entities of a command after Cyrillic text = %+v", e)
	}
}

func TestEditAndDelete(t *testing.T) {
	s := newServer(t)
	s.AddUser(alice)
	markup := `{"inline_keyboard":[[{"text":"Pay","callback_data":"pay"}]]}`
	send := callJSON(t, s, "sendMessage", map[string]any{"chat_id": alice.ID, "text": "Choose", "reply_markup": markup})
	if !send.OK {
		t.Fatal(send.Raw)
	}
	id := s.Messages(alice.ID)[0].ID
	edit := func(method string, fields map[string]any) apiReply {
		fields["chat_id"] = alice.ID
		if _, ok := fields["message_id"]; !ok {
			fields["message_id"] = id
		}
		return callJSON(t, s, method, fields)
	}
	tests := []struct {
		name   string
		method string
		fields map[string]any
		want   string // "" for success, else the description
	}{
		{"same text and keyboard", "editMessageText", map[string]any{"text": "Choose", "reply_markup": markup}, "Bad Request: " + notModified},
		{"new keyboard only", "editMessageReplyMarkup", map[string]any{"reply_markup": `{"inline_keyboard":[[{"text":"Paid","callback_data":"done"}]]}`}, ""},
		{"same keyboard again", "editMessageReplyMarkup", map[string]any{"reply_markup": `{"inline_keyboard":[[{"text":"Paid","callback_data":"done"}]]}`}, "Bad Request: " + notModified},
		{"new text drops the keyboard", "editMessageText", map[string]any{"text": "Done"}, ""},
		{"unknown message", "editMessageText", map[string]any{"text": "x", "message_id": 99}, "Bad Request: message to edit not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := edit(tt.method, tt.fields)
			if tt.want == "" && !r.OK {
				t.Errorf("failed: %s", r.Raw)
			}
			if tt.want != "" && r.Description != tt.want {
				t.Errorf("description = %q, want %q", r.Description, tt.want)
			}
		})
	}
	m := s.Messages(alice.ID)[0]
	if m.Text != "Done" || m.Keyboard != nil || m.EditedAt.IsZero() {
		t.Errorf("after edits: %+v", m)
	}
	if _, err := s.PressButton(alice, id, "pay"); err == nil {
		t.Error("pressed a button the edit removed")
	}

	del := func() apiReply {
		return callForm(t, s, "deleteMessage", url.Values{"chat_id": {strconv.FormatInt(alice.ID, 10)}, "message_id": {strconv.Itoa(id)}})
	}
	if r := del(); !r.OK {
		t.Fatalf("delete: %s", r.Raw)
	}
	if r := del(); r.Description != "Bad Request: message to delete not found" {
		t.Errorf("second delete: %s", r.Raw)
	}
	if r := edit("editMessageText", map[string]any{"text": "again"}); r.Description != "Bad Request: message to edit not found" {
		t.Errorf("edit after delete: %s", r.Raw)
	}
	if m := s.Messages(alice.ID)[0]; !m.Deleted {
		t.Errorf("Deleted not set: %+v", m)
	}
}

func TestCallbackAnswerOnce(t *testing.T) {
	s := newServer(t)
	s.AddUser(alice)
	callJSON(t, s, "sendMessage", map[string]any{"chat_id": alice.ID, "text": "x", "reply_markup": map[string]any{
		"inline_keyboard": [][]map[string]string{{{"text": "Go", "callback_data": "go"}}},
	}})
	upd, err := s.PressButton(alice, s.Messages(alice.ID)[0].ID, "go")
	if err != nil {
		t.Fatal(err)
	}
	var q struct {
		CallbackQuery struct {
			ID      string `json:"id"`
			Data    string `json:"data"`
			Message struct {
				MessageID int `json:"message_id"`
				Date      int `json:"date"`
			} `json:"message"`
		} `json:"callback_query"`
	}
	if err := unmarshalOne(t, s, &q); err != nil {
		t.Fatal(err)
	}
	if q.CallbackQuery.Data != "go" || q.CallbackQuery.Message.Date == 0 || q.CallbackQuery.Message.MessageID != 1 {
		t.Errorf("callback_query = %+v", q.CallbackQuery)
	}
	answer := func() apiReply {
		return callForm(t, s, "answerCallbackQuery", url.Values{"callback_query_id": {q.CallbackQuery.ID}, "text": {"ok"}, "show_alert": {"true"}})
	}
	if r := answer(); !r.OK {
		t.Fatal(r.Raw)
	}
	if r := answer(); r.Description != "Bad Request: "+queryTooOld {
		t.Errorf("second answer: %s", r.Raw)
	}
	if a, ok := s.CallbackAnswer(upd); !ok || a.Text != "ok" || !a.ShowAlert {
		t.Errorf("CallbackAnswer = %+v, %v", a, ok)
	}
}

func TestConcurrentUse(t *testing.T) {
	s := newServer(t)
	const users, perUser = 8, 10
	var wg sync.WaitGroup
	for u := range users {
		user := User{ID: int64(2000 + u), FirstName: "U"}
		s.AddUser(user)
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range perUser {
				s.SendText(user, fmt.Sprint("m", i))
			}
		}()
		go func() {
			defer wg.Done()
			for i := range perUser {
				r := callJSON(t, s, "sendMessage", map[string]any{"chat_id": user.ID, "text": fmt.Sprint("reply ", i)})
				if !r.OK {
					t.Error(r.Raw)
				}
			}
		}()
	}
	wg.Wait()

	ids := updateIDs(updatesOf(t, callForm(t, s, "getUpdates", nil)))
	want := make([]int64, users*perUser)
	for i := range want {
		want[i] = int64(i + 1)
	}
	if !slices.Equal(ids, want) {
		t.Errorf("update ids = %v, want 1..%d in order", ids, len(want))
	}
	for u := range users {
		msgs := s.Messages(int64(2000 + u))
		if len(msgs) != perUser {
			t.Fatalf("chat %d has %d messages", 2000+u, len(msgs))
		}
		for i := 1; i < len(msgs); i++ {
			if msgs[i].ID <= msgs[i-1].ID || msgs[i].Text != fmt.Sprint("reply ", i) {
				t.Errorf("chat %d message %d: id %d after %d, text %q", 2000+u, i, msgs[i].ID, msgs[i-1].ID, msgs[i].Text)
			}
		}
	}
}

func TestWaitMessagesStopsWithContext(t *testing.T) {
	s := newServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.WaitMessages(ctx, alice.ID, 1); err == nil {
		t.Error("WaitMessages returned without messages or an error")
	}
}

func unmarshalOne(t *testing.T, s *Server, dst any) error {
	t.Helper()
	r := callForm(t, s, "getUpdates", nil)
	var raw []jsonRaw
	if err := jsonUnmarshal(r.Result, &raw); err != nil {
		return err
	}
	if len(raw) != 1 {
		return fmt.Errorf("%d updates, want 1: %s", len(raw), r.Raw)
	}
	return jsonUnmarshal(raw[0], dst)
}
