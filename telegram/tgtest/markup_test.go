package tgtest

import (
	"encoding/json"
	"strings"
	"testing"
)

// The error texts below are the ones the real Bot API returns for the same
// input; bot code and its tests match on them.

func TestFormatText(t *testing.T) {
	tests := []struct {
		name, mode, text string
		want             string // text the user sees
		entities         string // JSON of the entities, "" for none
		err              string // description, "" for success
	}{
		{name: "plain", text: "  hello\n", want: "hello"},
		{name: "html", mode: "HTML", text: "<b>telegram-api</b> test", want: "telegram-api test", entities: `[{"type":"bold","offset":0,"length":12}]`},
		{name: "html nested", mode: "HTML", text: "<b><i>nested</i></b>", want: "nested", entities: `[{"type":"bold","offset":0,"length":6},{"type":"italic","offset":0,"length":6}]`},
		{name: "html mode is case-insensitive", mode: "html", text: "<b>lower</b>", want: "lower", entities: `[{"type":"bold","offset":0,"length":5}]`},
		{name: "html entities and link", mode: "HTML", text: `a &lt;b&gt; &amp; <a href="https://example.com/?a=1&amp;b=2">link</a>`, want: "a <b> & link", entities: `[{"type":"text_link","offset":8,"length":4,"url":"https://example.com/?a=1\u0026b=2"}]`},
		{name: "html pre with language", mode: "HTML", text: `<pre><code class="language-ini">[Peer]</code></pre>`, want: "[Peer]", entities: `[{"type":"pre","offset":0,"length":6,"language":"ini"}]`},
		{name: "html utf-16 offsets", mode: "HTML", text: "🔑 <b>key</b>", want: "🔑 key", entities: `[{"type":"bold","offset":3,"length":3}]`},
		{name: "html unclosed", mode: "HTML", text: "<b>unclosed", err: `Bad Request: can't parse entities: Can't find end tag corresponding to start tag "b"`},
		{name: "html unmatched", mode: "HTML", text: "<b><i>test</b></i>", err: `Bad Request: can't parse entities: Unmatched end tag at byte offset 10, expected "</i>", found "</b>"`},
		{name: "html unsupported", mode: "HTML", text: "<invalid>test</invalid>", err: `Bad Request: can't parse entities: Unsupported start tag "invalid" at byte offset 0`},
		{name: "html script", mode: "HTML", text: "<script>alert(1)</script>", err: `Bad Request: can't parse entities: Unsupported start tag "script" at byte offset 0`},
		{name: "html bare less-than", mode: "HTML", text: "1 < 2", err: `Bad Request: can't parse entities: Unsupported start tag "" at byte offset 2`},
		{name: "html empty after parsing", mode: "HTML", text: "<b> </b>", want: ""},
		{name: "markdownv2 bold", mode: "MarkdownV2", text: "*bold*", want: "bold", entities: `[{"type":"bold","offset":0,"length":4}]`},
		{name: "markdownv2 escaped", mode: "MarkdownV2", text: `hello\.`, want: "hello."},
		{name: "markdownv2 link and code", mode: "MarkdownV2", text: "[site](https://example.com/a\\)b) `x_y`", want: "site x_y", entities: `[{"type":"text_link","offset":0,"length":4,"url":"https://example.com/a)b"},{"type":"code","offset":5,"length":3}]`},
		{name: "markdownv2 underline vs italic", mode: "MarkdownV2", text: "__u__ _i_", want: "u i", entities: `[{"type":"underline","offset":0,"length":1},{"type":"italic","offset":2,"length":1}]`},
		{name: "markdownv2 pre", mode: "MarkdownV2", text: "```ini\n[Peer]\n```", want: "[Peer]", entities: `[{"type":"pre","offset":0,"length":6,"language":"ini"}]`},
		{name: "markdownv2 quote", mode: "MarkdownV2", text: ">one\n>two\nthree", want: "one\ntwo\nthree", entities: `[{"type":"blockquote","offset":0,"length":7}]`},
		{name: "markdownv2 dot", mode: "MarkdownV2", text: "hello.", err: `Bad Request: can't parse entities: Character '.' is reserved and must be escaped with the preceding '\'`},
		{name: "markdownv2 dash", mode: "MarkdownV2", text: "a-b", err: `Bad Request: can't parse entities: Character '-' is reserved and must be escaped with the preceding '\'`},
		{name: "markdownv2 exclamation", mode: "MarkdownV2", text: "hello!", err: `Bad Request: can't parse entities: Character '!' is reserved and must be escaped with the preceding '\'`},
		{name: "markdownv2 unclosed bold", mode: "MarkdownV2", text: "*unclosed", err: `Bad Request: can't parse entities: Can't find end of Bold entity at byte offset 0`},
		{name: "markdown bold", mode: "Markdown", text: "*bold*", want: "bold", entities: `[{"type":"bold","offset":0,"length":4}]`},
		{name: "markdown keeps dots", mode: "Markdown", text: "Price: 1.5 _now_!", want: "Price: 1.5 now!", entities: `[{"type":"italic","offset":11,"length":3}]`},
		{name: "markdown unclosed", mode: "Markdown", text: "*unclosed", err: `Bad Request: can't parse entities: Can't find end of the entity starting at byte offset 0`},
		{name: "unknown mode", mode: "INVALID", text: "test", err: "Bad Request: unsupported parse_mode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ents, apiErr := formatText(tt.text, tt.mode, "")
			if tt.err != "" {
				if apiErr == nil || apiErr.description != tt.err {
					t.Fatalf("error = %+v\nwant %q", apiErr, tt.err)
				}
				return
			}
			if apiErr != nil {
				t.Fatalf("unexpected error %q", apiErr.description)
			}
			if got != tt.want {
				t.Errorf("text = %q, want %q", got, tt.want)
			}
			gotEnts := ""
			if len(ents) > 0 {
				b, _ := json.Marshal(ents)
				gotEnts = string(b)
			}
			if gotEnts != tt.entities {
				t.Errorf("entities = %s\nwant       %s", gotEnts, tt.entities)
			}
		})
	}
}

func TestExplicitEntities(t *testing.T) {
	tests := []struct{ entities, err string }{
		{`[{"type":"bold","offset":0,"length":5}]`, ""},
		{`[{"type":"bold","offset":100,"length":1}]`, "Bad Request: entity begins after the end of the text at UTF-16 offset 100"},
		{`[{"type":"bold","offset":0,"length":100}]`, "Bad Request: entity beginning at UTF-16 offset 0 ends after the end of the text at UTF-16 offset 100"},
		{`[{"type":"bold","offset":-1,"length":1}]`, "Bad Request: receive an entity with incorrect offset -1"},
		{`[{"type":"invalid_type","offset":0,"length":1}]`, "Bad Request: can't parse MessageEntity: Unsupported type specified"},
		{`[{"type":"text_link","offset":0,"length":5,"url":"not-a-url"}]`, "Bad Request: entity URL 'not-a-url' is invalid: Wrong HTTP URL"},
	}
	for _, tt := range tests {
		t.Run(tt.entities, func(t *testing.T) {
			_, _, apiErr := formatText("hello", "", tt.entities)
			got := ""
			if apiErr != nil {
				got = apiErr.description
			}
			if got != tt.err {
				t.Errorf("error = %q, want %q", got, tt.err)
			}
		})
	}
}

func TestInlineKeyboardValidation(t *testing.T) {
	tests := []struct {
		name, markup string
		want         string // callback_data or url kept, or the error
	}{
		{"callback", `{"inline_keyboard":[[{"text":"Buy","callback_data":"buy:30"}]]}`, "buy:30"},
		{"64 bytes is the limit", `{"inline_keyboard":[[{"text":"x","callback_data":"` + strings.Repeat("x", 64) + `"}]]}`, strings.Repeat("x", 64)},
		{"65 bytes", `{"inline_keyboard":[[{"text":"x","callback_data":"` + strings.Repeat("я", 33) + `"}]]}`, "Bad Request: BUTTON_DATA_INVALID"},
		{"empty callback_data", `{"inline_keyboard":[[{"text":"btn","callback_data":""}]]}`, "Bad Request: can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"},
		// go-telegram always sends "copy_text":{"text":""}; that is no action.
		{"text only, as go-telegram sends it", `{"inline_keyboard":[[{"text":"btn","copy_text":{"text":""}}]]}`, "Bad Request: can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"},
		{"url wins over the rest", `{"inline_keyboard":[[{"text":"Help","url":"https://example.com","copy_text":{"text":""}}]]}`, "https://example.com"},
		{"bad url", `{"inline_keyboard":[[{"text":"link","url":"not-a-url"}]]}`, "Bad Request: inline keyboard button URL 'not-a-url' is invalid: Wrong HTTP URL"},
		{"ftp url", `{"inline_keyboard":[[{"text":"link","url":"ftp://example.com"}]]}`, "Bad Request: inline keyboard button URL 'ftp://example.com' is invalid: Unsupported URL protocol"},
		{"no text", `{"inline_keyboard":[[{"callback_data":"x"}]]}`, `Bad Request: can't parse inline keyboard button: Can't find field "text"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := params{values: map[string]string{"reply_markup": tt.markup}}
			k, _, apiErr := parseReplyMarkup(p)
			got := ""
			switch {
			case apiErr != nil:
				got = apiErr.description
			case k != nil:
				b := keyboardView(k)[0][0]
				got = b.CallbackData + b.URL
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
