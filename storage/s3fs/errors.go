package s3fs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/ferryftp/ferry/storage"
)

// mapErr turns an error of the S3 client into the errors of io/fs and
// storage, keeping the original text for the logs. (The SDK has already
// retried what it retries: throttling, 5xx, dropped connections.)
func mapErr(err error) error {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if target := classify(err); target != nil {
		return fmt.Errorf("%w: %v", target, err)
	}
	return err
}

func classify(err error) error {
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "NoSuchKey", "NotFound", "NoSuchUpload", "NoSuchBucket":
			return fs.ErrNotExist
		case "AccessDenied", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled":
			return fs.ErrPermission
		case "PreconditionFailed", "ConditionalRequestConflict":
			return fs.ErrExist
		case "InvalidRange":
			return storage.ErrBadOffset
		case "SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "Throttling", "ThrottlingException", "RequestTimeTooSkewed":
			return storage.ErrUnavailable
		case "NotImplemented":
			return storage.ErrUnsupported
		}
	}
	var resp *smithyhttp.ResponseError
	if errors.As(err, &resp) {
		switch code := resp.HTTPStatusCode(); {
		case code == 404:
			return fs.ErrNotExist
		case code == 403:
			return fs.ErrPermission
		case code == 412:
			return fs.ErrExist
		case code == 416:
			return storage.ErrBadOffset
		case code == 501:
			return storage.ErrUnsupported
		case code >= 500, code == 429:
			return storage.ErrUnavailable
		}
	}
	var nerr net.Error
	if errors.As(err, &nerr) {
		return storage.ErrUnavailable
	}
	var oerr *net.OpError
	if errors.As(err, &oerr) {
		return storage.ErrUnavailable
	}
	return nil
}
