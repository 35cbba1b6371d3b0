package s3fs

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ferryftp/ferry/internal/bytesize"
)

// Location is a parsed storage URL:
//
//	s3://BUCKET[/PREFIX][?endpoint=URL&region=R&path_style=BOOL&part_size=N&concurrency=N]
//
// Credentials never appear in it: they come from the AWS SDK's default
// chain (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, the shared config
// and credentials files, an instance role).
type Location struct {
	Config
	// Endpoint is the store's URL for stores other than AWS; it implies
	// path-style addressing unless PathStyle is set false in the URL.
	Endpoint string
	// Region; empty means the SDK's default (AWS_REGION, the config
	// file), else us-east-1.
	Region    string
	PathStyle bool
}

// ParseURL parses an s3:// storage URL.
func ParseURL(raw string) (Location, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Location{}, fmt.Errorf("storage URL: %v", err)
	}
	if u.Scheme != "s3" {
		return Location{}, fmt.Errorf("storage URL %q: not s3://", raw)
	}
	if u.User != nil {
		return Location{}, errors.New("storage URL: credentials do not belong in it; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or use the AWS shared credentials file")
	}
	if u.Host == "" {
		return Location{}, fmt.Errorf("storage URL %q: no bucket", raw)
	}
	l := Location{Config: Config{Bucket: u.Host, Prefix: strings.Trim(u.Path, "/")}}
	if l.Prefix == "." {
		l.Prefix = ""
	}
	q := u.Query()
	for k := range q {
		switch k {
		case "endpoint", "region", "path_style", "part_size", "concurrency":
		default:
			return Location{}, fmt.Errorf("storage URL: unknown parameter %q (endpoint, region, path_style, part_size, concurrency)", k)
		}
	}
	l.Endpoint, l.Region = q.Get("endpoint"), q.Get("region")
	if l.Endpoint != "" {
		e, err := url.Parse(l.Endpoint)
		if err == nil && e.User != nil {
			return Location{}, errors.New("storage URL: the endpoint must be an http(s) URL without credentials")
		}
		if err != nil || (e.Scheme != "http" && e.Scheme != "https") || e.Host == "" {
			return Location{}, fmt.Errorf("storage URL: endpoint %q is not an http(s) URL without credentials", l.Endpoint)
		}
		l.PathStyle = true
	}
	if v := q.Get("path_style"); v != "" {
		if l.PathStyle, err = strconv.ParseBool(v); err != nil {
			return Location{}, fmt.Errorf("storage URL: path_style %q: want true or false", v)
		}
	}
	if v := q.Get("part_size"); v != "" {
		if l.PartSize, err = bytesize.Parse(v); err != nil {
			return Location{}, fmt.Errorf("storage URL: part_size: %v", err)
		}
	}
	if v := q.Get("concurrency"); v != "" {
		if l.Concurrency, err = strconv.Atoi(v); err != nil {
			return Location{}, fmt.Errorf("storage URL: concurrency %q: want a number", v)
		}
	}
	if _, err := newFS(nil, l.Config); err != nil { // validates the rest
		return Location{}, err
	}
	return l, nil
}

// Client makes the S3 client of l, with credentials from the default chain.
func (l Location) Client(ctx context.Context) (*s3.Client, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if l.Region != "" {
		opts = append(opts, awsconfig.WithRegion(l.Region))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3: AWS configuration: %v", err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		if l.Endpoint != "" {
			o.BaseEndpoint = aws.String(l.Endpoint)
		}
		o.UsePathStyle = l.PathStyle
		// Checksums only where the API requires them: a CRC of every
		// byte costs CPU, and the signature and TLS already guard them.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	}), nil
}

// Open parses raw, makes its client and opens the FS (checking the bucket).
func Open(ctx context.Context, raw string) (*FS, error) {
	l, err := ParseURL(raw)
	if err != nil {
		return nil, err
	}
	c, err := l.Client(ctx)
	if err != nil {
		return nil, err
	}
	return New(ctx, c, l.Config)
}
