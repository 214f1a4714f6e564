package tgtest

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// parseReplyMarkup reads reply_markup. An inline keyboard is validated the
// way Telegram validates it and normalised to what Telegram echoes back
// (text plus the one action it honours); a reply keyboard keeps only its
// button texts. Removing a keyboard or forcing a reply is accepted and
// leaves nothing to show.
func parseReplyMarkup(p params) (*wireInlineKeyboard, [][]string, *apiError) {
	raw := strings.TrimSpace(p.str("reply_markup"))
	if raw == "" {
		return nil, nil, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &obj); err != nil {
		return nil, nil, badRequest("can't parse reply keyboard markup JSON object")
	}
	if inline, ok := obj["inline_keyboard"]; ok {
		k, apiErr := parseInlineKeyboard(inline)
		return k, nil, apiErr
	}
	if kb, ok := obj["keyboard"]; ok {
		var rows [][]json.RawMessage
		if err := json.Unmarshal(kb, &rows); err != nil {
			return nil, nil, badRequest("field \"keyboard\" must be of type Array")
		}
		texts := make([][]string, 0, len(rows))
		for _, row := range rows {
			var r []string
			for _, b := range row {
				var text string
				if json.Unmarshal(b, &text) != nil {
					var btn struct {
						Text string `json:"text"`
					}
					if json.Unmarshal(b, &btn) != nil || btn.Text == "" {
						return nil, nil, badRequest("can't parse keyboard button: Field \"text\" must be of type String")
					}
					text = btn.Text
				}
				r = append(r, text)
			}
			texts = append(texts, r)
		}
		return nil, texts, nil
	}
	return nil, nil, nil
}

func parseInlineKeyboard(raw json.RawMessage) (*wireInlineKeyboard, *apiError) {
	var rows [][]json.RawMessage
	if err := json.Unmarshal(raw, &rows); err != nil {
		return nil, badRequest("field \"inline_keyboard\" of the InlineKeyboardMarkup must be an Array")
	}
	k := &wireInlineKeyboard{InlineKeyboard: [][]wireButton{}}
	total := 0
	for _, row := range rows {
		out := make([]wireButton, 0, len(row))
		for _, rawButton := range row {
			b, apiErr := parseInlineButton(rawButton)
			if apiErr != nil {
				return nil, apiErr
			}
			out = append(out, b)
		}
		if len(out) > 0 {
			k.InlineKeyboard = append(k.InlineKeyboard, out)
			total += len(out)
		}
	}
	if total == 0 {
		return nil, nil
	}
	return k, nil
}

// parseInlineButton picks the button's action in the order Telegram's server
// checks them: the first field present wins and the rest are ignored.
// Empty values count as absent; that is why {"text":"x","callback_data":""}
// is a "text button" to Telegram.
func parseInlineButton(raw json.RawMessage) (wireButton, *apiError) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return wireButton{}, badRequest("can't parse inline keyboard button: InlineKeyboardButton must be an Object")
	}
	var b wireButton
	if err := json.Unmarshal(raw, &b); err != nil {
		return wireButton{}, badRequest("can't parse inline keyboard button: " + err.Error())
	}
	if _, ok := fields["text"]; !ok {
		return wireButton{}, badRequest("can't parse inline keyboard button: Can't find field \"text\"")
	}
	out := wireButton{Text: b.Text, IconCustomEmojiID: b.IconCustomEmojiID, Style: b.Style}
	present := func(name string) bool {
		v, ok := fields[name]
		s := strings.TrimSpace(string(v))
		return ok && s != "null" && s != `""` && s != "{}" && s != `{"text":""}` && s != "false"
	}
	switch {
	case present("url"):
		if apiErr := checkURL("inline keyboard button URL", b.URL); apiErr != nil {
			return wireButton{}, apiErr
		}
		out.URL = b.URL
	case present("callback_data"):
		if len(*b.CallbackData) > 64 {
			return wireButton{}, badRequest("BUTTON_DATA_INVALID")
		}
		out.CallbackData = b.CallbackData
	case present("callback_game"):
		out.CallbackGame = b.CallbackGame
	case present("pay"):
		out.Pay = true
	case fields["switch_inline_query"] != nil:
		out.SwitchInlineQuery = b.SwitchInlineQuery
	case fields["switch_inline_query_current_chat"] != nil:
		out.SwitchInlineQueryCurrentChat = b.SwitchInlineQueryCurrentChat
	case present("switch_inline_query_chosen_chat"):
		out.SwitchInlineQueryChosenChat = b.SwitchInlineQueryChosenChat
	case present("login_url"):
		out.LoginURL = b.LoginURL
	case present("web_app"):
		out.WebApp = b.WebApp
	case present("copy_text"):
		out.CopyText = b.CopyText
	default:
		return wireButton{}, badRequest("can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")
	}
	return out, nil
}

// checkURL validates a URL the way Telegram does for buttons and text links:
// http, https and tg links, and bare domains, which Telegram reads as http.
func checkURL(what, raw string) *apiError {
	invalid := func(why string) *apiError {
		return badRequest(fmt.Sprintf("%s '%s' is invalid: %s", what, raw, why))
	}
	if raw == "" {
		return invalid("URL host is empty")
	}
	target := raw
	if !strings.Contains(raw, "://") {
		target = "http://" + raw
	}
	u, err := url.Parse(target)
	if err != nil {
		return invalid("Wrong HTTP URL")
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		host := u.Hostname()
		if host == "" {
			return invalid("URL host is empty")
		}
		if !strings.Contains(host, ".") && host != "localhost" {
			return invalid("Wrong HTTP URL")
		}
	case "tg", "ton":
	default:
		return invalid("Unsupported URL protocol")
	}
	return nil
}

// formatText turns text plus parse_mode (or explicit entities) into what the
// user sees and its entities, failing with Telegram's errors for bad markup,
// then trims surrounding whitespace as Telegram does.
func formatText(text, parseMode, entitiesJSON string) (string, []wireEntity, *apiError) {
	var plain string
	var ents []wireEntity
	var apiErr *apiError
	switch strings.ToLower(parseMode) {
	case "":
		plain = text
		if strings.TrimSpace(entitiesJSON) != "" {
			if err := json.Unmarshal([]byte(entitiesJSON), &ents); err != nil {
				return "", nil, badRequest("can't parse entities JSON object")
			}
			apiErr = checkEntities(plain, ents)
		}
	case "html":
		plain, ents, apiErr = parseHTML(text)
	case "markdownv2":
		plain, ents, apiErr = parseMarkdownV2(text)
	case "markdown":
		plain, ents, apiErr = parseMarkdown(text)
	default:
		return "", nil, badRequest("unsupported parse_mode")
	}
	if apiErr != nil {
		return "", nil, apiErr
	}
	plain, ents = trimText(plain, ents)
	return plain, ents, nil
}

var entityTypes = []string{
	"mention", "hashtag", "cashtag", "bot_command", "url", "email", "phone_number",
	"bold", "italic", "underline", "strikethrough", "spoiler", "blockquote",
	"expandable_blockquote", "code", "pre", "text_link", "text_mention", "custom_emoji",
}

func checkEntities(text string, ents []wireEntity) *apiError {
	n := utf16Len(text)
	for _, e := range ents {
		switch {
		case !slices.Contains(entityTypes, e.Type):
			return badRequest("can't parse MessageEntity: Unsupported type specified")
		case e.Offset < 0:
			return badRequest(fmt.Sprintf("receive an entity with incorrect offset %d", e.Offset))
		case e.Length < 0:
			return badRequest(fmt.Sprintf("receive an entity with incorrect length %d", e.Length))
		case e.Offset > n:
			return badRequest(fmt.Sprintf("entity begins after the end of the text at UTF-16 offset %d", e.Offset))
		case e.Offset+e.Length > n:
			return badRequest(fmt.Sprintf("entity beginning at UTF-16 offset %d ends after the end of the text at UTF-16 offset %d", e.Offset, e.Offset+e.Length))
		case e.Type == "text_link":
			if apiErr := checkURL("entity URL", e.URL); apiErr != nil {
				return apiErr
			}
		}
	}
	return nil
}

// trimText drops leading and trailing whitespace, moving entities along and
// dropping those left empty, as Telegram does with every message.
func trimText(text string, ents []wireEntity) (string, []wireEntity) {
	const space = " \t\r\n"
	trimmedLeft := strings.TrimLeft(text, space)
	left := utf16Len(text[:len(text)-len(trimmedLeft)])
	out := strings.TrimRight(trimmedLeft, space)
	n := utf16Len(out)
	var kept []wireEntity
	for _, e := range ents {
		start := max(e.Offset-left, 0)
		end := min(e.Offset+e.Length-left, n)
		if end <= start {
			continue
		}
		e.Offset, e.Length = start, end-start
		kept = append(kept, e)
	}
	slices.SortStableFunc(kept, func(a, b wireEntity) int {
		if a.Offset != b.Offset {
			return a.Offset - b.Offset
		}
		return b.Length - a.Length
	})
	return out, kept
}

// textBuilder accumulates parsed text and tracks its length in UTF-16 code
// units, the unit of entity offsets.
type textBuilder struct {
	sb  strings.Builder
	n16 int
}

func (b *textBuilder) writeRune(r rune) {
	b.sb.WriteRune(r)
	if r >= 0x10000 {
		b.n16 += 2
	} else {
		b.n16++
	}
}

func (b *textBuilder) writeString(s string) {
	for _, r := range s {
		b.writeRune(r)
	}
}

type openEntity struct {
	tag     string // HTML tag name, or the MarkdownV2 entity name used in errors
	typ     string
	start16 int
	byteOff int
	url     string
	lang    string
	emojiID string
	slot    int // index in the entity list, reserved when the entity opens
}

func (o openEntity) entity(end16 int) (wireEntity, bool) {
	e := wireEntity{Type: o.typ, Offset: o.start16, Length: end16 - o.start16, URL: o.url, Language: o.lang, CustomEmojiID: o.emojiID}
	return e, e.Length > 0 && e.Type != ""
}

func parseError(format string, args ...any) *apiError {
	return badRequest("can't parse entities: " + fmt.Sprintf(format, args...))
}

// parseHTML implements parse_mode HTML: the tags and character references
// Telegram documents, with its error texts for anything else.
func parseHTML(text string) (string, []wireEntity, *apiError) {
	var b textBuilder
	var stack []openEntity
	var ents []wireEntity
	for i := 0; i < len(text); {
		c := text[i]
		switch c {
		case '&':
			if r, n := htmlEntity(text[i:]); n > 0 {
				b.writeRune(r)
				i += n
				continue
			}
			b.writeRune('&')
			i++
			continue
		case '<':
		default:
			r, size := utf8.DecodeRuneInString(text[i:])
			b.writeRune(r)
			i += size
			continue
		}
		begin := i
		if i+1 < len(text) && text[i+1] == '/' {
			end := strings.IndexByte(text[i:], '>')
			if end < 0 {
				return "", nil, parseError("Unclosed end tag at byte offset %d", begin)
			}
			name := strings.ToLower(strings.TrimSpace(text[i+2 : i+end]))
			if len(stack) == 0 {
				return "", nil, parseError("Unexpected end tag at byte offset %d", begin)
			}
			top := stack[len(stack)-1]
			if name != top.tag {
				return "", nil, parseError("Unmatched end tag at byte offset %d, expected \"</%s>\", found \"</%s>\"", begin, top.tag, name)
			}
			stack = stack[:len(stack)-1]
			ents[top.slot], _ = top.entity(b.n16)
			i += end + 1
			continue
		}
		i++
		nameStart := i
		for i < len(text) && !isHTMLSpace(text[i]) && text[i] != '>' {
			i++
		}
		name := strings.ToLower(text[nameStart:i])
		attrs, next, ok := htmlAttributes(text, i)
		if !ok {
			if !htmlTagSupported(name) {
				return "", nil, parseError("Unsupported start tag \"%s\" at byte offset %d", name, begin)
			}
			return "", nil, parseError("Unclosed start tag at byte offset %d", begin)
		}
		i = next
		o := openEntity{tag: name, start16: b.n16, byteOff: begin}
		switch name {
		case "b", "strong":
			o.typ = "bold"
		case "i", "em":
			o.typ = "italic"
		case "u", "ins":
			o.typ = "underline"
		case "s", "strike", "del":
			o.typ = "strikethrough"
		case "tg-spoiler":
			o.typ = "spoiler"
		case "span":
			if attrs["class"] != "tg-spoiler" {
				return "", nil, parseError("Tag \"span\" must have class \"tg-spoiler\" at byte offset %d", begin)
			}
			o.typ = "spoiler"
		case "a":
			o.url = attrs["href"]
			if o.url != "" {
				if apiErr := checkURL("entity URL", o.url); apiErr != nil {
					return "", nil, apiErr
				}
				o.typ = "text_link"
			}
		case "code":
			o.typ = "code"
			if len(stack) > 0 && stack[len(stack)-1].tag == "pre" {
				// <pre><code class="language-go"> is one pre entity with a language.
				if lang, ok := strings.CutPrefix(attrs["class"], "language-"); ok {
					stack[len(stack)-1].lang = lang
				}
				o.typ = ""
			}
		case "pre":
			o.typ = "pre"
		case "blockquote":
			o.typ = "blockquote"
			if _, ok := attrs["expandable"]; ok {
				o.typ = "expandable_blockquote"
			}
		case "tg-emoji":
			o.emojiID = attrs["emoji-id"]
			if _, err := strconv.ParseInt(o.emojiID, 10, 64); err != nil {
				return "", nil, parseError("Custom emoji identifier must be specified at byte offset %d", begin)
			}
			o.typ = "custom_emoji"
		default:
			return "", nil, parseError("Unsupported start tag \"%s\" at byte offset %d", name, begin)
		}
		// Entities are listed in the order they open, outer first.
		o.slot = len(ents)
		ents = append(ents, wireEntity{})
		stack = append(stack, o)
	}
	if len(stack) > 0 {
		return "", nil, parseError("Can't find end tag corresponding to start tag \"%s\"", stack[len(stack)-1].tag)
	}
	return b.sb.String(), filterEmpty(ents), nil
}

func htmlTagSupported(name string) bool {
	switch name {
	case "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "tg-spoiler", "span", "a", "code", "pre", "blockquote", "tg-emoji":
		return true
	}
	return false
}

func isHTMLSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// htmlAttributes parses attributes from i up to and including the closing
// '>', returning the index after it; ok is false if the tag never closes.
func htmlAttributes(text string, i int) (map[string]string, int, bool) {
	attrs := map[string]string{}
	for {
		for i < len(text) && isHTMLSpace(text[i]) {
			i++
		}
		if i >= len(text) {
			return nil, 0, false
		}
		if text[i] == '>' {
			return attrs, i + 1, true
		}
		start := i
		for i < len(text) && !isHTMLSpace(text[i]) && text[i] != '=' && text[i] != '>' {
			i++
		}
		name := strings.ToLower(text[start:i])
		if i < len(text) && text[i] == '=' {
			i++
			if i >= len(text) {
				return nil, 0, false
			}
			var value string
			if q := text[i]; q == '"' || q == '\'' {
				end := strings.IndexByte(text[i+1:], q)
				if end < 0 {
					return nil, 0, false
				}
				value = text[i+1 : i+1+end]
				i += end + 2
			} else {
				vs := i
				for i < len(text) && !isHTMLSpace(text[i]) && text[i] != '>' {
					i++
				}
				value = text[vs:i]
			}
			attrs[name] = decodeHTMLEntities(value)
		} else if name != "" {
			attrs[name] = ""
		}
		if name == "" && i < len(text) && text[i] != '>' {
			i++
		}
	}
}

func decodeHTMLEntities(s string) string {
	var sb strings.Builder
	for i := 0; i < len(s); {
		if s[i] == '&' {
			if r, n := htmlEntity(s[i:]); n > 0 {
				sb.WriteRune(r)
				i += n
				continue
			}
		}
		sb.WriteByte(s[i])
		i++
	}
	return sb.String()
}

// htmlEntity decodes a character reference at the start of s: the four named
// ones Telegram supports and numeric ones. n is 0 when s has none, and the
// '&' is then kept as text, as Telegram does.
func htmlEntity(s string) (rune, int) {
	end := strings.IndexByte(s, ';')
	if end < 2 || end > 10 {
		return 0, 0
	}
	name := s[1:end]
	switch name {
	case "lt":
		return '<', end + 1
	case "gt":
		return '>', end + 1
	case "amp":
		return '&', end + 1
	case "quot":
		return '"', end + 1
	}
	if num, ok := strings.CutPrefix(name, "#"); ok {
		base := 10
		if hex, ok := strings.CutPrefix(strings.ToLower(num), "x"); ok {
			num, base = hex, 16
		}
		v, err := strconv.ParseUint(num, base, 32)
		if err == nil && utf8.ValidRune(rune(v)) && v != 0 {
			return rune(v), end + 1
		}
	}
	return 0, 0
}

// markdownV2Reserved must be escaped with '\' outside code in MarkdownV2.
const markdownV2Reserved = "_*[]()~`>#+-=|{}.!"

// parseMarkdownV2 implements parse_mode MarkdownV2 with Telegram's rules
// and error texts: every reserved character outside an entity's markup must
// be escaped, and every entity must be closed.
func parseMarkdownV2(text string) (string, []wireEntity, *apiError) {
	var b textBuilder
	var stack []openEntity
	var ents []wireEntity
	lineStart := true
	quoteStart := -1
	closeQuote := func() {
		if quoteStart >= 0 {
			if e, ok := (openEntity{typ: "blockquote", start16: quoteStart}).entity(b.n16); ok {
				ents = append(ents, e)
			}
			quoteStart = -1
		}
	}
	for i := 0; i < len(text); {
		c := text[i]
		atLineStart := lineStart
		lineStart = false
		if c == '\\' && i+1 < len(text) && text[i+1] >= 1 && text[i+1] <= 126 {
			b.writeRune(rune(text[i+1]))
			i += 2
			continue
		}
		top := ""
		if len(stack) > 0 {
			top = stack[len(stack)-1].typ
		}
		if top == "code" || top == "pre" {
			closing := c == '`' && (top == "code" || strings.HasPrefix(text[i:], "```"))
			if !closing {
				r, size := utf8.DecodeRuneInString(text[i:])
				b.writeRune(r)
				i += size
				if r == '\n' {
					lineStart = true
				}
				continue
			}
		}
		if c == '\n' {
			if quoteStart >= 0 && (i+1 >= len(text) || text[i+1] != '>') {
				closeQuote()
			}
			b.writeRune('\n')
			i++
			lineStart = true
			continue
		}
		if !strings.ContainsRune(markdownV2Reserved, rune(c)) {
			r, size := utf8.DecodeRuneInString(text[i:])
			b.writeRune(r)
			i += size
			continue
		}
		if c == '>' && atLineStart && len(stack) == 0 {
			if quoteStart < 0 {
				quoteStart = b.n16
			}
			i++
			continue
		}

		// Does c close the innermost open entity?
		closes := false
		switch top {
		case "bold":
			closes = c == '*'
		case "italic":
			closes = c == '_'
		case "underline":
			closes = c == '_' && strings.HasPrefix(text[i:], "__")
		case "strikethrough":
			closes = c == '~'
		case "spoiler":
			closes = c == '|' && strings.HasPrefix(text[i:], "||")
		case "code":
			closes = c == '`'
		case "pre":
			closes = strings.HasPrefix(text[i:], "```")
		case "text_link", "custom_emoji":
			closes = c == ']'
		}
		if closes {
			o := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			switch o.typ {
			case "underline", "spoiler":
				i += 2
			case "pre":
				i += 3
			case "text_link", "custom_emoji":
				i++
				if i >= len(text) || text[i] != '(' {
					if o.typ == "custom_emoji" {
						return "", nil, parseError("Custom emoji entity must contain a tg://emoji URL")
					}
					o.url = ""
					o.typ = ""
					break
				}
				end, link, ok := markdownV2URL(text, i+1)
				if !ok {
					return "", nil, parseError("Can't find end of a URL at byte offset %d", i)
				}
				i = end
				if o.typ == "custom_emoji" {
					id, found := strings.CutPrefix(link, "tg://emoji?id=")
					if !found {
						return "", nil, parseError("Custom emoji URL must have an emoji identifier")
					}
					o.emojiID = id
				} else {
					if apiErr := checkURL("entity URL", link); apiErr != nil {
						return "", nil, apiErr
					}
					o.url = link
				}
			default:
				i++
			}
			ents[o.slot], _ = o.entity(b.n16)
			continue
		}

		o := openEntity{start16: b.n16, byteOff: i, slot: len(ents)}
		switch {
		case c == '_' && strings.HasPrefix(text[i:], "__"):
			o.typ, o.tag = "underline", "Underline"
			i += 2
		case c == '_':
			o.typ, o.tag = "italic", "Italic"
			i++
		case c == '*':
			o.typ, o.tag = "bold", "Bold"
			i++
		case c == '~':
			o.typ, o.tag = "strikethrough", "Strikethrough"
			i++
		case c == '|' && strings.HasPrefix(text[i:], "||"):
			o.typ, o.tag = "spoiler", "Spoiler"
			i += 2
		case c == '[':
			o.typ, o.tag = "text_link", "TextUrl"
			i++
		case c == '!' && strings.HasPrefix(text[i:], "!["):
			o.typ, o.tag = "custom_emoji", "CustomEmoji"
			i += 2
		case strings.HasPrefix(text[i:], "```"):
			o.typ, o.tag = "pre", "Pre"
			i += 3
			// A first line without spaces names the language.
			if nl := strings.IndexByte(text[i:], '\n'); nl >= 0 && !strings.Contains(text[i:i+nl], "```") {
				if lang := text[i : i+nl]; !strings.ContainsAny(lang, " \t") {
					o.lang = lang
					i += nl + 1
				}
			}
		case c == '`':
			o.typ, o.tag = "code", "Code"
			i++
		default:
			return "", nil, parseError("Character '%c' is reserved and must be escaped with the preceding '\\'", c)
		}
		ents = append(ents, wireEntity{})
		stack = append(stack, o)
	}
	if len(stack) > 0 {
		o := stack[len(stack)-1]
		return "", nil, parseError("Can't find end of %s entity at byte offset %d", o.tag, o.byteOff)
	}
	closeQuote()
	return b.sb.String(), filterEmpty(ents), nil
}

// markdownV2URL reads a link target from i up to its ')', where only ')'
// and '\' need escaping.
func markdownV2URL(text string, i int) (end int, link string, ok bool) {
	var sb strings.Builder
	for i < len(text) {
		c := text[i]
		switch {
		case c == '\\' && i+1 < len(text):
			sb.WriteByte(text[i+1])
			i += 2
		case c == ')':
			return i + 1, sb.String(), true
		default:
			sb.WriteByte(c)
			i++
		}
	}
	return 0, "", false
}

// parseMarkdown implements the legacy parse_mode Markdown: *bold*,
// _italic_, `code`, ```pre``` and [text](url), without nesting.
func parseMarkdown(text string) (string, []wireEntity, *apiError) {
	var b textBuilder
	var ents []wireEntity
	for i := 0; i < len(text); {
		c := text[i]
		if c == '\\' && i+1 < len(text) && strings.IndexByte("_*`[", text[i+1]) >= 0 {
			b.writeRune(rune(text[i+1]))
			i += 2
			continue
		}
		if strings.IndexByte("_*`[", c) < 0 {
			r, size := utf8.DecodeRuneInString(text[i:])
			b.writeRune(r)
			i += size
			continue
		}
		begin := i
		noEnd := parseError("Can't find end of the entity starting at byte offset %d", begin)
		start16 := b.n16
		switch {
		case c == '*' || c == '_':
			end := strings.IndexByte(text[i+1:], c)
			if end < 0 {
				return "", nil, noEnd
			}
			b.writeString(text[i+1 : i+1+end])
			typ := "bold"
			if c == '_' {
				typ = "italic"
			}
			ents = append(ents, wireEntity{Type: typ, Offset: start16, Length: b.n16 - start16})
			i += end + 2
		case strings.HasPrefix(text[i:], "```"):
			end := strings.Index(text[i+3:], "```")
			if end < 0 {
				return "", nil, noEnd
			}
			body := text[i+3 : i+3+end]
			lang := ""
			if nl := strings.IndexByte(body, '\n'); nl >= 0 && !strings.ContainsAny(body[:nl], " \t") {
				lang, body = body[:nl], body[nl+1:]
			}
			b.writeString(body)
			ents = append(ents, wireEntity{Type: "pre", Offset: start16, Length: b.n16 - start16, Language: lang})
			i += end + 6
		case c == '`':
			end := strings.IndexByte(text[i+1:], '`')
			if end < 0 {
				return "", nil, noEnd
			}
			b.writeString(text[i+1 : i+1+end])
			ents = append(ents, wireEntity{Type: "code", Offset: start16, Length: b.n16 - start16})
			i += end + 2
		default: // '['
			end := strings.IndexByte(text[i+1:], ']')
			if end < 0 {
				return "", nil, noEnd
			}
			label := text[i+1 : i+1+end]
			i += end + 2
			b.writeString(label)
			if i < len(text) && text[i] == '(' {
				close := strings.IndexByte(text[i:], ')')
				if close < 0 {
					return "", nil, noEnd
				}
				link := text[i+1 : i+close]
				i += close + 1
				if apiErr := checkURL("entity URL", link); apiErr != nil {
					return "", nil, apiErr
				}
				ents = append(ents, wireEntity{Type: "text_link", Offset: start16, Length: b.n16 - start16, URL: link})
			}
		}
	}
	slices.SortStableFunc(ents, func(a, b wireEntity) int { return a.Offset - b.Offset })
	return b.sb.String(), filterEmpty(ents), nil
}

// filterEmpty drops entities that cover no text, which Telegram omits, and
// the unfilled slots of entities that produced none.
func filterEmpty(ents []wireEntity) []wireEntity {
	return slices.DeleteFunc(ents, func(e wireEntity) bool { return e.Length == 0 || e.Type == "" })
}
