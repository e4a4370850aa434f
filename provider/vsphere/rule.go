package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// ruleKind: vsphere:index/computeClusterVmAntiAffinityRule:ComputeClusterVmAntiAffinityRule (VMs kept apart) and,
// with affinity, vsphere:index/computeClusterVmAffinityRule:ComputeClusterVmAffinityRule (VMs kept together). ID:
// CLUSTER_ID:RULE_KEY (domain-c12:3). virtualMachineIds are VM UUIDs, as the VirtualMachine resource's IDs are.
type ruleKind struct{ affinity bool }

func (k ruleKind) what() string {
	if k.affinity {
		return "an affinity rule"
	}
	return "an anti-affinity rule"
}

func (ruleKind) inputs() fieldSpec {
	return fieldSpec{"computeClusterId": nil, "name": nil, "virtualMachineIds": nil, "enabled": nil, "mandatory": nil}
}
func (ruleKind) required() []string { return []string{"computeClusterId", "virtualMachineIds"} }
func (ruleKind) updatable() []string {
	return []string{"name", "virtualMachineIds", "enabled", "mandatory"}
}
func (ruleKind) autoName() string { return "name" }

func (k ruleKind) validate(news Props) [][2]string {
	if ids := news["virtualMachineIds"]; !isUnknown(ids) && len(strs(news, "virtualMachineIds")) < 2 {
		return [][2]string{{"virtualMachineIds", k.what() + " needs at least two virtualMachineIds"}}
	}
	return nil
}

func splitRuleID(id string) (string, int32, error) {
	cluster, key, ok := strings.Cut(id, ":")
	n, err := strconv.Atoi(key)
	if !ok || err != nil {
		return "", 0, fmt.Errorf("bad rule ID %q (want CLUSTER_ID:KEY)", id)
	}
	return cluster, int32(n), nil
}

func (k ruleKind) spec(ctx context.Context, s *session, news Props, key int32, op types.ArrayUpdateOperation) (*types.ClusterConfigSpecEx, error) {
	var vms []types.ManagedObjectReference
	for _, uuid := range strs(news, "virtualMachineIds") {
		vm, err := findVM(ctx, s, uuid)
		if err != nil {
			return nil, fmt.Errorf("virtualMachineIds: %s", err)
		}
		vms = append(vms, vm.Reference())
	}
	base := types.ClusterRuleInfo{
		Key: key, Name: str(news, "name"), Enabled: types.NewBool(boolean(news, "enabled", true)),
		Mandatory: types.NewBool(boolean(news, "mandatory", false)),
	}
	var info types.BaseClusterRuleInfo = &types.ClusterAntiAffinityRuleSpec{ClusterRuleInfo: base, Vm: vms}
	if k.affinity {
		info = &types.ClusterAffinityRuleSpec{ClusterRuleInfo: base, Vm: vms}
	}
	spec := types.ClusterRuleSpec{ArrayUpdateSpec: types.ArrayUpdateSpec{Operation: op}, Info: info}
	if op == types.ArrayUpdateOperationRemove {
		spec = types.ClusterRuleSpec{ArrayUpdateSpec: types.ArrayUpdateSpec{Operation: op, RemoveKey: key}}
	}
	return &types.ClusterConfigSpecEx{RulesSpec: []types.ClusterRuleSpec{spec}}, nil
}

func clusterRules(ctx context.Context, s *session, cluster string) ([]types.BaseClusterRuleInfo, error) {
	var c mo.ClusterComputeResource
	if err := s.retrieve(ctx, ref("ClusterComputeResource", cluster), []string{"configurationEx"}, &c); err != nil {
		return nil, err
	}
	cfg, ok := c.ConfigurationEx.(*types.ClusterConfigInfoEx)
	if !ok {
		return nil, fmt.Errorf("cluster %s has no configuration", cluster)
	}
	return cfg.Rule, nil
}

func (k ruleKind) create(ctx context.Context, s *session, news Props) (string, Props, error) {
	cluster := str(news, "computeClusterId")
	spec, err := k.spec(ctx, s, news, 0, types.ArrayUpdateOperationAdd)
	if err != nil {
		return "", nil, err
	}
	cr := object.NewComputeResource(s.vim, ref("ClusterComputeResource", cluster))
	if err := waitFor(ctx)(cr.Reconfigure(ctx, spec, true)); err != nil {
		return "", nil, fmt.Errorf("create rule %q: %s", str(news, "name"), err)
	}
	rules, err := clusterRules(ctx, s, cluster)
	if err != nil {
		return "", nil, err
	}
	for _, r := range rules {
		if info := r.GetClusterRuleInfo(); info.Name == str(news, "name") {
			id := fmt.Sprintf("%s:%d", cluster, info.Key)
			outs, _, err := k.read(ctx, s, id, news)
			return id, outs, err
		}
	}
	return "", nil, fmt.Errorf("rule %q was created but cannot be found in cluster %s", str(news, "name"), cluster)
}

// rule: the cluster rule's common part and its machines, when r is a rule of this kind.
func (k ruleKind) rule(r types.BaseClusterRuleInfo) (*types.ClusterRuleInfo, []types.ManagedObjectReference, bool) {
	switch x := r.(type) {
	case *types.ClusterAffinityRuleSpec:
		return &x.ClusterRuleInfo, x.Vm, k.affinity
	case *types.ClusterAntiAffinityRuleSpec:
		return &x.ClusterRuleInfo, x.Vm, !k.affinity
	}
	return nil, nil, false
}

func (k ruleKind) read(ctx context.Context, s *session, id string, _ Props) (Props, Props, error) {
	cluster, key, err := splitRuleID(id)
	if err != nil {
		return nil, nil, err
	}
	rules, err := clusterRules(ctx, s, cluster)
	if err != nil {
		return nil, nil, err
	}
	for _, r := range rules {
		info, members, ok := k.rule(r)
		if !ok || info.Key != key {
			continue
		}
		uuids := []string{}
		for _, vm := range members {
			var m mo.VirtualMachine
			if err := s.retrieve(ctx, vm, []string{"config.uuid"}, &m); err == nil && m.Config != nil {
				uuids = append(uuids, m.Config.Uuid)
			}
		}
		ins := Props{"computeClusterId": cluster, "name": info.Name, "virtualMachineIds": uuids,
			"enabled": info.Enabled != nil && *info.Enabled, "mandatory": info.Mandatory != nil && *info.Mandatory}
		return copyProps(ins), ins, nil
	}
	return nil, nil, nil
}

func (k ruleKind) update(ctx context.Context, s *session, id string, _, news Props) (Props, error) {
	cluster, key, err := splitRuleID(id)
	if err != nil {
		return nil, err
	}
	spec, err := k.spec(ctx, s, news, key, types.ArrayUpdateOperationEdit)
	if err != nil {
		return nil, err
	}
	cr := object.NewComputeResource(s.vim, ref("ClusterComputeResource", cluster))
	if err := waitFor(ctx)(cr.Reconfigure(ctx, spec, true)); err != nil {
		return nil, fmt.Errorf("update rule %q: %s", str(news, "name"), err)
	}
	outs, _, err := k.read(ctx, s, id, news)
	return outs, err
}

func (k ruleKind) delete(ctx context.Context, s *session, id string, _ Props) error {
	cluster, key, err := splitRuleID(id)
	if err != nil {
		return err
	}
	spec, err := k.spec(ctx, s, Props{}, key, types.ArrayUpdateOperationRemove)
	if err != nil {
		return err
	}
	cr := object.NewComputeResource(s.vim, ref("ClusterComputeResource", cluster))
	return waitFor(ctx)(cr.Reconfigure(ctx, spec, true))
}
