package api

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/ferryftp/ferry/auth/users"
)

type openapiDocument struct {
	Paths map[string]map[string]struct {
		Security  []any `json:"security"`
		Responses map[string]any
	} `json:"paths"`
	Components struct {
		Schemas map[string]struct {
			Properties map[string]any `json:"properties"`
		} `json:"schemas"`
	} `json:"components"`
}

// TestOpenAPIDrift: openapi.json documents exactly the routes served (a
// route added or removed without the document fails), with the public
// ones marked so, and each schema has exactly the JSON fields of the Go
// type it describes.
func TestOpenAPIDrift(t *testing.T) {
	var doc openapiDocument
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	served := map[string]bool{}
	for _, rt := range routes {
		path := strings.ReplaceAll(rt.path, "...}", "}")
		key := strings.ToLower(rt.method) + " " + path
		served[key] = true
		op, ok := doc.Paths[path][strings.ToLower(rt.method)]
		if !ok {
			t.Errorf("%s is served but not documented", key)
			continue
		}
		if public := op.Security != nil && len(op.Security) == 0; public != rt.public {
			t.Errorf("%s: documented public %v, served public %v", key, public, rt.public)
		}
		if !rt.public && op.Responses["401"] == nil {
			t.Errorf("%s: no 401 documented", key)
		}
	}
	for path, ops := range doc.Paths {
		for method := range ops {
			if !served[method+" "+path] {
				t.Errorf("%s %s is documented but not served", method, path)
			}
		}
	}
	for name, v := range map[string]any{
		"ServerInfo": ServerInfo{}, "Session": Session{}, "Transfer": Transfer{}, "User": User{},
		"UserChange": users.Change{}, "NewUser": newUser{}, "DirRule": users.DirRule{}, "Ban": Ban{},
		"Quota": Quota{}, "Point": Point{}, "Dashboard": Dashboard{}, "SessionPage": Page[Session]{},
		"UserPage": Page[User]{}, "Credentials": loginRequest{},
	} {
		s, ok := doc.Components.Schemas[name]
		if !ok {
			t.Errorf("no schema %s", name)
			continue
		}
		var documented []string
		for p := range s.Properties {
			documented = append(documented, p)
		}
		slices.Sort(documented)
		if got := jsonFields(reflect.TypeOf(v)); !slices.Equal(got, documented) {
			t.Errorf("schema %s: documented %v, the Go type has %v", name, documented, got)
		}
	}
}

// jsonFields are the JSON names of t's fields, embedded structs' included.
func jsonFields(t reflect.Type) []string {
	var out []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case name == "-":
		case f.Anonymous && name == "":
			out = append(out, jsonFields(f.Type)...)
		case name != "":
			out = append(out, name)
		default:
			out = append(out, strings.ToLower(f.Name))
		}
	}
	slices.Sort(out)
	return out
}
