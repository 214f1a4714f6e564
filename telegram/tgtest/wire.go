package tgtest

import "encoding/json"

// The types below are the Bot API's JSON shapes as Telegram itself sends them
// (https://core.telegram.org/bots/api). They are written out here rather than
// borrowed from a client library, so a client's mistake cannot hide behind the
// emulator making the same one.

type wireUser struct {
	ID           int64  `json:"id"`
	IsBot        bool   `json:"is_bot"`
	FirstName    string `json:"first_name"`
	LastName     string `json:"last_name,omitempty"`
	Username     string `json:"username,omitempty"`
	LanguageCode string `json:"language_code,omitempty"`
}

// wireBotUser is what getMe returns: a User with the bot-only fields, which
// Telegram always includes there.
type wireBotUser struct {
	ID                      int64  `json:"id"`
	IsBot                   bool   `json:"is_bot"`
	FirstName               string `json:"first_name"`
	Username                string `json:"username"`
	CanJoinGroups           bool   `json:"can_join_groups"`
	CanReadAllGroupMessages bool   `json:"can_read_all_group_messages"`
	SupportsInlineQueries   bool   `json:"supports_inline_queries"`
	CanConnectToBusiness    bool   `json:"can_connect_to_business"`
	HasMainWebApp           bool   `json:"has_main_web_app"`
}

type wireChat struct {
	ID        int64  `json:"id"`
	Type      string `json:"type"`
	FirstName string `json:"first_name,omitempty"`
	LastName  string `json:"last_name,omitempty"`
	Username  string `json:"username,omitempty"`
}

type wireEntity struct {
	Type          string    `json:"type"`
	Offset        int       `json:"offset"`
	Length        int       `json:"length"`
	URL           string    `json:"url,omitempty"`
	User          *wireUser `json:"user,omitempty"`
	Language      string    `json:"language,omitempty"`
	CustomEmojiID string    `json:"custom_emoji_id,omitempty"`
}

type wireMessage struct {
	MessageID         int                    `json:"message_id"`
	From              *wireUser              `json:"from,omitempty"`
	Date              int64                  `json:"date"`
	Chat              wireChat               `json:"chat"`
	ReplyToMessage    *wireMessage           `json:"reply_to_message,omitempty"`
	EditDate          int64                  `json:"edit_date,omitempty"`
	Text              string                 `json:"text,omitempty"`
	Entities          []wireEntity           `json:"entities,omitempty"`
	Document          *wireDocument          `json:"document,omitempty"`
	Photo             []wirePhotoSize        `json:"photo,omitempty"`
	Caption           string                 `json:"caption,omitempty"`
	CaptionEntities   []wireEntity           `json:"caption_entities,omitempty"`
	Invoice           *wireInvoice           `json:"invoice,omitempty"`
	SuccessfulPayment *wireSuccessfulPayment `json:"successful_payment,omitempty"`
	ReplyMarkup       *wireInlineKeyboard    `json:"reply_markup,omitempty"`
}

type wireDocument struct {
	FileID       string `json:"file_id"`
	FileUniqueID string `json:"file_unique_id"`
	FileName     string `json:"file_name,omitempty"`
	MimeType     string `json:"mime_type,omitempty"`
	FileSize     int    `json:"file_size,omitempty"`
}

type wirePhotoSize struct {
	FileID       string `json:"file_id"`
	FileUniqueID string `json:"file_unique_id"`
	Width        int    `json:"width"`
	Height       int    `json:"height"`
	FileSize     int    `json:"file_size,omitempty"`
}

type wireFile struct {
	FileID       string `json:"file_id"`
	FileUniqueID string `json:"file_unique_id"`
	FileSize     int    `json:"file_size,omitempty"`
	FilePath     string `json:"file_path,omitempty"`
}

type wireInvoice struct {
	Title          string `json:"title"`
	Description    string `json:"description"`
	StartParameter string `json:"start_parameter"`
	Currency       string `json:"currency"`
	TotalAmount    int    `json:"total_amount"`
}

type wireLabeledPrice struct {
	Label  string `json:"label"`
	Amount int    `json:"amount"`
}

type wireSuccessfulPayment struct {
	Currency                string `json:"currency"`
	TotalAmount             int    `json:"total_amount"`
	InvoicePayload          string `json:"invoice_payload"`
	TelegramPaymentChargeID string `json:"telegram_payment_charge_id"`
	ProviderPaymentChargeID string `json:"provider_payment_charge_id"`
	// A Stars subscription's charges: the first and each renewal.
	SubscriptionExpirationDate int64 `json:"subscription_expiration_date,omitempty"`
	IsRecurring                bool  `json:"is_recurring,omitempty"`
	IsFirstRecurring           bool  `json:"is_first_recurring,omitempty"`
}

type wireInlineKeyboard struct {
	InlineKeyboard [][]wireButton `json:"inline_keyboard"`
}

// wireButton keeps the rarely used action fields as raw JSON: the emulator
// only needs to know whether they are present and to echo them back.
type wireButton struct {
	Text                         string          `json:"text"`
	IconCustomEmojiID            string          `json:"icon_custom_emoji_id,omitempty"`
	Style                        string          `json:"style,omitempty"`
	URL                          string          `json:"url,omitempty"`
	CallbackData                 *string         `json:"callback_data,omitempty"`
	WebApp                       json.RawMessage `json:"web_app,omitempty"`
	LoginURL                     json.RawMessage `json:"login_url,omitempty"`
	SwitchInlineQuery            *string         `json:"switch_inline_query,omitempty"`
	SwitchInlineQueryCurrentChat *string         `json:"switch_inline_query_current_chat,omitempty"`
	SwitchInlineQueryChosenChat  json.RawMessage `json:"switch_inline_query_chosen_chat,omitempty"`
	CopyText                     json.RawMessage `json:"copy_text,omitempty"`
	CallbackGame                 json.RawMessage `json:"callback_game,omitempty"`
	Pay                          bool            `json:"pay,omitempty"`
}

type wireCallbackQuery struct {
	ID           string       `json:"id"`
	From         wireUser     `json:"from"`
	Message      *wireMessage `json:"message,omitempty"`
	ChatInstance string       `json:"chat_instance"`
	Data         string       `json:"data,omitempty"`
}

type wirePreCheckoutQuery struct {
	ID             string   `json:"id"`
	From           wireUser `json:"from"`
	Currency       string   `json:"currency"`
	TotalAmount    int      `json:"total_amount"`
	InvoicePayload string   `json:"invoice_payload"`
}

type wireChatMember struct {
	User      wireUser `json:"user"`
	Status    string   `json:"status"`
	UntilDate *int64   `json:"until_date,omitempty"`
}

type wireChatMemberUpdated struct {
	Chat          wireChat       `json:"chat"`
	From          wireUser       `json:"from"`
	Date          int64          `json:"date"`
	OldChatMember wireChatMember `json:"old_chat_member"`
	NewChatMember wireChatMember `json:"new_chat_member"`
}

type wireUpdate struct {
	UpdateID         int64                  `json:"update_id"`
	Message          *wireMessage           `json:"message,omitempty"`
	CallbackQuery    *wireCallbackQuery     `json:"callback_query,omitempty"`
	PreCheckoutQuery *wirePreCheckoutQuery  `json:"pre_checkout_query,omitempty"`
	MyChatMember     *wireChatMemberUpdated `json:"my_chat_member,omitempty"`
}

type wireBotCommand struct {
	Command     string `json:"command"`
	Description string `json:"description"`
}

type wireWebhookInfo struct {
	URL                  string   `json:"url"`
	HasCustomCertificate bool     `json:"has_custom_certificate"`
	PendingUpdateCount   int      `json:"pending_update_count"`
	IPAddress            string   `json:"ip_address,omitempty"`
	LastErrorDate        int64    `json:"last_error_date,omitempty"`
	LastErrorMessage     string   `json:"last_error_message,omitempty"`
	MaxConnections       int      `json:"max_connections,omitempty"`
	AllowedUpdates       []string `json:"allowed_updates,omitempty"`
}
