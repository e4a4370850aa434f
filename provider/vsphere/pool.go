package main

import (
	"context"
	"fmt"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// poolKind: vsphere:index/resourcePool:ResourcePool. ID: the pool's managed object ID (resgroup-45).
type poolKind struct{}

var poolAllocation = []string{"ShareLevel", "Shares", "Reservation", "Expandable", "Limit"}

func (poolKind) inputs() fieldSpec {
	spec := fieldSpec{"name": nil, "parentResourcePoolId": nil, "tags": nil}
	for _, kind := range []string{"cpu", "memory"} {
		for _, a := range poolAllocation {
			spec[kind+a] = nil
		}
	}
	return spec
}
func (poolKind) required() []string { return []string{"parentResourcePoolId"} }
func (k poolKind) updatable() []string {
	var out []string
	for key := range k.inputs() {
		if key != "parentResourcePoolId" {
			out = append(out, key)
		}
	}
	return out
}
func (poolKind) autoName() string { return "name" }

// allocation: the real provider's defaults are shares normal, no reservation, expandable, no limit.
func allocation(p Props, kind string) *types.ResourceAllocationInfo {
	level := orDefault(str(p, kind+"ShareLevel"), "normal")
	return &types.ResourceAllocationInfo{
		Reservation:           types.NewInt64(num(p, kind+"Reservation", 0)),
		ExpandableReservation: types.NewBool(boolean(p, kind+"Expandable", true)),
		Limit:                 types.NewInt64(num(p, kind+"Limit", -1)),
		Shares:                &types.SharesInfo{Level: types.SharesLevel(level), Shares: int32(num(p, kind+"Shares", 0))},
	}
}

func poolSpec(p Props) types.ResourceConfigSpec {
	return types.ResourceConfigSpec{CpuAllocation: *allocation(p, "cpu"), MemoryAllocation: *allocation(p, "memory")}
}

func (poolKind) create(ctx context.Context, s *session, news Props) (string, Props, error) {
	parent := object.NewResourcePool(s.vim, ref("ResourcePool", str(news, "parentResourcePoolId")))
	pool, err := parent.Create(ctx, str(news, "name"), poolSpec(news))
	if err != nil {
		return "", nil, fmt.Errorf("create resource pool %q: %s", str(news, "name"), err)
	}
	id := pool.Reference().Value
	if err := setTags(ctx, s, pool.Reference(), nil, strs(news, "tags")); err != nil {
		return id, copyProps(news), err
	}
	outs, _, err := poolKind{}.read(ctx, s, id, news)
	return id, outs, err
}

func (poolKind) read(ctx context.Context, s *session, id string, olds Props) (Props, Props, error) {
	r := ref("ResourcePool", id)
	var m mo.ResourcePool
	if err := s.retrieve(ctx, r, []string{"name", "parent", "config"}, &m); err != nil {
		return nil, nil, err
	}
	ins := Props{"name": m.Name}
	if m.Parent != nil && m.Parent.Type == "ResourcePool" {
		ins["parentResourcePoolId"] = m.Parent.Value
	}
	for kind, a := range map[string]types.ResourceAllocationInfo{"cpu": m.Config.CpuAllocation, "memory": m.Config.MemoryAllocation} {
		if a.Shares != nil {
			ins[kind+"ShareLevel"] = string(a.Shares.Level)
			ins[kind+"Shares"] = a.Shares.Shares
		}
		if a.Reservation != nil {
			ins[kind+"Reservation"] = *a.Reservation
		}
		if a.ExpandableReservation != nil {
			ins[kind+"Expandable"] = *a.ExpandableReservation
		}
		if a.Limit != nil {
			ins[kind+"Limit"] = *a.Limit
		}
	}
	// Shares are a count only for the "custom" level; for the others vSphere derives it.
	for _, kind := range []string{"cpu", "memory"} {
		if ins[kind+"ShareLevel"] != "custom" {
			if _, asked := olds[kind+"Shares"]; !asked {
				delete(ins, kind+"Shares")
			}
		}
	}
	if err := readTags(ctx, s, r, olds, ins); err != nil {
		return nil, nil, err
	}
	return copyProps(ins), ins, nil
}

func (poolKind) update(ctx context.Context, s *session, id string, olds, news Props) (Props, error) {
	r := ref("ResourcePool", id)
	spec := poolSpec(news)
	if err := object.NewResourcePool(s.vim, r).UpdateConfig(ctx, str(news, "name"), &spec); err != nil {
		return nil, fmt.Errorf("update resource pool %q: %s", str(news, "name"), err)
	}
	if err := setTags(ctx, s, r, strs(olds, "tags"), strs(news, "tags")); err != nil {
		return nil, err
	}
	outs, _, err := poolKind{}.read(ctx, s, id, news)
	return outs, err
}

func (poolKind) delete(ctx context.Context, s *session, id string, olds Props) error {
	r := ref("ResourcePool", id)
	_ = setTags(ctx, s, r, strs(olds, "tags"), nil)
	return waitFor(ctx)(object.NewResourcePool(s.vim, r).Destroy(ctx))
}
