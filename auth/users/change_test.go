package users

import (
	"strings"
	"testing"

	"github.com/ferryftp/ferry/auth/password"
	"github.com/ferryftp/ferry/internal/bytesize"
)

func ptr[T any](v T) *T { return &v }

// TestChange: the fields set change, the others stay; the password is
// hashed; a change that leaves an invalid account is refused with the
// field named.
func TestChange(t *testing.T) {
	h, _ := password.Hash("old")
	u := User{Name: "bob", Password: h, Home: "bob", Permission: ReadOnly, AllowFrom: []string{"192.0.2.0/24"}}
	c := Change{Password: ptr("new"), QuotaBytes: ptr(bytesize.Size(10 << 20)), Dirs: &[]DirRule{{Path: "/in", Perms: "upload,list"}}}
	if c.Empty() || (Change{}).Empty() == false {
		t.Fatal("Empty")
	}
	if err := c.Apply(&u); err != nil {
		t.Fatal(err)
	}
	if password.Verify(u.Password, "new") != nil || u.QuotaBytes != 10<<20 || len(u.Dirs) != 1 {
		t.Fatalf("applied: %+v", u)
	}
	if u.Home != "bob" || u.Permission != ReadOnly || len(u.AllowFrom) != 1 {
		t.Fatalf("fields not set changed: %+v", u)
	}
	for _, bad := range []struct {
		c    Change
		want string
	}{
		{Change{Password: ptr("")}, "password"},
		{Change{Permission: ptr("root")}, "permission"},
		{Change{AllowFrom: &[]string{"nowhere"}}, "allow_from"},
		{Change{FXP: &[]string{"300.0.0.1"}}, "fxp"},
		{Change{Expires: ptr("soon")}, "expires"},
		{Change{Dirs: &[]DirRule{{Path: "/x", Perms: "fly"}}}, "dirs"},
		{Change{Home: ptr(""), Storage: ptr("")}, "home or storage"},
		{Change{Storage: ptr("gopher://x")}, "storage"},
		{Change{QuotaFiles: ptr(int64(-1))}, "0 (none) or more"},
	} {
		v := u
		if err := bad.c.Apply(&v); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%+v: %v, want an error about %s", bad.c, err, bad.want)
		}
	}
}
