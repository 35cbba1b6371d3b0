// Package s3test starts versitygw, the S3 server of the test suite, on
// loopback with a posix backend in a temporary directory.
package s3test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ferryftp/ferry/ftptest"
)

// Credentials of the gateway's root user.
const (
	AccessKey = "ferrytestaccess"
	SecretKey = "ferrytestsecret-not-a-real-one"
)

// Server is a running versitygw.
type Server struct {
	Endpoint string // http://127.0.0.1:PORT
	Dir      string // the posix backend: one directory per bucket
	cmd      *exec.Cmd
	exited   chan struct{} // closed once cmd has been waited for
}

// Find returns the versitygw binary: on PATH, else in $GOPATH/bin (where
// go install puts it), else "".
func Find() string {
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		home, _ := os.UserHomeDir()
		gopath = filepath.Join(home, "go")
	}
	p := filepath.Join(gopath, "bin", "versitygw")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return ""
}

// Start starts versitygw for the test and stops it at cleanup. Without
// the binary the test is skipped (failed under FERRY_INTEROP=1).
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Find()
	if bin == "" {
		ftptest.Missing(t, "versitygw not found (go install github.com/versity/versitygw/cmd/versitygw@v1.8.0)")
		return nil
	}
	s, err := Launch(bin, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Launch starts versitygw bin with its posix backend in dir (for the
// benchmarks as well as the tests), retrying on a port taken meanwhile.
// Stop ends it.
func Launch(bin, dir string) (*Server, error) {
	var err error
	for try := 0; try < 5; try++ {
		var s *Server
		if s, err = start(bin, dir); err == nil {
			return s, nil
		}
	}
	return nil, fmt.Errorf("versitygw did not start: %v", err)
}

func start(bin, dir string) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "--access", AccessKey, "--secret", SecretKey, "--port", addr, "--quiet", "posix", dir)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return &Server{Endpoint: "http://" + addr, Dir: dir, cmd: cmd, exited: exited}, nil
		}
		select {
		case <-exited:
			return nil, fmt.Errorf("exited at start (port %s taken?)", addr)
		case <-time.After(20 * time.Millisecond):
		}
	}
	cmd.Process.Kill()
	<-exited
	return nil, fmt.Errorf("not listening on %s after 20s", addr)
}

// Stop ends the gateway (also a store that goes down under a server).
func (s *Server) Stop() {
	s.cmd.Process.Kill()
	<-s.exited
}

// Env is the environment that gives a child process (ferry serve) the
// gateway's credentials through the AWS SDK's default chain.
func (s *Server) Env() []string {
	return []string{"AWS_ACCESS_KEY_ID=" + AccessKey, "AWS_SECRET_ACCESS_KEY=" + SecretKey, "AWS_REGION=us-east-1",
		"AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null"}
}

// SetEnv sets Env in this process for the test (so the default chain of
// an in-process server finds the credentials).
func (s *Server) SetEnv(t testing.TB) {
	for _, kv := range s.Env() {
		for i := range kv {
			if kv[i] == '=' {
				t.Setenv(kv[:i], kv[i+1:])
				break
			}
		}
	}
}

// Client is an S3 client of the gateway with static credentials; opts
// change its options.
func (s *Server) Client(opts ...func(*s3.Options)) *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(s.Endpoint), Region: "us-east-1", UsePathStyle: true,
		Credentials:                credentials.NewStaticCredentialsProvider(AccessKey, SecretKey, ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	}, opts...)
}

var buckets int

// Bucket creates a new bucket and returns its name.
func (s *Server) Bucket(t testing.TB) string {
	t.Helper()
	buckets++
	name := "ferry-test-" + strconv.Itoa(buckets) + "-" + strconv.FormatInt(time.Now().UnixNano()%1e6, 10)
	if _, err := s.Client().CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: &name}); err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
	return name
}

// URL is the storage URL of bucket/prefix on the gateway.
func (s *Server) URL(bucket, prefix string, params string) string {
	u := "s3://" + bucket
	if prefix != "" {
		u += "/" + prefix
	}
	u += "?endpoint=" + s.Endpoint
	if params != "" {
		u += "&" + params
	}
	return u
}

// Keys lists every key of bucket (to check what a test touched).
func (s *Server) Keys(t testing.TB, bucket string) []string {
	t.Helper()
	var keys []string
	pages := s3.NewListObjectsV2Paginator(s.Client(), &s3.ListObjectsV2Input{Bucket: &bucket})
	for pages.HasMorePages() {
		page, err := pages.NextPage(context.Background())
		if err != nil {
			t.Fatalf("list %s: %v", bucket, err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys
}
