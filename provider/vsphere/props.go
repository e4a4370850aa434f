package main

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"google.golang.org/protobuf/types/known/structpb"
)

// Props is a resource's properties as plain Go values: string, float64, bool, nil, []any, map[string]any.
type Props = map[string]any

// The engine's wire sentinels: a value not known until another resource exists (preview), and a secret's envelope.
const (
	unknownString = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
	sigKey        = "4dabf18193072939515e22adb298388d"
	secretSig     = "1b47061264138c4ac30d75fd1eb44270"
)

var unknownSentinels = map[string]bool{
	unknownString:                          true,
	"1c4a061d-8072-4f0a-a4cb-0ff528b18fe7": true, // bool
	"3eeb2bf0-c639-47a8-9e75-3b44932eb421": true, // number
	"6a19a0b0-7e62-4c92-b797-7f8e31da9cc2": true, // array
	"5a1d1a3a-0ed4-4cd2-a8c5-4c8a53c9e2b7": true, // object
}

// isUnknown tells whether v is, or contains, a value the engine does not know yet.
func isUnknown(v any) bool {
	switch x := v.(type) {
	case string:
		return unknownSentinels[x]
	case []any:
		for _, e := range x {
			if isUnknown(e) {
				return true
			}
		}
	case map[string]any:
		for _, e := range x {
			if isUnknown(e) {
				return true
			}
		}
	}
	return false
}

// plain removes secret envelopes at every depth (the engine re-marks outputs whose inputs were secret).
func plain(v any) any {
	switch x := v.(type) {
	case map[string]any:
		if x[sigKey] == secretSig {
			return plain(x["value"])
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = plain(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = plain(e)
		}
		return out
	}
	return v
}

func fromStruct(s *structpb.Struct) Props {
	if s == nil {
		return Props{}
	}
	m, _ := plain(s.AsMap()).(map[string]any)
	if m == nil {
		return Props{}
	}
	return m
}

func toStruct(p Props) (*structpb.Struct, error) {
	return structpb.NewStruct(normalize(p).(map[string]any))
}

// normalize turns the Go values a resource builds (ints, []string, []Props) into what structpb accepts.
func normalize(v any) any {
	switch x := v.(type) {
	case Props:
		out := make(map[string]any, len(x))
		for k, e := range x {
			if e == nil {
				continue
			}
			out[k] = normalize(e)
		}
		return out
	case []Props:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalize(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalize(e)
		}
		return out
	case []string:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = e
		}
		return out
	case int:
		return float64(x)
	case int32:
		return float64(x)
	case int64:
		return float64(x)
	}
	return v
}

func str(p Props, k string) string {
	s, _ := p[k].(string)
	return s
}

func num(p Props, k string, def int64) int64 {
	if f, ok := p[k].(float64); ok {
		return int64(f)
	}
	return def
}

func boolean(p Props, k string, def bool) bool {
	if b, ok := p[k].(bool); ok {
		return b
	}
	return def
}

func obj(p Props, k string) Props {
	m, _ := p[k].(map[string]any)
	return m
}

func list(p Props, k string) []Props {
	raw, _ := p[k].([]any)
	out := make([]Props, 0, len(raw))
	for _, e := range raw {
		if m, ok := e.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

func strs(p Props, k string) []string {
	raw, _ := p[k].([]any)
	out := make([]string, 0, len(raw))
	for _, e := range raw {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// empty: a value that a program leaving the property out means as well (so "" and absent do not differ).
func empty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}

// covers tells whether old holds everything that news says: maps key by key (keys that news leaves out are not
// compared), lists element by element with the same length, numbers by value, and tags-like string lists as sets.
func covers(old, news any) bool {
	if empty(news) {
		return empty(old)
	}
	switch n := news.(type) {
	case map[string]any:
		o, ok := old.(map[string]any)
		if !ok {
			return false
		}
		for k, v := range n {
			if !covers(o[k], v) {
				return false
			}
		}
		return true
	case []any:
		o, ok := old.([]any)
		if !ok || len(o) != len(n) {
			return false
		}
		for i := range n {
			if !covers(o[i], n[i]) {
				return false
			}
		}
		return true
	case float64:
		o, ok := old.(float64)
		return ok && math.Abs(o-n) < 1e-9
	}
	return old == news
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	x := append([]string(nil), a...)
	y := append([]string(nil), b...)
	sort.Strings(x)
	sort.Strings(y)
	return strings.Join(x, "\x00") == strings.Join(y, "\x00")
}

// unsupported lists, as "path: reason" pairs, the inputs of news that this provider does not implement.
func unsupported(news Props, spec fieldSpec, prefix string) []string {
	var out []string
	keys := make([]string, 0, len(news))
	for k := range news {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "__defaults" {
			continue
		}
		sub, ok := spec[k]
		path := prefix + k
		if !ok {
			out = append(out, path)
			continue
		}
		if sub == nil {
			continue
		}
		switch v := news[k].(type) {
		case map[string]any:
			out = append(out, unsupported(v, sub, path+".")...)
		case []any:
			for i, e := range v {
				if m, ok := e.(map[string]any); ok {
					out = append(out, unsupported(m, sub, fmt.Sprintf("%s[%d].", path, i))...)
				}
			}
		}
	}
	return out
}

// fieldSpec is the inputs a resource implements: nil for a scalar or a list of scalars, a nested spec for an object
// or a list of objects.
type fieldSpec map[string]fieldSpec
