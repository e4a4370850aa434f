package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/mo"
)

// The real provider imports by inventory path (VM, folder, pool, port group), by name (tag category) or by a JSON
// object (tag, anti-affinity rule); its resources' IDs are then managed object IDs, UUIDs or URNs. Read accepts
// those import forms too and answers with the canonical ID, so `pulumi import` works as its docs say.
type resolver interface {
	resolveID(ctx context.Context, s *session, id string) (string, error)
}

// byPath: the managed object ID of the inventory object at an absolute path, when id is one.
func byPath(ctx context.Context, s *session, id string) (string, error) {
	if !strings.HasPrefix(id, "/") {
		return id, nil
	}
	ref, err := object.NewSearchIndex(s.vim).FindByInventoryPath(ctx, id)
	if err != nil {
		return "", fmt.Errorf("import %s: %s", id, err)
	}
	if ref == nil {
		return "", fmt.Errorf("import %s: no such inventory object", id)
	}
	return ref.Reference().Value, nil
}

func (folderKind) resolveID(ctx context.Context, s *session, id string) (string, error) {
	return byPath(ctx, s, id)
}

func (poolKind) resolveID(ctx context.Context, s *session, id string) (string, error) {
	return byPath(ctx, s, id)
}

func (portGroupKind) resolveID(ctx context.Context, s *session, id string) (string, error) {
	return byPath(ctx, s, id)
}

func (vmKind) resolveID(ctx context.Context, s *session, id string) (string, error) {
	if !strings.HasPrefix(id, "/") {
		return id, nil
	}
	vm, err := s.finder(nil).VirtualMachine(ctx, id)
	if err != nil {
		return "", fmt.Errorf("import %s: %s", id, err)
	}
	return vmUUID(ctx, s, vm)
}

func (switchKind) resolveID(ctx context.Context, s *session, id string) (string, error) {
	if !strings.HasPrefix(id, "/") {
		return id, nil
	}
	r, err := object.NewSearchIndex(s.vim).FindByInventoryPath(ctx, id)
	if err != nil || r == nil {
		return "", fmt.Errorf("import %s: no such distributed virtual switch", id)
	}
	var d mo.DistributedVirtualSwitch
	if err := s.retrieve(ctx, r.Reference(), []string{"uuid"}, &d); err != nil {
		return "", fmt.Errorf("import %s: %s", id, err)
	}
	return d.Uuid, nil
}

func vmUUID(ctx context.Context, s *session, vm *object.VirtualMachine) (string, error) {
	var m mo.VirtualMachine
	if err := s.retrieve(ctx, vm.Reference(), []string{"config.uuid"}, &m); err != nil {
		return "", err
	}
	if m.Config == nil {
		return "", fmt.Errorf("virtual machine %s has no configuration", vm.Reference().Value)
	}
	return m.Config.Uuid, nil
}

func (categoryKind) resolveID(ctx context.Context, s *session, id string) (string, error) {
	if strings.HasPrefix(id, "urn:") {
		return id, nil
	}
	c, err := s.tags.GetCategory(ctx, id)
	if err != nil {
		return "", fmt.Errorf("import tag category %q: %s", id, err)
	}
	return c.ID, nil
}

func (tagKind) resolveID(ctx context.Context, s *session, id string) (string, error) {
	if !strings.HasPrefix(id, "{") {
		return id, nil
	}
	var q struct {
		Category string `json:"category_name"`
		Tag      string `json:"tag_name"`
	}
	if err := json.Unmarshal([]byte(id), &q); err != nil || q.Category == "" || q.Tag == "" {
		return "", fmt.Errorf("import tag: want {\"category_name\": …, \"tag_name\": …}, got %s", id)
	}
	t, err := s.tags.GetTagForCategory(ctx, q.Tag, q.Category)
	if err != nil {
		return "", fmt.Errorf("import tag %s/%s: %s", q.Category, q.Tag, err)
	}
	return t.ID, nil
}

func (k ruleKind) resolveID(ctx context.Context, s *session, id string) (string, error) {
	if !strings.HasPrefix(id, "{") {
		return id, nil
	}
	var q struct {
		Cluster string `json:"compute_cluster_path"`
		Name    string `json:"name"`
	}
	if err := json.Unmarshal([]byte(id), &q); err != nil || q.Cluster == "" || q.Name == "" {
		return "", fmt.Errorf("import rule: want {\"compute_cluster_path\": …, \"name\": …}, got %s", id)
	}
	c, err := s.finder(nil).ClusterComputeResource(ctx, q.Cluster)
	if err != nil {
		return "", fmt.Errorf("import rule: %s", err)
	}
	rules, err := clusterRules(ctx, s, c.Reference().Value)
	if err != nil {
		return "", err
	}
	for _, r := range rules {
		if info, _, ok := k.rule(r); ok && info.Name == q.Name {
			return fmt.Sprintf("%s:%d", c.Reference().Value, info.Key), nil
		}
	}
	return "", fmt.Errorf("import rule: no rule %q in %s", q.Name, q.Cluster)
}
