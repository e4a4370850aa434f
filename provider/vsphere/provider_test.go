package main

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"github.com/vmware/govmomi/vim25/types"
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

type schemaContract struct {
	Config struct {
		Variables map[string]schemaProp `json:"variables"`
		Defaults  []string              `json:"defaults"`
	} `json:"config"`
	Resources map[string]struct {
		InputProperties map[string]struct {
			WillReplaceOnChanges bool `json:"willReplaceOnChanges"`
		} `json:"inputProperties"`
		RequiredInputs []string `json:"requiredInputs"`
	} `json:"resources"`
}

// What the plugin does and what the schema promises agree: the inputs it requires are those the schema requires; an
// input the schema says replaces is not changed in place; the configuration it takes is the schema's, and the
// schema's required configuration (config.defaults, as the real schema has it) is among it.
func TestBehaviourMatchesTheSchema(t *testing.T) {
	var d schemaContract
	if err := json.Unmarshal([]byte(schemaJSON), &d); err != nil {
		t.Fatal(err)
	}
	for tok, k := range kinds {
		r := d.Resources[tok]
		if got, want := strings.Join(sortStrings(append([]string(nil), k.required()...)), ","), strings.Join(sortStrings(r.RequiredInputs), ","); got != want {
			t.Errorf("%s: requires %s, the schema %s", tok, got, want)
		}
		for _, u := range k.updatable() {
			if r.InputProperties[u].WillReplaceOnChanges {
				t.Errorf("%s: %s is changed in place but the schema says a change replaces", tok, u)
			}
		}
	}
	for key := range configKeys {
		if _, ok := d.Config.Variables[key]; !ok && key != "version" {
			t.Errorf("configuration %s is not in the schema", key)
		}
	}
	if strings.Join(d.Config.Defaults, ",") != "password,user" {
		t.Errorf("config.defaults: %v, the real schema's is [password user]", d.Config.Defaults)
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
	return diffAt(t, vmURN, olds, news)
}

func diffAt(t *testing.T, urn string, olds, news map[string]any) *pulumirpc.DiffResponse {
	res, err := newServer().Diff(context.Background(), &pulumirpc.DiffRequest{Urn: urn, Olds: mustStruct(t, olds), OldInputs: mustStruct(t, olds), News: mustStruct(t, news)})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// checkAt: Check's failures for news, as "property: reason" lines, and the inputs it returns.
func checkAt(t *testing.T, urn string, news map[string]any) ([]string, map[string]any) {
	res, err := newServer().Check(context.Background(), &pulumirpc.CheckRequest{Urn: urn, News: mustStruct(t, news), Olds: mustStruct(t, map[string]any{})})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range res.Failures {
		if strings.Contains(f.Reason, "\n") {
			t.Errorf("reason on more than one line: %q", f.Reason)
		}
		got = append(got, f.Property+": "+f.Reason)
	}
	return got, res.Inputs.AsMap()
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

const (
	switchURN   = "urn:pulumi:s::p::vsphere:index/distributedVirtualSwitch:DistributedVirtualSwitch::sw"
	affinityURN = "urn:pulumi:s::p::vsphere:index/computeClusterVmAffinityRule:ComputeClusterVmAffinityRule::r"
)

func TestDiffOfTheSwitchAndTheAffinityRule(t *testing.T) {
	sw := map[string]any{"name": "sw", "datacenterId": "datacenter-2", "folder": "", "maxMtu": 1500.0, "uplinks": []any{"u1", "u2"},
		"hosts": []any{map[string]any{"hostSystemId": "host-1"}}, "tags": []any{"t1", "t2"}}
	with := func(base map[string]any, k string, v any) map[string]any {
		m := map[string]any{}
		for key, val := range base {
			m[key] = val
		}
		m[k] = v
		return m
	}
	if r := diffAt(t, switchURN, sw, with(sw, "tags", []any{"t2", "t1"})); r.Changes != pulumirpc.DiffResponse_DIFF_NONE {
		t.Errorf("switch tags in another order: %v", r.Diffs)
	}
	for k, v := range map[string]any{"hosts": []any{map[string]any{"hostSystemId": "host-1"}, map[string]any{"hostSystemId": "host-2"}},
		"maxMtu": 9000.0, "uplinks": []any{"u1", "u2", "u3"}, "name": "sw2", "description": "d"} {
		if r := diffAt(t, switchURN, sw, with(sw, k, v)); len(r.Diffs) != 1 || len(r.Replaces) != 0 {
			t.Errorf("switch %s: want one change in place, got %v replaces %v", k, r.Diffs, r.Replaces)
		}
	}
	for k, v := range map[string]any{"datacenterId": "datacenter-3", "folder": "net/a"} {
		if r := diffAt(t, switchURN, sw, with(sw, k, v)); len(r.Replaces) != 1 || r.Replaces[0] != k || !r.DeleteBeforeReplace {
			t.Errorf("switch %s: want a replacement (delete first), got %v", k, r.Replaces)
		}
	}
	rule := map[string]any{"name": "r", "computeClusterId": "domain-c1", "virtualMachineIds": []any{"a", "b"}, "enabled": true}
	if r := diffAt(t, affinityURN, rule, with(rule, "virtualMachineIds", []any{"b", "a"})); r.Changes != pulumirpc.DiffResponse_DIFF_NONE {
		t.Errorf("affinity rule's VMs in another order: %v", r.Diffs)
	}
	if r := diffAt(t, affinityURN, rule, with(rule, "virtualMachineIds", []any{"a", "b", "c"})); len(r.Replaces) != 0 || len(r.Diffs) != 1 {
		t.Errorf("affinity rule's VMs: want in place, got %v %v", r.Diffs, r.Replaces)
	}
	if r := diffAt(t, affinityURN, rule, with(rule, "computeClusterId", "domain-c2")); len(r.Replaces) != 1 {
		t.Errorf("affinity rule's cluster: want a replacement, got %v", r.Replaces)
	}
}

func TestCheckOfTheSwitchInputByInput(t *testing.T) {
	ok := map[string]any{"datacenterId": "datacenter-2", "uplinks": []any{"u1", "u2"}, "activeUplinks": []any{"u1"}, "standbyUplinks": []any{"u2"},
		"maxMtu": 9000.0, "vlanId": 10.0, "allowPromiscuous": false, "allowForgedTransmits": false, "allowMacChanges": false,
		"description": "d", "contactName": "n", "contactDetail": "c", "linkDiscoveryProtocol": "lldp", "linkDiscoveryOperation": "both",
		"folder": "f", "tags": []any{"t"}, "hosts": []any{map[string]any{"hostSystemId": "host-1"}}}
	failures, ins := checkAt(t, switchURN, ok)
	if len(failures) != 0 {
		t.Errorf("every implemented input: %v", failures)
	}
	if name, _ := ins["name"].(string); !strings.HasPrefix(name, "sw-") {
		t.Errorf("auto-name: %v", ins["name"])
	}
	cases := []struct {
		input map[string]any
		want  string
	}{
		{map[string]any{"hosts": []any{map[string]any{"hostSystemId": "host-1", "devices": []any{"vmnic1"}}}}, `hosts[0].devices: input "hosts[0].devices" is not implemented by dcctl's vsphere plugin; remove it`},
		{map[string]any{"teamingPolicy": "failover_explicit"}, `teamingPolicy: input "teamingPolicy" is not implemented by dcctl's vsphere plugin; remove it`},
		{map[string]any{"version": "8.0.0"}, `version: input "version" is not implemented by dcctl's vsphere plugin; remove it`},
		{map[string]any{"maxMtu": "9000"}, `maxMtu: maxMtu must be an integer, not the string "9000"`},
		{map[string]any{"linkDiscoveryProtocol": "stp"}, `linkDiscoveryProtocol: linkDiscoveryProtocol "stp" is not one of cdp, lldp`},
		{map[string]any{"linkDiscoveryOperation": "shout"}, `linkDiscoveryOperation: linkDiscoveryOperation "shout" is not one of advertise, listen, both, none`},
		{map[string]any{"uplinks": []any{"u1"}, "activeUplinks": []any{"u2"}}, `activeUplinks: activeUplinks names "u2", which is not one of uplinks`},
		{map[string]any{"hosts": []any{map[string]any{"hostSystemId": "host-1"}, map[string]any{"hostSystemId": "host-1"}}}, `hosts[1].hostSystemId: hosts[1]: host host-1 is listed twice`},
		{map[string]any{"hosts": []any{map[string]any{}}}, `hosts[0].hostSystemId: hosts[0] needs hostSystemId`},
		{map[string]any{}, `datacenterId: missing required input "datacenterId"`},
	}
	for _, c := range cases {
		news := map[string]any{"datacenterId": "datacenter-2"}
		for k, v := range c.input {
			news[k] = v
		}
		if len(c.input) == 0 {
			delete(news, "datacenterId")
		}
		if got, _ := checkAt(t, switchURN, news); strings.Join(got, "\n") != c.want {
			t.Errorf("%v:\n got %q\nwant %q", c.input, got, c.want)
		}
	}
}

func TestCheckOfTheAffinityRule(t *testing.T) {
	if got, _ := checkAt(t, affinityURN, map[string]any{"computeClusterId": "domain-c1", "virtualMachineIds": []any{"a", "b"}, "enabled": true, "mandatory": true, "name": "r"}); len(got) != 0 {
		t.Errorf("every implemented input: %v", got)
	}
	got, _ := checkAt(t, affinityURN, map[string]any{"computeClusterId": "domain-c1", "virtualMachineIds": []any{"a"}})
	if strings.Join(got, "\n") != "virtualMachineIds: an affinity rule needs at least two virtualMachineIds" {
		t.Errorf("one VM: %q", got)
	}
	got, _ = checkAt(t, affinityURN, map[string]any{"computeClusterId": "domain-c1", "virtualMachineIds": []any{"a", "b"}, "tags": []any{}})
	if strings.Join(got, "\n") != `tags: input "tags" is not implemented by dcctl's vsphere plugin; remove it` {
		t.Errorf("an input the rule does not have: %q", got)
	}
}

// A clone customised with linuxOptions alone gets one DHCP setting per NIC, as the real provider gives it; given
// settings come first, in order.
func TestCustomizationHasOneSettingPerNIC(t *testing.T) {
	linux := map[string]any{"linuxOptions": map[string]any{"hostName": "h", "domain": "d"}}
	if got, _ := checkAt(t, vmURN, map[string]any{"resourcePoolId": "resgroup-1", "clone": map[string]any{"templateUuid": "u", "customize": linux},
		"networkInterfaces": []any{map[string]any{"networkId": "network-1"}, map[string]any{"networkId": "network-2"}}}); len(got) != 0 {
		t.Errorf("customize without networkInterfaces: %v", got)
	}
	spec := customizationSpec(linux, 2)
	if len(spec.NicSettingMap) != 2 {
		t.Fatalf("want 2 NIC settings, got %d", len(spec.NicSettingMap))
	}
	for i, m := range spec.NicSettingMap {
		if _, dhcp := m.Adapter.Ip.(*types.CustomizationDhcpIpGenerator); !dhcp || len(m.Adapter.Gateway) != 0 {
			t.Errorf("NIC %d: want DHCP, got %#v", i, m.Adapter)
		}
	}
	static := map[string]any{"linuxOptions": linux["linuxOptions"], "ipv4Gateway": "10.0.0.1",
		"networkInterfaces": []any{map[string]any{"ipv4Address": "10.0.0.5", "ipv4Netmask": 24.0}}}
	spec = customizationSpec(static, 2)
	if len(spec.NicSettingMap) != 2 {
		t.Fatalf("want 2 NIC settings, got %d", len(spec.NicSettingMap))
	}
	if ip, ok := spec.NicSettingMap[0].Adapter.Ip.(*types.CustomizationFixedIp); !ok || ip.IpAddress != "10.0.0.5" || spec.NicSettingMap[0].Adapter.Gateway[0] != "10.0.0.1" {
		t.Errorf("NIC 0: want 10.0.0.5 via 10.0.0.1, got %#v", spec.NicSettingMap[0].Adapter)
	}
	if _, dhcp := spec.NicSettingMap[1].Adapter.Ip.(*types.CustomizationDhcpIpGenerator); !dhcp {
		t.Errorf("NIC 1: want DHCP, got %#v", spec.NicSettingMap[1].Adapter)
	}
	if n := len(customizationSpec(linux, 0).NicSettingMap); n != 0 {
		t.Errorf("a machine without NICs: %d settings", n)
	}
}

// getHostThumbprint against a real TLS server: the certificate's SHA-1 as AA:BB:…, and a refusal when the certificate
// cannot be verified and insecure is not set.
func TestHostThumbprintOfATLSServer(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	host, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sum := sha1.Sum(srv.Certificate().Raw)
	want := strings.ToUpper(hex.EncodeToString(sum[:]))
	out, err := getHostThumbprint(context.Background(), nil, Props{"address": host, "port": port, "insecure": true})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := out["id"].(string)
	if strings.ReplaceAll(got, ":", "") != want || len(got) != 59 {
		t.Errorf("thumbprint %q, want %s in colon-separated pairs", got, want)
	}
	if _, err := getHostThumbprint(context.Background(), nil, Props{"address": host, "port": port}); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("an unverifiable certificate without insecure: %v", err)
	}
	if _, err := getHostThumbprint(context.Background(), nil, Props{}); err == nil || err.Error() != `missing required input "address"` {
		t.Errorf("no address: %v", err)
	}
}
