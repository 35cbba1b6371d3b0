// Package opts reads the tags that make a settings struct its own
// declaration: `toml` names the key, `default` gives the value a zero
// field takes, `min`, `max` and `enum` bound what validation accepts.
// server.Options, config.Config and the users of both read the same tags,
// so a setting is declared once, on its field.
//
// The convention the tags serve: a zero field means the documented
// default; a negative number or duration turns a limit or a feature off.
package opts

import (
	"encoding"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// Field is one setting of a struct, embedded structs flattened.
type Field struct {
	Key   string        // the TOML key
	Name  string        // the Go name: Struct.Field
	Kind  reflect.Kind  // of the value, pointers followed
	Value reflect.Value // settable
	Tag   reflect.StructTag
}

// Fields lists the settings of the struct ptr points to, in declaration
// order; embedded structs without a toml tag are flattened, fields without
// a toml tag (or tagged "-") are left out.
func Fields(ptr any) []Field {
	return fields(reflect.ValueOf(ptr).Elem())
}

func fields(v reflect.Value) []Field {
	var out []Field
	t := v.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		key, _, _ := strings.Cut(sf.Tag.Get("toml"), ",")
		if sf.Anonymous && key == "" && sf.Type.Kind() == reflect.Struct {
			out = append(out, fields(v.Field(i))...)
			continue
		}
		if key == "" || key == "-" || !sf.IsExported() {
			continue
		}
		kind := sf.Type.Kind()
		if kind == reflect.Pointer {
			kind = sf.Type.Elem().Kind()
		}
		out = append(out, Field{Key: key, Name: t.Name() + "." + sf.Name, Kind: kind, Value: v.Field(i), Tag: sf.Tag})
	}
	return out
}

// Defaults sets every zero field of the struct ptr points to its
// `default` tag. A tag that does not parse is a programming error: it
// panics.
func Defaults(ptr any) {
	for _, f := range Fields(ptr) {
		def, ok := f.Tag.Lookup("default")
		if !ok || !f.Value.IsZero() {
			continue
		}
		if err := Set(f.Value, def); err != nil {
			panic(fmt.Sprintf("opts: default of %s: %v", f.Key, err))
		}
	}
}

var durationType = reflect.TypeFor[time.Duration]()

// Set parses s into v: a duration ("15m"), a number, a string, a bool,
// anything with UnmarshalText, or a list of those separated by commas.
func Set(v reflect.Value, s string) error {
	if u, ok := v.Addr().Interface().(encoding.TextUnmarshaler); ok {
		return u.UnmarshalText([]byte(s))
	}
	if v.Type() == durationType {
		d, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Int, reflect.Int64, reflect.Int32:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", s)
		}
		v.SetInt(n)
	case reflect.Bool:
		switch strings.ToLower(s) {
		case "on", "yes":
			s = "true"
		case "off", "no":
			s = "false"
		}
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("%q is not true or false (on or off)", s)
		}
		v.SetBool(b)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		if err := Set(p.Elem(), s); err != nil {
			return err
		}
		v.Set(p)
	case reflect.Slice:
		list := reflect.MakeSlice(v.Type(), 0, 1)
		for _, part := range strings.Split(s, ",") {
			e := reflect.New(v.Type().Elem()).Elem()
			if err := Set(e, strings.TrimSpace(part)); err != nil {
				return err
			}
			list = reflect.Append(list, e)
		}
		v.Set(list)
	default:
		return fmt.Errorf("cannot set a %s", v.Type())
	}
	return nil
}

// Validate checks every field of the struct ptr points to against its
// `min`, `max` and `enum` tags; the error names the key.
func Validate(ptr any) error {
	for _, f := range Fields(ptr) {
		if err := check(f); err != nil {
			return fmt.Errorf("%s: %v", f.Key, err)
		}
	}
	return nil
}

func check(f Field) error {
	v := f.Value
	if enum, ok := f.Tag.Lookup("enum"); ok && v.Kind() == reflect.String {
		allowed := strings.Split(enum, "|")
		for _, a := range allowed {
			if v.String() == a {
				return nil
			}
		}
		return fmt.Errorf("%q: want %s", v.String(), strings.Join(allowed, ", "))
	}
	if !v.CanInt() {
		return nil
	}
	for _, bound := range []string{"min", "max"} {
		s, ok := f.Tag.Lookup(bound)
		if !ok {
			continue
		}
		b, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			panic(fmt.Sprintf("opts: %s of %s: %v", bound, f.Key, err))
		}
		if bound == "min" && v.Int() < b {
			return fmt.Errorf("%d is below %d", v.Int(), b)
		}
		if bound == "max" && v.Int() > b {
			return fmt.Errorf("%d is above %d", v.Int(), b)
		}
	}
	return nil
}
