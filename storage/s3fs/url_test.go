package s3fs

import (
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Location
	}{
		{"s3://bucket", Location{Config: Config{Bucket: "bucket"}}},
		{"s3://bucket/a/b/", Location{Config: Config{Bucket: "bucket", Prefix: "a/b"}}},
		{"s3://b/p?endpoint=http://127.0.0.1:7070", Location{Config: Config{Bucket: "b", Prefix: "p"}, Endpoint: "http://127.0.0.1:7070", PathStyle: true}},
		{"s3://b?endpoint=https://s3.example.net&path_style=false&region=eu-west-1", Location{Config: Config{Bucket: "b"}, Endpoint: "https://s3.example.net", Region: "eu-west-1"}},
		{"s3://b?part_size=8MiB&concurrency=8", Location{Config: Config{Bucket: "b", PartSize: 8 << 20, Concurrency: 8}}},
	} {
		got, err := ParseURL(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseURL(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
	for in, want := range map[string]string{
		"s3://AKIA:topsecret@bucket":                 "credentials do not belong",
		"s3://b?endpoint=http://AKIA:topsecret@host": "without credentials",
		"s3://b?secret_key=topsecret":                "unknown parameter",
		"s3://":                                      "no bucket",
		"file:///srv":                                "not s3://",
		"s3://b/../x":                                "not a clean path",
		"s3://b?part_size=1MiB":                      "outside 5 MiB",
		"s3://b?part_size=lots":                      "not a size",
		"s3://b?concurrency=0x10":                    "want a number",
		"s3://b?concurrency=1000":                    "outside 1 to 64",
		"s3://b?endpoint=ftp://host":                 "not an http(s) URL",
		"s3://b?path_style=maybe":                    "want true or false",
		"s3://b/a%2F..%2F..%2Fx?endpoint=http://h:1": "not a clean path",
	} {
		_, err := ParseURL(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseURL(%q): %v, want %q", in, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "topsecret") {
			t.Errorf("ParseURL(%q) repeats the secret: %v", in, err)
		}
	}
}

// FuzzParseURL: any string parses or fails without a panic, and a parsed
// location never holds credentials or a prefix that leaves the bucket.
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"s3://b/p?endpoint=http://127.0.0.1:7070&part_size=8MiB", "s3://a:b@c", "s3://b/../x", "s3://b?concurrency=4&region=x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseURL(s)
		if err != nil {
			return
		}
		if l.Bucket == "" || (l.Prefix != "" && !validPrefix(l.Prefix)) {
			t.Fatalf("%q: %+v", s, l)
		}
		if strings.Contains(l.Endpoint, "@") {
			t.Fatalf("%q: credentials in the endpoint %q", s, l.Endpoint)
		}
	})
}

func validPrefix(p string) bool {
	for _, e := range strings.Split(p, "/") {
		if e == ".." || e == "." || e == "" {
			return false
		}
	}
	return true
}
