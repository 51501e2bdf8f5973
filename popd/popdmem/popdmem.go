// Package popdmem is an in-memory popd.Backend for tests and demos, like
// go-imap's imapmemserver. It keeps the same contract as the store: the
// maildrop lock is held from Login to Logout, Expunge is all or nothing.
package popdmem

import (
	"bytes"
	"context"
	"io"
	"strconv"
	"sync"

	"github.com/skydesk/skydeskd/popd"
)

// Backend holds users and their messages.
type Backend struct {
	mu      sync.Mutex
	users   map[string]*mailbox
	nextUID int
}

type mailbox struct {
	password string
	locked   bool
	msgs     []message
}

type message struct {
	uid  string
	body []byte
}

var _ popd.Backend = (*Backend)(nil)

// New returns an empty backend.
func New() *Backend { return &Backend{users: map[string]*mailbox{}} }

// AddUser creates (or resets the password of) a user.
func (b *Backend) AddUser(user, password string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if mb := b.users[user]; mb != nil {
		mb.password = password
		return
	}
	b.users[user] = &mailbox{password: password}
}

// Deliver appends a message (CRLF line endings expected) and returns its UID.
func (b *Backend) Deliver(user string, body []byte) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.nextUID++
	uid := "m" + strconv.Itoa(b.nextUID)
	mb := b.users[user]
	mb.msgs = append(mb.msgs, message{uid: uid, body: bytes.Clone(body)})
	return uid
}

// UIDs lists a user's messages.
func (b *Backend) UIDs(user string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, m := range b.users[user].msgs {
		out = append(out, m.uid)
	}
	return out
}

// NewSession implements popd.Backend.
func (b *Backend) NewSession(*popd.Conn) (popd.Session, error) { return &session{b: b}, nil }

type session struct {
	b    *Backend
	user string
	snap []message
}

var _ popd.Session = (*session)(nil)

func (s *session) Login(_ context.Context, username, password string) error {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	mb := s.b.users[username]
	if mb == nil || mb.password != password {
		return popd.ErrAuthFailed
	}
	if mb.locked {
		return popd.ErrInUse
	}
	mb.locked = true
	s.user = username
	s.snap = append([]message(nil), mb.msgs...)
	return nil
}

func (s *session) Messages(context.Context) ([]popd.Message, error) {
	out := make([]popd.Message, len(s.snap))
	for i, m := range s.snap {
		out[i] = popd.Message{Size: int64(len(m.body)), UID: m.uid}
	}
	return out, nil
}

func (s *session) Open(_ context.Context, n int) (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(s.snap[n-1].body)), nil
}

func (s *session) Expunge(_ context.Context, nums []int) error {
	gone := map[string]bool{}
	for _, n := range nums {
		gone[s.snap[n-1].uid] = true
	}
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	mb := s.b.users[s.user]
	kept := mb.msgs[:0]
	for _, m := range mb.msgs {
		if !gone[m.uid] {
			kept = append(kept, m)
		}
	}
	mb.msgs = kept
	return nil
}

func (s *session) Logout() error {
	if s.user == "" {
		return nil
	}
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.b.users[s.user].locked = false
	return nil
}
