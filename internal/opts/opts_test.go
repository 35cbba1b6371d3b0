package opts

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

type inner struct {
	Timeout time.Duration `toml:"timeout" default:"15m"`
}

type settings struct {
	Name    string         `toml:"name" default:"ferry"`
	Limit   int            `toml:"limit" default:"-1"`
	Tries   int            `toml:"tries" default:"3" min:"0" max:"10"`
	Level   string         `toml:"level" default:"info" enum:"debug|info"`
	Reuse   *bool          `toml:"reuse" default:"true"`
	Listen  []string       `toml:"listen" default:":21, :990"`
	Allow   []netip.Prefix `toml:"allow"`
	Plain   bool           `toml:"plain"`
	skipped int
	NoKey   int
	inner
}

// TestFieldsDefaultsValidate: embedded structs are flattened, fields
// without a key left out; zero fields take their defaults and set ones
// stay; bounds and enums fail naming the key.
func TestFieldsDefaultsValidate(t *testing.T) {
	var s settings
	var keys []string
	for _, f := range Fields(&s) {
		keys = append(keys, f.Key)
	}
	if want := "name limit tries level reuse listen allow plain timeout"; strings.Join(keys, " ") != want {
		t.Errorf("keys %q, want %q", keys, want)
	}
	s.Tries = 5
	Defaults(&s)
	if s.Name != "ferry" || s.Limit != -1 || s.Tries != 5 || s.Level != "info" || s.Reuse == nil || !*s.Reuse ||
		!reflect.DeepEqual(s.Listen, []string{":21", ":990"}) || s.Timeout != 15*time.Minute || s.Allow != nil {
		t.Errorf("defaults: %+v", s)
	}
	if err := Validate(&s); err != nil {
		t.Errorf("valid settings: %v", err)
	}
	for _, bad := range []func(*settings){
		func(s *settings) { s.Tries = -1 },
		func(s *settings) { s.Tries = 11 },
		func(s *settings) { s.Level = "loud" },
	} {
		c := s
		bad(&c)
		if err := Validate(&c); err == nil || !strings.HasPrefix(err.Error(), "tries:") && !strings.HasPrefix(err.Error(), "level:") {
			t.Errorf("Validate %+v: %v", c, err)
		}
	}
}

// TestSet: every kind a setting has, from its text; bad text is an error.
func TestSet(t *testing.T) {
	var s settings
	v := reflect.ValueOf(&s).Elem()
	for _, tc := range []struct{ field, text string }{
		{"Timeout", "90s"}, {"Limit", "7"}, {"Plain", "on"}, {"Reuse", "off"}, {"Allow", "10.0.0.0/8,::1/128"},
	} {
		if err := Set(v.FieldByName(tc.field), tc.text); err != nil {
			t.Fatalf("%s = %q: %v", tc.field, tc.text, err)
		}
	}
	if s.Timeout != 90*time.Second || s.Limit != 7 || !s.Plain || *s.Reuse || len(s.Allow) != 2 || s.Allow[1] != netip.MustParsePrefix("::1/128") {
		t.Errorf("set: %+v", s)
	}
	for field, text := range map[string]string{"Timeout": "soon", "Limit": "many", "Plain": "maybe", "Allow": "nonsense"} {
		if err := Set(v.FieldByName(field), text); err == nil {
			t.Errorf("%s = %q accepted", field, text)
		}
	}
}

// FuzzSet: no text makes Set panic, whatever the field's kind.
func FuzzSet(f *testing.F) {
	for _, s := range []string{"15m", "-1", "on", "10.0.0.0/8,::1", "", ",", "1e9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		var s settings
		for _, fl := range Fields(&s) {
			Set(fl.Value, text)
		}
	})
}
