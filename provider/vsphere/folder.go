package main

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// folderKind: vsphere:index/folder:Folder. ID: the folder's managed object ID (group-v123). path is relative to the
// datacenter's folder of that type (vm, host, datastore, network), or to the root folder for type "datacenter".
type folderKind struct{}

func (folderKind) inputs() fieldSpec {
	return fieldSpec{"path": nil, "type": nil, "datacenterId": nil, "tags": nil}
}
func (folderKind) required() []string  { return []string{"path", "type"} }
func (folderKind) updatable() []string { return []string{"path", "tags"} }
func (folderKind) autoName() string    { return "" }

func (folderKind) validate(news Props) [][2]string {
	switch str(news, "type") {
	case "vm", "host", "datastore", "network":
		if str(news, "datacenterId") == "" && !isUnknown(news["datacenterId"]) {
			return [][2]string{{"datacenterId", "a folder of type " + str(news, "type") + " needs datacenterId"}}
		}
	case "datacenter":
	default:
		if !isUnknown(news["type"]) {
			return [][2]string{{"type", fmt.Sprintf("type %q is not one of vm, host, datastore, network, datacenter", str(news, "type"))}}
		}
	}
	if p := str(news, "path"); strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") || p == "" {
		return [][2]string{{"path", fmt.Sprintf("path %q must be relative, like \"site/db\"", p)}}
	}
	return nil
}

// typeRoot is the folder under which a folder of that type lives.
func typeRoot(ctx context.Context, s *session, kind, dcID string) (*object.Folder, error) {
	if kind == "datacenter" {
		return object.NewRootFolder(s.vim), nil
	}
	dc := object.NewDatacenter(s.vim, ref("Datacenter", dcID))
	folders, err := dc.Folders(ctx)
	if err != nil {
		return nil, fmt.Errorf("datacenter %s: %s", dcID, err)
	}
	switch kind {
	case "vm":
		return folders.VmFolder, nil
	case "host":
		return folders.HostFolder, nil
	case "datastore":
		return folders.DatastoreFolder, nil
	case "network":
		return folders.NetworkFolder, nil
	}
	return nil, fmt.Errorf("unknown folder type %q", kind)
}

// folderAt finds the folder at a relative path under root ("" is root itself).
func folderAt(ctx context.Context, s *session, root *object.Folder, rel string) (*object.Folder, error) {
	if rel == "" || rel == "." {
		return root, nil
	}
	rootPath, err := s.inventoryPath(ctx, root.Reference())
	if err != nil {
		return nil, err
	}
	return s.finder(nil).Folder(ctx, strings.TrimSuffix(rootPath, "/")+"/"+rel)
}

// relativeFolder: the path of the folder parent below root ("" for root itself), as the folder inputs name it.
func relativeFolder(ctx context.Context, s *session, root *object.Folder, parent types.ManagedObjectReference) (string, error) {
	rootPath := root.InventoryPath
	if rootPath == "" {
		p, err := s.inventoryPath(ctx, root.Reference())
		if err != nil {
			return "", err
		}
		rootPath = p
	}
	parentPath, err := s.inventoryPath(ctx, parent)
	if err != nil {
		return "", err
	}
	return strings.TrimPrefix(strings.TrimPrefix(parentPath, rootPath), "/"), nil
}

func (folderKind) create(ctx context.Context, s *session, news Props) (string, Props, error) {
	root, err := typeRoot(ctx, s, str(news, "type"), str(news, "datacenterId"))
	if err != nil {
		return "", nil, err
	}
	rel := str(news, "path")
	parent, err := folderAt(ctx, s, root, path.Dir(rel))
	if err != nil {
		return "", nil, fmt.Errorf("parent folder of %q: %s", rel, err)
	}
	f, err := parent.CreateFolder(ctx, path.Base(rel))
	if err != nil {
		return "", nil, fmt.Errorf("create folder %q: %s", rel, err)
	}
	id := f.Reference().Value
	if err := setTags(ctx, s, f.Reference(), nil, strs(news, "tags")); err != nil {
		return id, copyProps(news), err
	}
	return id, copyProps(news), nil
}

func (folderKind) read(ctx context.Context, s *session, id string, olds Props) (Props, Props, error) {
	r := ref("Folder", id)
	var f mo.Folder
	if err := s.retrieve(ctx, r, []string{"name", "parent", "childType"}, &f); err != nil {
		return nil, nil, err
	}
	full, err := s.inventoryPath(ctx, r)
	if err != nil {
		return nil, nil, err
	}
	// /DC/vm/a/b → type vm, path a/b; /a → type datacenter.
	ins := Props{}
	dc, err := s.datacenterOf(ctx, r)
	if err != nil {
		ins["type"] = "datacenter"
		ins["path"] = strings.TrimPrefix(full, "/")
	} else {
		dcPath, err := s.inventoryPath(ctx, dc.Reference())
		if err != nil {
			return nil, nil, err
		}
		rest := strings.TrimPrefix(full, dcPath+"/")
		kind, rel, _ := strings.Cut(rest, "/")
		ins["type"] = kind
		ins["path"] = rel
		ins["datacenterId"] = dc.Reference().Value
	}
	if err := readTags(ctx, s, r, olds, ins); err != nil {
		return nil, nil, err
	}
	return copyProps(ins), ins, nil
}

func (k folderKind) update(ctx context.Context, s *session, id string, olds, news Props) (Props, error) {
	r := ref("Folder", id)
	f := object.NewFolder(s.vim, r)
	if o, n := str(olds, "path"), str(news, "path"); o != n {
		if path.Dir(o) != path.Dir(n) {
			root, err := typeRoot(ctx, s, str(news, "type"), str(news, "datacenterId"))
			if err != nil {
				return nil, err
			}
			parent, err := folderAt(ctx, s, root, path.Dir(n))
			if err != nil {
				return nil, fmt.Errorf("parent folder of %q: %s", n, err)
			}
			if err := waitFor(ctx)(parent.MoveInto(ctx, []types.ManagedObjectReference{r})); err != nil {
				return nil, fmt.Errorf("move folder to %q: %s", n, err)
			}
		}
		if path.Base(o) != path.Base(n) {
			if err := waitFor(ctx)(f.Rename(ctx, path.Base(n))); err != nil {
				return nil, fmt.Errorf("rename folder to %q: %s", n, err)
			}
		}
	}
	if err := setTags(ctx, s, r, strs(olds, "tags"), strs(news, "tags")); err != nil {
		return nil, err
	}
	return copyProps(news), nil
}

func (folderKind) delete(ctx context.Context, s *session, id string, olds Props) error {
	r := ref("Folder", id)
	_ = setTags(ctx, s, r, strs(olds, "tags"), nil)
	return waitFor(ctx)(object.NewFolder(s.vim, r).Destroy(ctx))
}

func copyProps(p Props) Props {
	out := make(Props, len(p))
	for k, v := range p {
		out[k] = v
	}
	return out
}

// waitFor(ctx)(call()) waits for the task that a call started, or returns the call's own error.
func waitFor(ctx context.Context) func(*object.Task, error) error {
	return func(t *object.Task, err error) error {
		if err != nil {
			return err
		}
		return t.Wait(ctx)
	}
}
