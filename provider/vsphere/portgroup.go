package main

import (
	"context"
	"fmt"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// portGroupKind: vsphere:index/distributedPortGroup:DistributedPortGroup. ID: the port group's managed object ID
// (dvportgroup-67); the switch is named by its UUID (distributedVirtualSwitchUuid).
type portGroupKind struct{}

func (portGroupKind) inputs() fieldSpec {
	return fieldSpec{"distributedVirtualSwitchUuid": nil, "name": nil, "vlanId": nil, "type": nil, "numberOfPorts": nil,
		"description": nil, "autoExpand": nil, "tags": nil, "activeUplinks": nil, "standbyUplinks": nil,
		"allowPromiscuous": nil, "allowForgedTransmits": nil, "allowMacChanges": nil}
}
func (portGroupKind) required() []string { return []string{"distributedVirtualSwitchUuid"} }
func (portGroupKind) updatable() []string {
	return []string{"name", "vlanId", "type", "numberOfPorts", "description", "autoExpand", "tags", "activeUplinks",
		"standbyUplinks", "allowPromiscuous", "allowForgedTransmits", "allowMacChanges"}
}
func (portGroupKind) autoName() string { return "name" }

// switches: every distributed switch, with its UUID and name.
func switches(ctx context.Context, s *session, root types.ManagedObjectReference) ([]mo.DistributedVirtualSwitch, error) {
	m := view.NewManager(s.vim)
	v, err := m.CreateContainerView(ctx, root, []string{"DistributedVirtualSwitch"}, true)
	if err != nil {
		return nil, err
	}
	defer func() { _ = v.Destroy(ctx) }()
	var out []mo.DistributedVirtualSwitch
	if err := v.Retrieve(ctx, []string{"DistributedVirtualSwitch"}, []string{"uuid", "name", "config"}, &out); err != nil {
		return nil, err
	}
	return out, nil
}

func switchByUUID(ctx context.Context, s *session, uuid string) (*object.DistributedVirtualSwitch, error) {
	all, err := switches(ctx, s, s.vim.ServiceContent.RootFolder)
	if err != nil {
		return nil, err
	}
	for _, d := range all {
		if d.Uuid == uuid {
			return object.NewDistributedVirtualSwitch(s.vim, d.Reference()), nil
		}
	}
	return nil, fmt.Errorf("no distributed virtual switch with UUID %s", uuid)
}

func portGroupSpec(news Props) types.DVPortgroupConfigSpec {
	return types.DVPortgroupConfigSpec{
		Name:              str(news, "name"),
		Type:              orDefault(str(news, "type"), "earlyBinding"),
		NumPorts:          int32(num(news, "numberOfPorts", 8)),
		AutoExpand:        types.NewBool(boolean(news, "autoExpand", true)),
		Description:       str(news, "description"),
		DefaultPortConfig: portSetting(news),
	}
}

// portSetting: VLAN, security policy and uplink order; what the program leaves out stays inherited from the switch.
func portSetting(news Props) *types.VMwareDVSPortSetting {
	set := &types.VMwareDVSPortSetting{
		Vlan: &types.VmwareDistributedVirtualSwitchVlanIdSpec{VlanId: int32(num(news, "vlanId", 0))},
	}
	policy := func(key string) *types.BoolPolicy {
		if v, ok := news[key].(bool); ok {
			return &types.BoolPolicy{InheritablePolicy: types.InheritablePolicy{Inherited: false}, Value: types.NewBool(v)}
		}
		return nil
	}
	if p, f, m := policy("allowPromiscuous"), policy("allowForgedTransmits"), policy("allowMacChanges"); p != nil || f != nil || m != nil {
		set.SecurityPolicy = &types.DVSSecurityPolicy{AllowPromiscuous: p, ForgedTransmits: f, MacChanges: m}
	}
	if _, a := news["activeUplinks"]; a || news["standbyUplinks"] != nil {
		set.UplinkTeamingPolicy = &types.VmwareUplinkPortTeamingPolicy{
			UplinkPortOrder: &types.VMwareUplinkPortOrderPolicy{ActiveUplinkPort: strs(news, "activeUplinks"), StandbyUplinkPort: strs(news, "standbyUplinks")},
		}
	}
	return set
}

func (portGroupKind) create(ctx context.Context, s *session, news Props) (string, Props, error) {
	dvs, err := switchByUUID(ctx, s, str(news, "distributedVirtualSwitchUuid"))
	if err != nil {
		return "", nil, err
	}
	if err := waitFor(ctx)(dvs.AddPortgroup(ctx, []types.DVPortgroupConfigSpec{portGroupSpec(news)})); err != nil {
		return "", nil, fmt.Errorf("add port group %q: %s", str(news, "name"), err)
	}
	var d mo.DistributedVirtualSwitch
	if err := s.retrieve(ctx, dvs.Reference(), []string{"portgroup"}, &d); err != nil {
		return "", nil, err
	}
	for _, pg := range d.Portgroup {
		var p mo.DistributedVirtualPortgroup
		if err := s.retrieve(ctx, pg, []string{"name"}, &p); err == nil && p.Name == str(news, "name") {
			if err := setTags(ctx, s, pg, nil, strs(news, "tags")); err != nil {
				return pg.Value, copyProps(news), err
			}
			outs, _, err := portGroupKind{}.read(ctx, s, pg.Value, news)
			return pg.Value, outs, err
		}
	}
	return "", nil, fmt.Errorf("port group %q was added but cannot be found", str(news, "name"))
}

func (portGroupKind) read(ctx context.Context, s *session, id string, olds Props) (Props, Props, error) {
	var p mo.DistributedVirtualPortgroup
	if err := s.retrieve(ctx, ref("DistributedVirtualPortgroup", id), []string{"name", "key", "config"}, &p); err != nil {
		return nil, nil, err
	}
	ins := Props{"name": p.Name, "type": p.Config.Type, "numberOfPorts": p.Config.NumPorts, "description": p.Config.Description}
	if p.Config.AutoExpand != nil {
		ins["autoExpand"] = *p.Config.AutoExpand
	}
	if p.Config.DistributedVirtualSwitch != nil {
		var d mo.DistributedVirtualSwitch
		if err := s.retrieve(ctx, *p.Config.DistributedVirtualSwitch, []string{"uuid"}, &d); err == nil {
			ins["distributedVirtualSwitchUuid"] = d.Uuid
		}
	}
	if set, ok := p.Config.DefaultPortConfig.(*types.VMwareDVSPortSetting); ok {
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
	r := ref("DistributedVirtualPortgroup", id)
	if err := readTags(ctx, s, r, olds, ins); err != nil {
		return nil, nil, err
	}
	outs := copyProps(ins)
	outs["key"] = p.Key
	outs["configVersion"] = p.Config.ConfigVersion
	return outs, ins, nil
}

func (portGroupKind) update(ctx context.Context, s *session, id string, olds, news Props) (Props, error) {
	pg := object.NewDistributedVirtualPortgroup(s.vim, ref("DistributedVirtualPortgroup", id))
	var p mo.DistributedVirtualPortgroup
	if err := s.retrieve(ctx, pg.Reference(), []string{"config.configVersion"}, &p); err != nil {
		return nil, err
	}
	spec := portGroupSpec(news)
	spec.ConfigVersion = p.Config.ConfigVersion
	if err := waitFor(ctx)(pg.Reconfigure(ctx, spec)); err != nil {
		return nil, fmt.Errorf("reconfigure port group %q: %s", str(news, "name"), err)
	}
	if err := setTags(ctx, s, pg.Reference(), strs(olds, "tags"), strs(news, "tags")); err != nil {
		return nil, err
	}
	outs, _, err := portGroupKind{}.read(ctx, s, id, news)
	return outs, err
}

func (portGroupKind) delete(ctx context.Context, s *session, id string, olds Props) error {
	_ = setTags(ctx, s, ref("DistributedVirtualPortgroup", id), strs(olds, "tags"), nil)
	return waitFor(ctx)(object.NewDistributedVirtualPortgroup(s.vim, ref("DistributedVirtualPortgroup", id)).Destroy(ctx))
}

func orNoStrings(xs []string) []string {
	if xs == nil {
		return []string{}
	}
	return xs
}
