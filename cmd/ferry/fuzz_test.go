package main

import (
	"strings"
	"testing"
)

// FuzzURLAndNetrc: the URL and .netrc parsers never panic, and a URL they
// accept can never carry a line break into a command.
func FuzzURLAndNetrc(f *testing.F) {
	for _, s := range []string{"ftp://u:p@h:21/a/b", "ftp://h//etc/%2Fx;type=i", "ftp://[::1]/", "ftp://h/a%0D%0Ab",
		"machine h login u password p\ndefault login a password b\nmacdef x\nbody\n\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if r, err := parseRemote(s); err == nil {
			if strings.ContainsAny(r.path+r.user+r.pass, "\r\n\x00") {
				t.Fatalf("%q: line break accepted: %+v", s, r)
			}
			_ = r.String()
		}
		for _, m := range parseNetrc(strings.NewReader(s)) {
			if strings.ContainsAny(m.login+m.password+m.machine, " \t\n") {
				t.Fatalf("token with white space: %+v", m)
			}
		}
	})
}
