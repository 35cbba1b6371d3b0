package server

import (
	"cmp"
	"slices"
	"time"

	"github.com/ferryftp/ferry/ftp"
)

// Conns returns the open sessions, oldest first: what an administration
// view lists.
func (s *Server) Conns() []*Conn {
	s.init()
	s.mu.Lock()
	cs := make([]*Conn, 0, len(s.sessions))
	for sess := range s.sessions {
		cs = append(cs, sess.hook)
	}
	s.mu.Unlock()
	slices.SortFunc(cs, func(a, b *Conn) int { return cmp.Compare(a.ID(), b.ID()) })
	return cs
}

// Conn returns the open session numbered id, or nil.
func (s *Server) Conn(id uint64) *Conn {
	s.init()
	s.mu.Lock()
	defer s.mu.Unlock()
	for sess := range s.sessions {
		if sess.id == id {
			return sess.hook
		}
	}
	return nil
}

// TLS says whether the control connection is secured now.
func (c *Conn) TLS() bool { return c.secure.Load() }

// Command is the verb of the command the session ran last ("" before
// the first).
func (c *Conn) Command() string {
	if v := c.cmd.Load(); v != nil {
		return *v
	}
	return ""
}

// Running describes the session's transfer while one runs, else nil.
func (c *Conn) Running() *TransferInfo {
	if x := c.s.transfer(); x != nil {
		return x.info("")
	}
	return nil
}

// End ends the session from outside (an administrator): the client gets
// 421 with msg, a running transfer is aborted (an upload is not
// published, unless it was already committing), and the connections
// close.
func (c *Conn) End(msg string) {
	s := c.s
	c.ended.Store(true)
	s.wmu.Lock()
	s.conn.SetWriteDeadline(time.Now().Add(2 * time.Second))
	s.conn.Write(ftp.AppendReply(nil, ftp.CodeNotAvailable, msg))
	s.wmu.Unlock()
	s.kill()
}
