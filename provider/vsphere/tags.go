package main

import (
	"context"
	"fmt"

	"github.com/vmware/govmomi/vapi/tags"
	"github.com/vmware/govmomi/vim25/types"
)

// categoryKind: vsphere:index/tagCategory:TagCategory. ID: the tagging API's URN (urn:vmomi:InventoryServiceCategory:…).
type categoryKind struct{}

func (categoryKind) inputs() fieldSpec {
	return fieldSpec{"name": nil, "description": nil, "cardinality": nil, "associableTypes": nil}
}
func (categoryKind) required() []string  { return []string{"associableTypes", "cardinality"} }
func (categoryKind) updatable() []string { return []string{"name", "description", "associableTypes"} }
func (categoryKind) autoName() string    { return "name" }

func (categoryKind) validate(news Props) [][2]string {
	if c := str(news, "cardinality"); c != "SINGLE" && c != "MULTIPLE" && !isUnknown(news["cardinality"]) {
		return [][2]string{{"cardinality", fmt.Sprintf("cardinality %q is not SINGLE or MULTIPLE", c)}}
	}
	return nil
}

func categoryProps(c *tags.Category) Props {
	return Props{"name": c.Name, "description": c.Description, "cardinality": c.Cardinality, "associableTypes": c.AssociableTypes}
}

func (categoryKind) create(ctx context.Context, s *session, news Props) (string, Props, error) {
	id, err := s.tags.CreateCategory(ctx, &tags.Category{
		Name: str(news, "name"), Description: str(news, "description"), Cardinality: str(news, "cardinality"),
		AssociableTypes: strs(news, "associableTypes"),
	})
	if err != nil {
		return "", nil, fmt.Errorf("create tag category %q: %s", str(news, "name"), err)
	}
	return id, copyProps(news), nil
}

func (categoryKind) read(ctx context.Context, s *session, id string, _ Props) (Props, Props, error) {
	c, err := s.tags.GetCategory(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	p := categoryProps(c)
	return p, copyProps(p), nil
}

func (categoryKind) update(ctx context.Context, s *session, id string, olds, news Props) (Props, error) {
	c, err := s.tags.GetCategory(ctx, id)
	if err != nil {
		return nil, err
	}
	// The tagging API can only add associable types, never take one away.
	for _, t := range c.AssociableTypes {
		if !contains(strs(news, "associableTypes"), t) {
			return nil, fmt.Errorf("tag category %s: associable type %s cannot be removed in place", c.Name, t)
		}
	}
	c.Name, c.Description = str(news, "name"), str(news, "description")
	c.AssociableTypes = strs(news, "associableTypes")
	if err := s.tags.UpdateCategory(ctx, c); err != nil {
		return nil, fmt.Errorf("update tag category %s: %s", c.Name, err)
	}
	return copyProps(news), nil
}

func (categoryKind) delete(ctx context.Context, s *session, id string, _ Props) error {
	return s.tags.DeleteCategory(ctx, &tags.Category{ID: id})
}

// tagKind: vsphere:index/tag:Tag. ID: the tagging API's URN (urn:vmomi:InventoryServiceTag:…).
type tagKind struct{}

func (tagKind) inputs() fieldSpec {
	return fieldSpec{"name": nil, "description": nil, "categoryId": nil}
}
func (tagKind) required() []string  { return []string{"categoryId"} }
func (tagKind) updatable() []string { return []string{"name", "description"} }
func (tagKind) autoName() string    { return "name" }

func (tagKind) create(ctx context.Context, s *session, news Props) (string, Props, error) {
	id, err := s.tags.CreateTag(ctx, &tags.Tag{Name: str(news, "name"), Description: str(news, "description"), CategoryID: str(news, "categoryId")})
	if err != nil {
		return "", nil, fmt.Errorf("create tag %q: %s", str(news, "name"), err)
	}
	return id, copyProps(news), nil
}

func (tagKind) read(ctx context.Context, s *session, id string, _ Props) (Props, Props, error) {
	t, err := s.tags.GetTag(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	p := Props{"name": t.Name, "description": t.Description, "categoryId": t.CategoryID}
	return p, copyProps(p), nil
}

func (tagKind) update(ctx context.Context, s *session, id string, _, news Props) (Props, error) {
	t, err := s.tags.GetTag(ctx, id)
	if err != nil {
		return nil, err
	}
	t.Name, t.Description = str(news, "name"), str(news, "description")
	if err := s.tags.UpdateTag(ctx, t); err != nil {
		return nil, fmt.Errorf("update tag %s: %s", t.Name, err)
	}
	return copyProps(news), nil
}

func (tagKind) delete(ctx context.Context, s *session, id string, _ Props) error {
	return s.tags.DeleteTag(ctx, &tags.Tag{ID: id})
}

// attachedTags: the IDs of the tags attached to an object.
// readTags puts the object's attached tags into the inputs a Read returns: always when it has some, and as an empty
// list when the state had tags, so that tags removed by hand show as drift.
func readTags(ctx context.Context, s *session, r types.ManagedObjectReference, olds, ins Props) error {
	attached, err := attachedTags(ctx, s, r)
	if err != nil {
		return err
	}
	if len(attached) > 0 || olds["tags"] != nil {
		ins["tags"] = attached
	}
	return nil
}

func attachedTags(ctx context.Context, s *session, r types.ManagedObjectReference) ([]string, error) {
	ids, err := s.tags.ListAttachedTags(ctx, r)
	if err != nil {
		return nil, fmt.Errorf("tags of %s: %s", r.Value, err)
	}
	if ids == nil {
		ids = []string{}
	}
	return ids, nil
}

// setTags attaches what is in want and not in have, and detaches what is in have and not in want.
func setTags(ctx context.Context, s *session, r types.ManagedObjectReference, have, want []string) error {
	for _, t := range want {
		if !contains(have, t) {
			if err := s.tags.AttachTag(ctx, t, r); err != nil {
				return fmt.Errorf("attach tag %s to %s: %s", t, r.Value, err)
			}
		}
	}
	for _, t := range have {
		if !contains(want, t) {
			if err := s.tags.DetachTag(ctx, t, r); err != nil && !isNotFound(err) {
				return fmt.Errorf("detach tag %s from %s: %s", t, r.Value, err)
			}
		}
	}
	return nil
}

func contains(xs []string, x string) bool {
	for _, e := range xs {
		if e == x {
			return true
		}
	}
	return false
}
