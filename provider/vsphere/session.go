package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	gsession "github.com/vmware/govmomi/session"
	"github.com/vmware/govmomi/vapi/rest"
	"github.com/vmware/govmomi/vapi/tags"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// connConfig is the provider configuration, named as the real provider names it.
type connConfig struct {
	user, password, server string
	allowUnverifiedSsl     bool
}

// configFrom reads vsphere:user, vsphere:password, vsphere:vsphereServer and vsphere:allowUnverifiedSsl from the
// provider's arguments, then from the old-style variables ("vsphere:config:user"), then from VSPHERE_* variables.
func configFrom(args Props, variables map[string]string) (connConfig, error) {
	get := func(key, env string) string {
		if v, ok := args[key]; ok && v != nil {
			switch x := v.(type) {
			case string:
				return x
			case bool:
				return strconv.FormatBool(x)
			}
		}
		for _, k := range []string{"vsphere:config:" + key, "vsphere:" + key} {
			if v, ok := variables[k]; ok {
				return v
			}
		}
		return os.Getenv(env)
	}
	c := connConfig{
		user:     get("user", "VSPHERE_USER"),
		password: get("password", "VSPHERE_PASSWORD"),
		server:   get("vsphereServer", "VSPHERE_SERVER"),
	}
	if raw := get("allowUnverifiedSsl", "VSPHERE_ALLOW_UNVERIFIED_SSL"); raw != "" {
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return c, fmt.Errorf("allowUnverifiedSsl: %q is not a boolean", raw)
		}
		c.allowUnverifiedSsl = b
	}
	var missing []string
	for name, v := range map[string]string{"vsphere:user": c.user, "vsphere:password": c.password, "vsphere:vsphereServer": c.server} {
		if v == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return c, fmt.Errorf("missing provider configuration %s (or VSPHERE_USER, VSPHERE_PASSWORD, VSPHERE_SERVER)", strings.Join(sortStrings(missing), ", "))
	}
	return c, nil
}

// session is the one vSphere connection of this provider process: SOAP for the inventory, REST for tags.
type session struct {
	vim  *vim25.Client
	rest *rest.Client
	tags *tags.Manager
}

type sessionHolder struct {
	mu   sync.Mutex
	cfg  *connConfig
	sess *session
}

func (h *sessionHolder) configure(c connConfig) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cfg = &c
}

// get logs in on first use and keeps that session for every later call.
func (h *sessionHolder) get(ctx context.Context) (*session, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sess != nil {
		return h.sess, nil
	}
	if h.cfg == nil {
		return nil, fmt.Errorf("the vsphere provider is not configured")
	}
	u, err := serverURL(h.cfg.server)
	if err != nil {
		return nil, err
	}
	u.User = url.UserPassword(h.cfg.user, h.cfg.password)
	c, err := govmomi.NewClient(ctx, u, h.cfg.allowUnverifiedSsl)
	if err != nil {
		return nil, fmt.Errorf("cannot log in to %s as %s: %s", redact(u), h.cfg.user, err)
	}
	rc := rest.NewClient(c.Client)
	if err := rc.Login(ctx, url.UserPassword(h.cfg.user, h.cfg.password)); err != nil {
		return nil, fmt.Errorf("cannot log in to the REST API of %s: %s", redact(u), err)
	}
	h.sess = &session{vim: c.Client, rest: rc, tags: tags.NewManager(rc)}
	return h.sess, nil
}

func (h *sessionHolder) logout(ctx context.Context) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sess == nil {
		return
	}
	_ = h.sess.rest.Logout(ctx)
	_ = gsession.NewManager(h.sess.vim).Logout(ctx)
	h.sess = nil
}

// serverURL: the real provider takes a host name (vcenter.example.org); a full URL (https://host:port/sdk) also works.
func serverURL(server string) (*url.URL, error) {
	s := server
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("vsphereServer %q: %s", server, err)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/sdk"
	}
	return u, nil
}

func redact(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}

func (s *session) finder(dc *object.Datacenter) *find.Finder {
	f := find.NewFinder(s.vim, false)
	if dc != nil {
		f.SetDatacenter(dc)
	}
	return f
}

func ref(kind, id string) types.ManagedObjectReference {
	return types.ManagedObjectReference{Type: kind, Value: id}
}

// retrieve loads the given properties of one managed object into dst (an mo.* struct).
func (s *session) retrieve(ctx context.Context, r types.ManagedObjectReference, props []string, dst any) error {
	return property.DefaultCollector(s.vim).RetrieveOne(ctx, r, props, dst)
}

// datacenter: by id (moid) or name; with neither, the only datacenter there is.
func (s *session) datacenter(ctx context.Context, id, name string) (*object.Datacenter, error) {
	if id != "" {
		return object.NewDatacenter(s.vim, ref("Datacenter", id)), nil
	}
	f := s.finder(nil)
	if name != "" {
		return f.Datacenter(ctx, name)
	}
	return f.DefaultDatacenter(ctx)
}

// datacenterOf walks up from any inventory object to its datacenter.
func (s *session) datacenterOf(ctx context.Context, r types.ManagedObjectReference) (*object.Datacenter, error) {
	cur := r
	for i := 0; i < 64; i++ {
		if cur.Type == "Datacenter" {
			return object.NewDatacenter(s.vim, cur), nil
		}
		var me mo.ManagedEntity
		if err := s.retrieve(ctx, cur, []string{"parent"}, &me); err != nil {
			return nil, err
		}
		if me.Parent == nil {
			break
		}
		cur = *me.Parent
	}
	return nil, fmt.Errorf("%s %s is not inside a datacenter", r.Type, r.Value)
}

// inventoryPath: the object's full path, /DC/vm/a/b, built from the names of its ancestors.
func (s *session) inventoryPath(ctx context.Context, r types.ManagedObjectReference) (string, error) {
	var parts []string
	cur := r
	for i := 0; i < 64; i++ {
		var me mo.ManagedEntity
		if err := s.retrieve(ctx, cur, []string{"name", "parent"}, &me); err != nil {
			return "", err
		}
		if me.Parent == nil {
			break // the root folder has no name in a path
		}
		parts = append([]string{me.Name}, parts...)
		cur = *me.Parent
	}
	return "/" + strings.Join(parts, "/"), nil
}

func isNotFound(err error) bool {
	if err == nil {
		return false
	}
	var nf *find.NotFoundError
	if asErr(err, &nf) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "ManagedObjectNotFound") || strings.Contains(msg, "has already been deleted") ||
		strings.Contains(msg, "not found") || strings.Contains(msg, "404")
}
