package tgtest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"
)

const testToken = "123456:TEST-token_abc"

var alice = User{ID: 1001, FirstName: "Alice", Username: "alice", LanguageCode: "en"}

func newServer(t *testing.T, opts ...Option) *Server {
	t.Helper()
	s := New(testToken, opts...)
	t.Cleanup(s.Close)
	return s
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// apiReply is a Bot API response as it came over the wire.
type apiReply struct {
	Status      int
	OK          bool            `json:"ok"`
	Result      json.RawMessage `json:"result"`
	ErrorCode   int             `json:"error_code"`
	Description string          `json:"description"`
	Parameters  *struct {
		RetryAfter int `json:"retry_after"`
	} `json:"parameters"`
	Raw string
}

// The call helpers run in tests' goroutines too, so they report a failure
// with t.Error and return an empty reply (not OK) rather than t.Fatal,
// which would not stop the test from another goroutine.

func decodeReply(t *testing.T, resp *http.Response) apiReply {
	t.Helper()
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Error(err)
		return apiReply{}
	}
	r := apiReply{Status: resp.StatusCode, Raw: string(body)}
	if err := json.Unmarshal(body, &r); err != nil {
		t.Errorf("response %q is not JSON: %v", body, err)
	}
	return r
}

// callForm calls method with an application/x-www-form-urlencoded body.
func callForm(t *testing.T, s *Server, method string, v url.Values) apiReply {
	t.Helper()
	resp, err := http.PostForm(s.URL()+"/bot"+testToken+"/"+method, v)
	if err != nil {
		t.Error(err)
		return apiReply{}
	}
	return decodeReply(t, resp)
}

// callJSON calls method with a JSON body.
func callJSON(t *testing.T, s *Server, method string, body any) apiReply {
	t.Helper()
	data, err := json.Marshal(body)
	if err != nil {
		t.Error(err)
		return apiReply{}
	}
	resp, err := http.Post(s.URL()+"/bot"+testToken+"/"+method, "application/json", bytes.NewReader(data))
	if err != nil {
		t.Error(err)
		return apiReply{}
	}
	return decodeReply(t, resp)
}

// updatesOf decodes a getUpdates result to the fields tests look at.
type testUpdate struct {
	UpdateID int64 `json:"update_id"`
	Message  *struct {
		MessageID int    `json:"message_id"`
		Text      string `json:"text"`
		Entities  []struct {
			Type   string `json:"type"`
			Offset int    `json:"offset"`
			Length int    `json:"length"`
		} `json:"entities"`
	} `json:"message"`
	MyChatMember *struct {
		NewChatMember struct {
			Status string `json:"status"`
		} `json:"new_chat_member"`
	} `json:"my_chat_member"`
}

func updatesOf(t *testing.T, r apiReply) []testUpdate {
	t.Helper()
	if !r.OK {
		t.Fatalf("getUpdates failed: %s", r.Raw)
	}
	var ups []testUpdate
	if err := json.Unmarshal(r.Result, &ups); err != nil {
		t.Fatal(err)
	}
	return ups
}

func updateIDs(ups []testUpdate) []int64 {
	ids := make([]int64, 0, len(ups))
	for _, u := range ups {
		ids = append(ids, u.UpdateID)
	}
	return ids
}

type jsonRaw = json.RawMessage

func jsonUnmarshal(data []byte, dst any) error { return json.Unmarshal(data, dst) }
