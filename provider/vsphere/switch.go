package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// switchKind: vsphere:index/distributedVirtualSwitch:DistributedVirtualSwitch. ID: the switch's UUID, as in the real
// provider (what DistributedPortGroup's distributedVirtualSwitchUuid takes).
type switchKind struct{}

// The switch settings that ReconfigureDvs changes (everything but hosts, tags and where the switch is).
var switchSettings = []string{"name", "description", "contactName", "contactDetail", "maxMtu", "uplinks", "activeUplinks",
	"standbyUplinks", "vlanId", "allowPromiscuous", "allowForgedTransmits", "allowMacChanges", "linkDiscoveryProtocol",
	"linkDiscoveryOperation"}

func (switchKind) inputs() fieldSpec {
	spec := fieldSpec{"datacenterId": nil, "folder": nil, "tags": nil, "hosts": {"hostSystemId": nil}}
	for _, k := range switchSettings {
		spec[k] = nil
	}
	return spec
}
func (switchKind) required() []string { return []string{"datacenterId"} }
func (switchKind) updatable() []string {
	return append([]string{"hosts", "tags"}, switchSettings...)
}
func (switchKind) autoName() string { return "name" }

func (switchKind) validate(news Props) [][2]string {
	var out [][2]string
	oneOf := func(key string, allowed ...string) {
		if v := str(news, key); v != "" && !contains(allowed, v) {
			out = append(out, [2]string{key, fmt.Sprintf("%s %q is not one of %s", key, v, strings.Join(allowed, ", "))})
		}
	}
	oneOf("linkDiscoveryProtocol", "cdp", "lldp")
	oneOf("linkDiscoveryOperation", "advertise", "listen", "both", "none")
	if _, set := news["uplinks"]; set && !isUnknown(news["uplinks"]) {
		uplinks := strs(news, "uplinks")
		for _, key := range []string{"activeUplinks", "standbyUplinks"} {
			for _, u := range strs(news, key) {
				if !contains(uplinks, u) {
					out = append(out, [2]string{key, fmt.Sprintf("%s names %q, which is not one of uplinks", key, u)})
				}
			}
		}
	}
	seen := map[string]bool{}
	for i, h := range list(news, "hosts") {
		id := str(h, "hostSystemId")
		switch {
		case id == "" && !isUnknown(h["hostSystemId"]):
			out = append(out, [2]string{fmt.Sprintf("hosts[%d].hostSystemId", i), fmt.Sprintf("hosts[%d] needs hostSystemId", i)})
		case id != "" && seen[id]:
			out = append(out, [2]string{fmt.Sprintf("hosts[%d].hostSystemId", i), fmt.Sprintf("hosts[%d]: host %s is listed twice", i, id)})
		}
		seen[id] = true
	}
	return out
}

func switchConfigSpec(news Props) *types.VMwareDVSConfigSpec {
	spec := &types.VMwareDVSConfigSpec{
		DVSConfigSpec: types.DVSConfigSpec{
			Name:              str(news, "name"),
			Description:       str(news, "description"),
			Contact:           &types.DVSContactInfo{Name: str(news, "contactName"), Contact: str(news, "contactDetail")},
			DefaultPortConfig: portSetting(news),
		},
	}
	if _, set := news["uplinks"]; set {
		spec.UplinkPortPolicy = &types.DVSNameArrayUplinkPortPolicy{UplinkPortName: strs(news, "uplinks")}
	}
	if _, set := news["maxMtu"]; set {
		spec.MaxMtu = int32(num(news, "maxMtu", 1500))
	}
	if p, o := str(news, "linkDiscoveryProtocol"), str(news, "linkDiscoveryOperation"); p != "" || o != "" {
		spec.LinkDiscoveryProtocolConfig = &types.LinkDiscoveryProtocolConfig{Protocol: orDefault(p, "cdp"), Operation: orDefault(o, "listen")}
	}
	return spec
}

// memberChanges: the host member specs that take the switch from the hosts it has to the hosts the program lists.
func memberChanges(have []types.ManagedObjectReference, news Props) []types.DistributedVirtualSwitchHostMemberConfigSpec {
	var want []string
	for _, h := range list(news, "hosts") {
		want = append(want, str(h, "hostSystemId"))
	}
	var haveIDs []string
	for _, h := range have {
		haveIDs = append(haveIDs, h.Value)
	}
	var out []types.DistributedVirtualSwitchHostMemberConfigSpec
	for _, id := range want {
		if !contains(haveIDs, id) {
			out = append(out, types.DistributedVirtualSwitchHostMemberConfigSpec{Operation: string(types.ConfigSpecOperationAdd), Host: ref("HostSystem", id)})
		}
	}
	for _, id := range haveIDs {
		if !contains(want, id) {
			out = append(out, types.DistributedVirtualSwitchHostMemberConfigSpec{Operation: string(types.ConfigSpecOperationRemove), Host: ref("HostSystem", id)})
		}
	}
	return out
}

// switchByID: the switch with that UUID, nil when there is none.
func switchByID(ctx context.Context, s *session, uuid string) (*mo.DistributedVirtualSwitch, error) {
	all, err := switches(ctx, s, s.vim.ServiceContent.RootFolder)
	if err != nil {
		return nil, err
	}
	for i := range all {
		if all[i].Uuid == uuid {
			var d mo.DistributedVirtualSwitch
			if err := s.retrieve(ctx, all[i].Reference(), []string{"name", "uuid", "config", "summary.hostMember", "parent"}, &d); err != nil {
				return nil, err
			}
			return &d, nil
		}
	}
	return nil, nil
}

func (k switchKind) create(ctx context.Context, s *session, news Props) (string, Props, error) {
	root, err := typeRoot(ctx, s, "network", str(news, "datacenterId"))
	if err != nil {
		return "", nil, err
	}
	folder, err := folderAt(ctx, s, root, str(news, "folder"))
	if err != nil {
		return "", nil, fmt.Errorf("folder %q: %s", str(news, "folder"), err)
	}
	info, err := waitResult(ctx)(folder.CreateDVS(ctx, types.DVSCreateSpec{ConfigSpec: switchConfigSpec(news)}))
	if err != nil {
		return "", nil, fmt.Errorf("create distributed virtual switch %q: %s", str(news, "name"), err)
	}
	r := info.Result.(types.ManagedObjectReference)
	var d mo.DistributedVirtualSwitch
	if err := s.retrieve(ctx, r, []string{"uuid"}, &d); err != nil {
		return "", nil, err
	}
	id := d.Uuid
	fail := func(err error) (string, Props, error) {
		outs, _, rerr := k.read(ctx, s, id, news)
		if rerr != nil || outs == nil {
			outs = copyProps(news)
		}
		return id, outs, err
	}
	// Hosts join in a reconfiguration of their own: vCenter takes them in the create spec too, the simulator does not.
	if changes := memberChanges(nil, news); len(changes) > 0 {
		if err := k.reconfigure(ctx, s, r, &types.VMwareDVSConfigSpec{DVSConfigSpec: types.DVSConfigSpec{Host: changes}}); err != nil {
			return fail(err)
		}
	}
	if err := setTags(ctx, s, r, nil, strs(news, "tags")); err != nil {
		return fail(err)
	}
	outs, _, err := k.read(ctx, s, id, news)
	return id, outs, err
}

func (switchKind) reconfigure(ctx context.Context, s *session, r types.ManagedObjectReference, spec *types.VMwareDVSConfigSpec) error {
	var d mo.DistributedVirtualSwitch
	if err := s.retrieve(ctx, r, []string{"config"}, &d); err != nil {
		return err
	}
	if d.Config == nil {
		return fmt.Errorf("distributed virtual switch %s has no configuration", r.Value)
	}
	spec.ConfigVersion = d.Config.GetDVSConfigInfo().ConfigVersion
	if err := waitFor(ctx)(object.NewDistributedVirtualSwitch(s.vim, r).Reconfigure(ctx, spec)); err != nil {
		return fmt.Errorf("reconfigure distributed virtual switch: %s", err)
	}
	return nil
}

func (switchKind) read(ctx context.Context, s *session, id string, olds Props) (Props, Props, error) {
	d, err := switchByID(ctx, s, id)
	if err != nil || d == nil {
		return nil, nil, err
	}
	if d.Config == nil {
		return nil, nil, fmt.Errorf("distributed virtual switch %s has no configuration", id)
	}
	cfg := d.Config.GetDVSConfigInfo()
	ins := Props{"name": d.Name, "description": cfg.Description, "uplinks": []string{}, "activeUplinks": []string{},
		"standbyUplinks": []string{}, "vlanId": 0, "allowPromiscuous": false, "allowForgedTransmits": false, "allowMacChanges": false}
	if cfg.Contact.Name != "" || cfg.Contact.Contact != "" || olds["contactName"] != nil || olds["contactDetail"] != nil {
		ins["contactName"], ins["contactDetail"] = cfg.Contact.Name, cfg.Contact.Contact
	}
	if p, ok := cfg.UplinkPortPolicy.(*types.DVSNameArrayUplinkPortPolicy); ok {
		ins["uplinks"] = orNoStrings(p.UplinkPortName)
	}
	ins["maxMtu"] = 0
	if v, ok := d.Config.(*types.VMwareDVSConfigInfo); ok {
		ins["maxMtu"] = v.MaxMtu
		if l := v.LinkDiscoveryProtocolConfig; l != nil {
			ins["linkDiscoveryProtocol"], ins["linkDiscoveryOperation"] = l.Protocol, l.Operation
		}
	}
	if set, ok := cfg.DefaultPortConfig.(*types.VMwareDVSPortSetting); ok {
		if v, ok := set.Vlan.(*types.VmwareDistributedVirtualSwitchVlanIdSpec); ok && v != nil {
			ins["vlanId"] = v.VlanId
		}
		if sp := set.SecurityPolicy; sp != nil {
			for key, b := range map[string]*types.BoolPolicy{"allowPromiscuous": sp.AllowPromiscuous, "allowForgedTransmits": sp.ForgedTransmits, "allowMacChanges": sp.MacChanges} {
				if b != nil && b.Value != nil {
					ins[key] = *b.Value
				}
			}
		}
		if t := set.UplinkTeamingPolicy; t != nil && t.UplinkPortOrder != nil {
			ins["activeUplinks"] = orNoStrings(t.UplinkPortOrder.ActiveUplinkPort)
			ins["standbyUplinks"] = orNoStrings(t.UplinkPortOrder.StandbyUplinkPort)
		}
	}
	if dc, err := s.datacenterOf(ctx, d.Reference()); err == nil {
		ins["datacenterId"] = dc.Reference().Value
		if root, err := typeRoot(ctx, s, "network", dc.Reference().Value); err == nil && d.Parent != nil {
			if rel, err := relativeFolder(ctx, s, root, *d.Parent); err == nil {
				ins["folder"] = rel
			}
		}
	}
	if _, had := olds["hosts"]; had || len(d.Summary.HostMember) > 0 {
		ins["hosts"] = memberList(d.Summary.HostMember, olds)
	}
	if err := readTags(ctx, s, d.Reference(), olds, ins); err != nil {
		return nil, nil, err
	}
	outs := copyProps(ins)
	outs["configVersion"] = cfg.ConfigVersion
	return outs, ins, nil
}

// memberList: the switch's hosts as the program lists them (its order first, then hosts that joined otherwise).
func memberList(members []types.ManagedObjectReference, olds Props) []Props {
	var ids []string
	for _, m := range members {
		ids = append(ids, m.Value)
	}
	out := []Props{}
	for _, h := range list(olds, "hosts") {
		if id := str(h, "hostSystemId"); contains(ids, id) {
			out = append(out, Props{"hostSystemId": id})
		}
	}
	for _, id := range ids {
		listed := false
		for _, h := range out {
			listed = listed || str(h, "hostSystemId") == id
		}
		if !listed {
			out = append(out, Props{"hostSystemId": id})
		}
	}
	return out
}

func (k switchKind) update(ctx context.Context, s *session, id string, olds, news Props) (Props, error) {
	d, err := switchByID(ctx, s, id)
	if err != nil {
		return nil, err
	}
	if d == nil {
		return nil, fmt.Errorf("no distributed virtual switch with UUID %s", id)
	}
	spec := switchConfigSpec(news)
	_, manage := news["hosts"]
	if _, had := olds["hosts"]; manage || had {
		spec.Host = memberChanges(d.Summary.HostMember, news)
	}
	if err := k.reconfigure(ctx, s, d.Reference(), spec); err != nil {
		return nil, err
	}
	current, err := attachedTags(ctx, s, d.Reference())
	if err != nil {
		return nil, err
	}
	if err := setTags(ctx, s, d.Reference(), current, strs(news, "tags")); err != nil {
		return nil, err
	}
	outs, ins, err := k.read(ctx, s, id, news)
	if err != nil {
		return nil, err
	}
	// A server that takes the reconfiguration without applying it (the simulator applies host membership only) must
	// not leave a state that claims what the switch does not have.
	var ignored []string
	got := normalize(ins).(map[string]any)
	for _, key := range switchSettings {
		if v, set := news[key]; set && !sameValue(key, got[key], v) {
			ignored = append(ignored, key)
		}
	}
	if len(ignored) > 0 {
		return outs, fmt.Errorf("the server accepted the reconfiguration of switch %s but did not apply %s", id, strings.Join(ignored, ", "))
	}
	return outs, nil
}

func (switchKind) delete(ctx context.Context, s *session, id string, _ Props) error {
	d, err := switchByID(ctx, s, id)
	if err != nil || d == nil {
		return err
	}
	// As for a VM: vCenter drops the tag associations itself, the simulator keeps them and then refuses to delete tags.
	if attached, err := attachedTags(ctx, s, d.Reference()); err == nil {
		_ = setTags(ctx, s, d.Reference(), attached, nil)
	}
	return waitFor(ctx)(object.NewDistributedVirtualSwitch(s.vim, d.Reference()).Destroy(ctx))
}
