package server

import (
	"context"
	"errors"
	"io/fs"

	"github.com/ferryftp/ferry/ftp"
	"github.com/ferryftp/ferry/storage"
)

// replyFor maps a storage error to a reply code and a text for the client.
// It is the one place where errors become replies; the texts are generic and
// never carry a path on the server's disk or an OS error string.
func replyFor(err error) (int, string) {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return ftp.CodeNoFile, "No such file or directory."
	case errors.Is(err, fs.ErrExist):
		return ftp.CodeNoFile, "File exists."
	case errors.Is(err, storage.ErrIsDir):
		return ftp.CodeNoFile, "Is a directory."
	case errors.Is(err, storage.ErrNotDir):
		return ftp.CodeNoFile, "Not a directory."
	case errors.Is(err, storage.ErrNotEmpty):
		return ftp.CodeNoFile, "Directory not empty."
	case errors.Is(err, fs.ErrPermission), errors.Is(err, storage.ErrOutOfRoot):
		return ftp.CodeNoFile, "Permission denied."
	case errors.Is(err, storage.ErrBadName), errors.Is(err, fs.ErrInvalid):
		return ftp.CodeBadFileName, "File name not allowed."
	case errors.Is(err, storage.ErrNoSpace):
		return ftp.CodeInsufficientSpace, "Insufficient storage space."
	case errors.Is(err, storage.ErrQuota):
		return ftp.CodeExceededStorage, "Storage allocation exceeded."
	case errors.Is(err, storage.ErrBadOffset):
		return ftp.CodeBadRestart, "Invalid REST offset for this file."
	case errors.Is(err, storage.ErrBusy):
		return ftp.CodeFileUnavailable, "File busy: another upload of it is still running; try again later."
	case errors.Is(err, storage.ErrUnavailable):
		return ftp.CodeLocalError, "Storage temporarily unavailable; try again later."
	case errors.Is(err, storage.ErrUnsupported):
		return ftp.CodeNotImplemented, "Not supported by this storage."
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return ftp.CodeTransferAborted, "Operation aborted."
	}
	return ftp.CodeLocalError, "Local error in processing."
}
