// Package events delivers what happens on the server to operators'
// hooks: each event goes to a durable queue on disk before anything else,
// then to every hook that asked for its kind — a command run with the
// event's JSON on its standard input, or an HTTP POST of it — retried with
// backoff until delivered or too old, across restarts. Every delivery of
// one event carries the same idempotency key (Event.ID), so a hook that
// hears an event twice (a crash between its delivery and its record) can
// tell.
package events

import (
	"crypto/rand"
	"encoding/hex"
	"time"
)

// The kinds of events.
const (
	Upload       = "upload"        // an upload committed (after the rename)
	UploadFailed = "upload_failed" // an upload that ended without commit
	Download     = "download"      // a download ended (Status says how)
	Delete       = "delete"
	Rename       = "rename"
	Mkdir        = "mkdir"
	Rmdir        = "rmdir"
	Login        = "login"
	LoginFailed  = "login_failed"
	Ban          = "ban" // the defender banned an address (Remote)
)

// Kinds are the kinds of events, as a hook's on names them.
var Kinds = []string{Upload, UploadFailed, Download, Delete, Rename, Mkdir, Rmdir, Login, LoginFailed, Ban}

// Event is what a hook receives: the JSON document of an HTTP POST or of
// a command's standard input.
type Event struct {
	// ID is the idempotency key: the same on every delivery of the event.
	ID    string    `json:"id"`
	Event string    `json:"event"`
	Time  time.Time `json:"time"`
	// User is the logged-in user (for login_failed, the name given).
	User string `json:"user,omitempty"`
	// Remote is the client's address (for ban, the network banned).
	Remote string `json:"remote,omitempty"`
	// Path is the virtual path; To a rename's new one.
	Path string `json:"path,omitempty"`
	To   string `json:"to,omitempty"`
	// Size is the bytes transferred.
	Size int64 `json:"size"`
	// Duration is a transfer's, in seconds.
	Duration float64 `json:"duration,omitempty"`
	// Status is "ok", or what went wrong (a failed login's reason, a
	// transfer's end: aborted, connection lost, error …).
	Status string `json:"status"`
	// Code is the FTP reply that ended a transfer.
	Code int `json:"code,omitempty"`
	// SHA256 is the hex SHA-256 of an upload's bytes, when a hook on
	// upload sets sha256 = true.
	SHA256 string `json:"sha256,omitempty"`
	// Session is the session's number (session= in the server's log).
	Session uint64 `json:"session,omitempty"`
}

// NewID returns a new idempotency key: 128 random bits in hex.
func NewID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
