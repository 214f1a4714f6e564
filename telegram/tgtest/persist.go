package tgtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// WithChatsFile keeps the chats in a file, so an emulator started later
// with the same file shows what the one before it showed, as Telegram keeps
// a chat across a bot's restarts: every user, the bot's messages as they
// are now (edits, deletions, buttons, files, invoices) and the users'
// messages, in their order, with the message ids going on from there.
// Stars charges are kept too, so a payment made before the restart can be
// refunded after it. The file is written shortly after each change and
// on Close, replaced whole (write, rename). Update ids are not in it: see
// WithUpdateIDFile. A file that cannot be read back is an error of
// NewHandler (New panics).
func WithChatsFile(path string) Option {
	return func(c *config) { c.chatsFile = path }
}

// chatsSaveDelay gathers a burst of changes (a config, its QR code, the
// menu) into one write of the chats file.
const chatsSaveDelay = 200 * time.Millisecond

// chatsFileVersion is the layout of the chats file; another is refused.
const chatsFileVersion = 1

type savedState struct {
	Version   int                    `json:"version"`
	Chats     []savedChat            `json:"chats"`
	NextFile  int                    `json:"next_file"`
	NextQuery int64                  `json:"next_query"`
	Charges   map[string]savedCharge `json:"charges,omitempty"`
}

type savedCharge struct {
	UserID   int64 `json:"user_id"`
	Refunded bool  `json:"refunded,omitempty"`
}

type savedChat struct {
	User          User           `json:"user"`
	LastMessageID int            `json:"last_message_id"`
	Blocked       bool           `json:"blocked,omitempty"`
	Sent          []savedMessage `json:"sent,omitempty"`
	UserMessages  []*wireMessage `json:"user_messages,omitempty"`
}

type savedMessage struct {
	Msg             Message             `json:"msg"`
	Entities        []wireEntity        `json:"entities,omitempty"`
	CaptionEntities []wireEntity        `json:"caption_entities,omitempty"`
	Markup          *wireInlineKeyboard `json:"markup,omitempty"`
	ReplyTo         *wireMessage        `json:"reply_to,omitempty"`
	// FilePath is the download path of the message's document or photo.
	FilePath string `json:"file_path,omitempty"`
}

// stateLocked is the part of the emulator's state the chats file keeps.
func (s *Server) stateLocked() savedState {
	st := savedState{Version: chatsFileVersion, NextFile: s.nextFile, NextQuery: s.nextQuery, Charges: map[string]savedCharge{}}
	for id, ch := range s.charges {
		st.Charges[id] = savedCharge{UserID: ch.userID, Refunded: ch.refunded}
	}
	paths := map[string]string{}
	for _, f := range s.files {
		paths[f.file.ID] = f.path
	}
	ids := make([]int64, 0, len(s.chats))
	for id := range s.chats {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		c := s.chats[id]
		sc := savedChat{User: c.user, LastMessageID: c.lastMessageID, Blocked: c.blocked}
		for _, sm := range c.sent {
			m := savedMessage{Msg: sm.msg, Entities: sm.entities, CaptionEntities: sm.captionEntities, Markup: sm.markup, ReplyTo: sm.replyTo}
			if f := sm.msg.Document; f != nil {
				m.FilePath = paths[f.ID]
			} else if f := sm.msg.Photo; f != nil {
				m.FilePath = paths[f.ID]
			}
			sc.Sent = append(sc.Sent, m)
		}
		for _, m := range c.userMessages {
			sc.UserMessages = append(sc.UserMessages, m)
		}
		slices.SortFunc(sc.UserMessages, func(a, b *wireMessage) int { return a.MessageID - b.MessageID })
		st.Chats = append(st.Chats, sc)
	}
	return st
}

// loadChats restores the state a chats file keeps; no file is a fresh
// start.
func (s *Server) loadChats(path string) error {
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read the chats: %w", err)
	}
	var st savedState
	if err := json.Unmarshal(raw, &st); err != nil || st.Version != chatsFileVersion {
		return fmt.Errorf("chats file %s is not one this emulator wrote (%v): remove it to start with no chats", path, err)
	}
	s.nextFile, s.nextQuery = st.NextFile, st.NextQuery
	for id, ch := range st.Charges {
		s.charges[id] = &charge{userID: ch.UserID, refunded: ch.Refunded}
	}
	for _, sc := range st.Chats {
		c := &chatState{user: sc.User, lastMessageID: sc.LastMessageID, blocked: sc.Blocked,
			byID: map[int]*sentMessage{}, userMessages: map[int]*wireMessage{}}
		for _, m := range sc.Sent {
			sm := &sentMessage{msg: m.Msg, entities: m.Entities, captionEntities: m.CaptionEntities, markup: m.Markup, replyTo: m.ReplyTo}
			for _, f := range []*File{sm.msg.Document, sm.msg.Photo} {
				if f != nil && m.FilePath != "" && s.files[f.ID] == nil {
					stored := &storedFile{file: *f, path: m.FilePath}
					s.files[f.ID], s.filesByPath[m.FilePath] = stored, stored
				}
			}
			c.sent = append(c.sent, sm)
			c.byID[sm.msg.ID] = sm
		}
		for _, m := range sc.UserMessages {
			c.userMessages[m.MessageID] = m
		}
		s.chats[sc.User.ID] = c
	}
	return nil
}

// saveChats writes the chats file a moment after each change, and once
// more when the emulator closes. changed is the state's change channel
// when the emulator was made; each write takes the next one under the same
// lock as the state it writes, so no change goes unwritten.
func (s *Server) saveChats(changed chan struct{}) {
	defer s.wg.Done()
	var last []byte
	write := func() {
		s.mu.Lock()
		changed = s.changed
		data, err := json.Marshal(s.stateLocked())
		s.mu.Unlock()
		if err != nil || bytes.Equal(data, last) {
			return
		}
		if writeFileAtomic(s.cfg.chatsFile, data) == nil {
			last = data
		}
	}
	for {
		select {
		case <-changed:
		case <-s.ctx.Done():
			write()
			return
		}
		select {
		case <-time.After(chatsSaveDelay):
		case <-s.ctx.Done():
		}
		write()
	}
}

// writeFileAtomic replaces path with data: a crash leaves the old file or
// the new one, never half of one.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
