package main

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
)

// The schema's types, for checking that each input has the type the schema says (a raw resource or a YAML program
// can send anything; a wrong type is one Check failure instead of a crash later).
type schemaType struct {
	Type                 string                `json:"type"`
	Ref                  string                `json:"$ref"`
	Items                *schemaType           `json:"items"`
	AdditionalProperties *schemaType           `json:"additionalProperties"`
	Properties           map[string]schemaType `json:"properties"`
}

type schemaIndex struct {
	Resources map[string]struct {
		InputProperties map[string]schemaType `json:"inputProperties"`
	} `json:"resources"`
	Types map[string]schemaType `json:"types"`
}

var schemaTypes = func() schemaIndex {
	var idx schemaIndex
	_ = json.Unmarshal([]byte(schemaJSON), &idx)
	return idx
}()

// typeFailures: (path, reason) for each input of news whose value is not of the schema's type.
func typeFailures(token string, news Props) [][2]string {
	r, ok := schemaTypes.Resources[token]
	if !ok {
		return nil
	}
	var out [][2]string
	keys := make([]string, 0, len(news))
	for k := range news {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if t, ok := r.InputProperties[k]; ok {
			out = append(out, checkType(k, t, news[k], 0)...)
		}
	}
	return out
}

func checkType(path string, t schemaType, v any, depth int) [][2]string {
	if v == nil || isUnknown(v) || depth > 16 {
		return nil
	}
	if name, ok := strings.CutPrefix(t.Ref, "#/types/"); ok {
		t = schemaTypes.Types[name]
		if t.Type == "" {
			t.Type = "object"
		}
	}
	bad := func(want string) [][2]string {
		return [][2]string{{path, fmt.Sprintf("%s must be %s, not %s", path, want, describe(v))}}
	}
	switch t.Type {
	case "string":
		if _, ok := v.(string); !ok {
			return bad("a string")
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return bad("a boolean")
		}
	case "integer":
		f, ok := v.(float64)
		if !ok || f != math.Trunc(f) {
			return bad("an integer")
		}
	case "number":
		if _, ok := v.(float64); !ok {
			return bad("a number")
		}
	case "array":
		xs, ok := v.([]any)
		if !ok {
			return bad("a list")
		}
		var out [][2]string
		for i, x := range xs {
			if t.Items != nil {
				out = append(out, checkType(fmt.Sprintf("%s[%d]", path, i), *t.Items, x, depth+1)...)
			}
		}
		return out
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			return bad("an object")
		}
		var out [][2]string
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if pt, ok := t.Properties[k]; ok {
				out = append(out, checkType(path+"."+k, pt, m[k], depth+1)...)
			} else if t.AdditionalProperties != nil {
				out = append(out, checkType(path+"."+k, *t.AdditionalProperties, m[k], depth+1)...)
			}
		}
		return out
	}
	return nil
}

func describe(v any) string {
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("the string %q", x)
	case float64:
		return fmt.Sprintf("the number %v", x)
	case bool:
		return fmt.Sprintf("%v", x)
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}
