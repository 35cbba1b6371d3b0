package config

import (
	"encoding"
	"flag"
	"fmt"
	"io"
	"reflect"
	"strings"
	"time"

	"github.com/ferryftp/ferry/internal/opts"
)

// IsTable reports whether f is a TOML table or an array of tables (a
// section of the file, with no flag).
func IsTable(f opts.Field) bool {
	t := f.Value.Type()
	if t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	return t.Kind() == reflect.Struct && !reflect.PointerTo(t).Implements(textUnmarshaler)
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// Flags registers a flag on fs for every key of c's top table, bound to
// c: a flag on the command line overrides the value c holds (from the
// file, or the default). The flag is the key with dashes (idle_timeout:
// --idle-timeout); its help is the setting's documentation. A list flag
// (--listen) is repeatable; its first use replaces the list.
func (c *Config) Flags(fs *flag.FlagSet) {
	for _, f := range opts.Fields(c) {
		if IsTable(f) || f.Tag.Get("flag") == "-" {
			continue
		}
		arg := f.Tag.Get("flag")
		if arg == "" {
			arg = argName(f)
		}
		fs.Var(&value{f: f, arg: arg}, strings.ReplaceAll(f.Key, "_", "-"), help[f.Key])
	}
}

func argName(f opts.Field) string {
	switch {
	case f.Value.Type() == reflect.TypeFor[time.Duration]():
		return "duration"
	case f.Value.Kind() == reflect.Bool:
		return ""
	case f.Kind == reflect.Bool:
		return "on|off"
	case f.Kind == reflect.Int:
		return "n"
	case f.Kind == reflect.Slice:
		return "value"
	}
	return "string"
}

// value is a flag.Value over one setting.
type value struct {
	f       opts.Field
	arg     string // the name of its argument in the help
	changed bool   // a list: set on this command line already
}

func (v *value) String() string {
	if v == nil || !v.f.Value.IsValid() {
		return ""
	}
	x := v.f.Value
	for x.Kind() == reflect.Pointer {
		if x.IsNil() {
			return ""
		}
		x = x.Elem()
	}
	if m, ok := x.Interface().(interface{ MarshalText() ([]byte, error) }); ok {
		b, _ := m.MarshalText()
		return string(b)
	}
	if x.Kind() == reflect.Slice {
		parts := make([]string, x.Len())
		for i := range parts {
			parts[i] = fmt.Sprint(x.Index(i).Interface())
		}
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(x.Interface())
}

func (v *value) Set(s string) error {
	if v.f.Kind != reflect.Slice {
		return opts.Set(v.f.Value, s)
	}
	e := reflect.New(v.f.Value.Type().Elem()).Elem()
	if err := opts.Set(e, s); err != nil {
		return err
	}
	if !v.changed {
		v.f.Value.Set(reflect.MakeSlice(v.f.Value.Type(), 0, 1))
		v.changed = true
	}
	v.f.Value.Set(reflect.Append(v.f.Value, e))
	return nil
}

// IsBoolFlag: a plain bool is a switch (--anonymous); an optional one
// (--tls-session-reuse on|off) takes its value.
func (v *value) IsBoolFlag() bool { return v.f.Value.Kind() == reflect.Bool }

// PrintFlags writes the help of fs's flags, as flag.PrintDefaults but
// with each setting's argument named and its text wrapped.
func PrintFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		arg, usage := flag.UnquoteUsage(f)
		if v, ok := f.Value.(*value); ok {
			arg = v.arg
		}
		fmt.Fprintf(w, "  --%s", f.Name)
		if arg != "" {
			fmt.Fprintf(w, " %s", arg)
		}
		if f.DefValue != "" && f.DefValue != "false" {
			usage += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(w, "\n%s", wrap(usage, "      ", 80))
	})
}

// wrap breaks s into lines of at most width columns, each indented.
func wrap(s, indent string, width int) string {
	var b strings.Builder
	line := indent
	for _, word := range strings.Fields(s) {
		if len(line)+1+len(word) > width && line != indent {
			b.WriteString(line + "\n")
			line = indent
		}
		if line != indent {
			line += " "
		}
		line += word
	}
	b.WriteString(line + "\n")
	return b.String()
}
