package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/types/known/structpb"
)

type schemaDoc struct {
	Resources map[string]struct {
		InputProperties map[string]schemaProp `json:"inputProperties"`
	} `json:"resources"`
	Functions map[string]struct {
		Inputs struct {
			Properties map[string]schemaProp `json:"properties"`
		} `json:"inputs"`
	} `json:"functions"`
	Types map[string]struct {
		Properties map[string]schemaProp `json:"properties"`
	} `json:"types"`
}

type schemaProp struct {
	Type  string      `json:"type"`
	Ref   string      `json:"$ref"`
	Items *schemaProp `json:"items"`
}

// typeProps: the properties of the object type a property refers to (directly or as a list's items).
func (d schemaDoc) typeProps(p schemaProp) map[string]schemaProp {
	if p.Items != nil {
		return d.typeProps(*p.Items)
	}
	if name, ok := strings.CutPrefix(p.Ref, "#/types/"); ok {
		return d.Types[name].Properties
	}
	return nil
}

// checkSpec fails for every implemented input that the schema does not have, at any depth.
func checkSpec(t *testing.T, d schemaDoc, where string, spec fieldSpec, props map[string]schemaProp) {
	for name, sub := range spec {
		p, ok := props[name]
		if !ok {
			t.Errorf("%s: implemented input %q is not in schema.json", where, name)
			continue
		}
		if sub != nil {
			checkSpec(t, d, where+"."+name, sub, d.typeProps(p))
		}
	}
}

// The plugin and the schema are written by different hands: every token and input it implements must be there.
func TestImplementedInputsAreInTheSchema(t *testing.T) {
	var d schemaDoc
	if err := json.Unmarshal([]byte(schemaJSON), &d); err != nil {
		t.Fatal(err)
	}
	for tok, k := range kinds {
		r, ok := d.Resources[tok]
		if !ok {
			t.Errorf("resource %s is not in schema.json", tok)
			continue
		}
		checkSpec(t, d, tok, k.inputs(), r.InputProperties)
	}
	for tok, f := range functions {
		fn, ok := d.Functions[tok]
		if !ok {
			t.Errorf("function %s is not in schema.json", tok)
			continue
		}
		checkSpec(t, d, tok, f.inputs, fn.Inputs.Properties)
	}
}

func mustStruct(t *testing.T, m map[string]any) *structpb.Struct {
	s, err := structpb.NewStruct(m)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const vmURN = "urn:pulumi:s::p::vsphere:index/virtualMachine:VirtualMachine::vm1"

func diff(t *testing.T, olds, news map[string]any) *pulumirpc.DiffResponse {
	res, err := newServer().Diff(context.Background(), &pulumirpc.DiffRequest{Urn: vmURN, Olds: mustStruct(t, olds), OldInputs: mustStruct(t, olds), News: mustStruct(t, news)})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestDiffUpdatesInPlaceOrReplaces(t *testing.T) {
	base := map[string]any{"name": "vm1", "numCpus": 2.0, "memory": 1024.0, "annotation": "a", "tags": []any{"t1", "t2"},
		"clone": map[string]any{"templateUuid": "u1"}, "disks": []any{map[string]any{"label": "os", "size": 20.0, "key": 2000.0}}}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for key, val := range base {
			m[key] = val
		}
		m[k] = v
		return m
	}
	if r := diff(t, base, with("tags", []any{"t2", "t1"})); r.Changes != pulumirpc.DiffResponse_DIFF_NONE {
		t.Errorf("tags in another order: %v", r.Diffs)
	}
	if r := diff(t, base, with("disks", []any{map[string]any{"label": "os", "size": 20.0}})); r.Changes != pulumirpc.DiffResponse_DIFF_NONE {
		t.Errorf("disk outputs the program does not set: %v", r.Diffs)
	}
	for _, k := range []string{"numCpus", "memory"} {
		r := diff(t, base, with(k, 4.0))
		if r.Changes != pulumirpc.DiffResponse_DIFF_SOME || len(r.Replaces) != 0 {
			t.Errorf("%s: want an update in place, got diffs %v replaces %v", k, r.Diffs, r.Replaces)
		}
	}
	if r := diff(t, base, with("annotation", "b")); len(r.Replaces) != 0 || len(r.Diffs) != 1 {
		t.Errorf("annotation: %v %v", r.Diffs, r.Replaces)
	}
	r := diff(t, base, with("clone", map[string]any{"templateUuid": "u2"}))
	if len(r.Replaces) != 1 || r.Replaces[0] != "clone" {
		t.Errorf("clone.templateUuid: want a replacement, got %v", r.Replaces)
	}
	news := with("numCpus", 2.0)
	delete(news, "annotation")
	if r := diff(t, base, news); len(r.Diffs) != 1 || r.Diffs[0] != "annotation" || len(r.Replaces) != 0 {
		t.Errorf("annotation removed: want it cleared in place, got %v %v", r.Diffs, r.Replaces)
	}
	if r := diff(t, base, with("numCpus", unknownString)); r.Changes != pulumirpc.DiffResponse_DIFF_SOME {
		t.Errorf("an unknown value is a change")
	}
}

func TestCheckRefusesUnimplementedInputsOneEach(t *testing.T) {
	news := map[string]any{"resourcePoolId": "resgroup-1", "datastoreId": "datastore-1", "vapp": map[string]any{}, "cdroms": []any{},
		"disks": []any{map[string]any{"label": "os", "ioLimit": 10.0}}}
	res, err := newServer().Check(context.Background(), &pulumirpc.CheckRequest{Urn: vmURN, News: mustStruct(t, news), Olds: mustStruct(t, map[string]any{})})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range res.Failures {
		got = append(got, f.Property)
		if strings.Contains(f.Reason, "\n") {
			t.Errorf("reason on more than one line: %q", f.Reason)
		}
	}
	if strings.Join(got, ",") != "cdroms,disks[0].ioLimit,vapp" {
		t.Errorf("failures: %v", got)
	}
	var ins map[string]any = res.Inputs.AsMap()
	if name, _ := ins["name"].(string); !strings.HasPrefix(name, "vm1-") {
		t.Errorf("auto-name: %v", ins["name"])
	}
}

func TestCheckRefusesWrongTypesByTheSchema(t *testing.T) {
	news := map[string]any{"resourcePoolId": "resgroup-1", "numCpus": "4", "clone": map[string]any{"templateUuid": "u",
		"customize": map[string]any{"linuxOptions": map[string]any{"hostName": "h", "domain": "d"},
			"networkInterfaces": []any{map[string]any{"ipv4Address": "10.0.0.5", "ipv4Netmask": "255.255.255.0"}}}},
		"networkInterfaces": []any{map[string]any{"networkId": "network-1"}}}
	res, err := newServer().Check(context.Background(), &pulumirpc.CheckRequest{Urn: vmURN, News: mustStruct(t, news), Olds: mustStruct(t, map[string]any{})})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range res.Failures {
		got = append(got, f.Reason)
	}
	want := []string{
		`clone.customize.networkInterfaces[0].ipv4Netmask must be an integer, not the string "255.255.255.0"`,
		`numCpus must be an integer, not the string "4"`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("failures:\n%s", strings.Join(got, "\n"))
	}
}
