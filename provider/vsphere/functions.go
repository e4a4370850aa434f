package main

import (
	"context"
	"crypto/sha1"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

type function struct {
	inputs fieldSpec
	call   func(ctx context.Context, s *session, args Props) (Props, error)
}

var functions = map[string]function{
	"vsphere:index/getDatacenter:getDatacenter":                             {fieldSpec{"name": nil}, getDatacenter},
	"vsphere:index/getComputeCluster:getComputeCluster":                     {fieldSpec{"name": nil, "datacenterId": nil}, getComputeCluster},
	"vsphere:index/getDatastore:getDatastore":                               {fieldSpec{"name": nil, "datacenterId": nil}, getDatastore},
	"vsphere:index/getDistributedVirtualSwitch:getDistributedVirtualSwitch": {fieldSpec{"name": nil, "datacenterId": nil}, getDistributedVirtualSwitch},
	"vsphere:index/getNetwork:getNetwork":                                   {fieldSpec{"name": nil, "datacenterId": nil, "distributedVirtualSwitchUuid": nil}, getNetwork},
	"vsphere:index/getResourcePool:getResourcePool":                         {fieldSpec{"name": nil, "datacenterId": nil, "parentResourcePoolId": nil}, getResourcePool},
	"vsphere:index/getFolder:getFolder":                                     {fieldSpec{"path": nil}, getFolder},
	"vsphere:index/getVirtualMachine:getVirtualMachine":                     {fieldSpec{"name": nil, "uuid": nil, "moid": nil, "datacenterId": nil, "folder": nil}, getVirtualMachine},
	"vsphere:index/getDatastoreCluster:getDatastoreCluster":                 {fieldSpec{"name": nil, "datacenterId": nil}, getDatastoreCluster},
	"vsphere:index/getHostThumbprint:getHostThumbprint":                     {fieldSpec{"address": nil, "port": nil, "insecure": nil}, getHostThumbprint},
}

// withDatacenter: a finder scoped to args.datacenterId, or to the only datacenter when it is left out.
// namedIn is what the by-name look-ups take: the required "name" and the datacenter it is looked for in.
func namedIn(ctx context.Context, s *session, args Props) (string, *object.Datacenter, error) {
	name, err := need(args, "name")
	if err != nil {
		return "", nil, err
	}
	dc, err := withDatacenter(ctx, s, args)
	if err != nil {
		return "", nil, err
	}
	return name, dc, nil
}

func withDatacenter(ctx context.Context, s *session, args Props) (*object.Datacenter, error) {
	dc, err := s.datacenter(ctx, str(args, "datacenterId"), "")
	if err != nil {
		return nil, fmt.Errorf("datacenterId: %s", err)
	}
	return dc, nil
}

func need(args Props, key string) (string, error) {
	v := str(args, key)
	if v == "" {
		return "", fmt.Errorf("missing required input %q", key)
	}
	return v, nil
}

func getDatacenter(ctx context.Context, s *session, args Props) (Props, error) {
	dc, err := s.datacenter(ctx, "", str(args, "name"))
	if err != nil {
		return nil, err
	}
	var m mo.Datacenter
	if err := s.retrieve(ctx, dc.Reference(), []string{"name"}, &m); err != nil {
		return nil, err
	}
	vms, err := s.finder(dc).VirtualMachineList(ctx, "*")
	if err != nil && !isNotFound(err) {
		return nil, err
	}
	names := []string{}
	for _, vm := range vms {
		names = append(names, vm.Name())
	}
	// …recursively: the finder's "*" is one folder deep, so walk the whole VM tree too.
	if all, err := s.finder(dc).VirtualMachineList(ctx, "..."); err == nil {
		names = names[:0]
		for _, vm := range all {
			names = append(names, vm.Name())
		}
	}
	out := Props{"id": dc.Reference().Value, "name": m.Name, "virtualMachines": names}
	return out, nil
}

func getComputeCluster(ctx context.Context, s *session, args Props) (Props, error) {
	name, dc, err := namedIn(ctx, s, args)
	if err != nil {
		return nil, err
	}
	c, err := s.finder(dc).ClusterComputeResource(ctx, name)
	if err != nil {
		return nil, err
	}
	var m mo.ClusterComputeResource
	if err := s.retrieve(ctx, c.Reference(), []string{"resourcePool"}, &m); err != nil {
		return nil, err
	}
	out := Props{"id": c.Reference().Value, "name": name, "datacenterId": dc.Reference().Value}
	if m.ResourcePool != nil {
		out["resourcePoolId"] = m.ResourcePool.Value
	}
	return out, nil
}

func getDatastore(ctx context.Context, s *session, args Props) (Props, error) {
	name, dc, err := namedIn(ctx, s, args)
	if err != nil {
		return nil, err
	}
	ds, err := s.finder(dc).Datastore(ctx, name)
	if err != nil {
		return nil, err
	}
	return Props{"id": ds.Reference().Value, "name": name, "datacenterId": dc.Reference().Value}, nil
}

func getDatastoreCluster(ctx context.Context, s *session, args Props) (Props, error) {
	name, dc, err := namedIn(ctx, s, args)
	if err != nil {
		return nil, err
	}
	pod, err := s.finder(dc).DatastoreCluster(ctx, name)
	if err != nil {
		return nil, err
	}
	var p mo.StoragePod
	if err := s.retrieve(ctx, pod.Reference(), []string{"childEntity"}, &p); err != nil {
		return nil, err
	}
	names := []string{}
	for _, child := range p.ChildEntity {
		var ds mo.Datastore
		if child.Type == "Datastore" && s.retrieve(ctx, child, []string{"name"}, &ds) == nil {
			names = append(names, ds.Name)
		}
	}
	return Props{"id": pod.Reference().Value, "name": name, "datacenterId": dc.Reference().Value, "datastores": names}, nil
}

// getHostThumbprint: the SHA-1 thumbprint of the certificate that address:port presents, as AA:BB:…, the form vCenter
// takes when a host is added. The certificate is verified (name and chain) unless insecure is set.
func getHostThumbprint(ctx context.Context, _ *session, args Props) (Props, error) {
	address, err := need(args, "address")
	if err != nil {
		return nil, err
	}
	port := orDefault(str(args, "port"), "443")
	insecure := boolean(args, "insecure", false)
	dialer := tls.Dialer{NetDialer: &net.Dialer{Timeout: 30 * time.Second},
		Config: &tls.Config{ServerName: address, InsecureSkipVerify: insecure}} //nolint:gosec // the input says so
	conn, err := dialer.DialContext(ctx, "tcp", net.JoinHostPort(address, port))
	if err != nil {
		return nil, fmt.Errorf("%s: %s", net.JoinHostPort(address, port), err)
	}
	defer func() { _ = conn.Close() }()
	certs := conn.(*tls.Conn).ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return nil, fmt.Errorf("%s presented no certificate", net.JoinHostPort(address, port))
	}
	sum := sha1.Sum(certs[0].Raw) //nolint:gosec // a thumbprint, not a signature
	pairs := make([]string, len(sum))
	for i, b := range sum {
		pairs[i] = fmt.Sprintf("%02X", b)
	}
	return Props{"id": strings.Join(pairs, ":"), "address": address, "port": port, "insecure": insecure}, nil
}

func getDistributedVirtualSwitch(ctx context.Context, s *session, args Props) (Props, error) {
	name, dc, err := namedIn(ctx, s, args)
	if err != nil {
		return nil, err
	}
	n, err := s.finder(dc).Network(ctx, name)
	if err != nil {
		return nil, err
	}
	var d mo.DistributedVirtualSwitch
	if err := s.retrieve(ctx, n.Reference(), []string{"uuid", "config"}, &d); err != nil {
		return nil, fmt.Errorf("%s is not a distributed virtual switch: %s", name, err)
	}
	uplinks := []string{}
	if cfg, ok := d.Config.(*types.VMwareDVSConfigInfo); ok {
		if p, ok := cfg.UplinkPortPolicy.(*types.DVSNameArrayUplinkPortPolicy); ok {
			uplinks = p.UplinkPortName
		}
	}
	return Props{"id": d.Uuid, "name": name, "datacenterId": dc.Reference().Value, "uplinks": uplinks}, nil
}

func getNetwork(ctx context.Context, s *session, args Props) (Props, error) {
	name, dc, err := namedIn(ctx, s, args)
	if err != nil {
		return nil, err
	}
	out := Props{"name": name, "datacenterId": dc.Reference().Value}
	if uuid := str(args, "distributedVirtualSwitchUuid"); uuid != "" {
		dvs, err := switchByUUID(ctx, s, uuid)
		if err != nil {
			return nil, err
		}
		var d mo.DistributedVirtualSwitch
		if err := s.retrieve(ctx, dvs.Reference(), []string{"portgroup"}, &d); err != nil {
			return nil, err
		}
		for _, pg := range d.Portgroup {
			var p mo.DistributedVirtualPortgroup
			if err := s.retrieve(ctx, pg, []string{"name"}, &p); err == nil && p.Name == name {
				out["id"], out["type"], out["distributedVirtualSwitchUuid"] = pg.Value, pg.Type, uuid
				return out, nil
			}
		}
		return nil, fmt.Errorf("no port group %q on the distributed switch %s", name, uuid)
	}
	n, err := s.finder(dc).Network(ctx, name)
	if err != nil {
		return nil, err
	}
	out["id"], out["type"] = n.Reference().Value, n.Reference().Type
	return out, nil
}

func getResourcePool(ctx context.Context, s *session, args Props) (Props, error) {
	name := str(args, "name")
	if parent := str(args, "parentResourcePoolId"); parent != "" {
		var p mo.ResourcePool
		if err := s.retrieve(ctx, ref("ResourcePool", parent), []string{"resourcePool"}, &p); err != nil {
			return nil, fmt.Errorf("parentResourcePoolId %s: %s", parent, err)
		}
		for _, child := range p.ResourcePool {
			var c mo.ResourcePool
			if err := s.retrieve(ctx, child, []string{"name"}, &c); err == nil && c.Name == name {
				return Props{"id": child.Value, "name": name, "parentResourcePoolId": parent}, nil
			}
		}
		return nil, fmt.Errorf("no resource pool %q in %s", name, parent)
	}
	dc, err := withDatacenter(ctx, s, args)
	if err != nil {
		return nil, err
	}
	f := s.finder(dc)
	var pool *object.ResourcePool
	if name == "" {
		pool, err = f.DefaultResourcePool(ctx)
	} else {
		pool, err = f.ResourcePool(ctx, name)
	}
	if err != nil {
		return nil, err
	}
	return Props{"id": pool.Reference().Value, "name": name, "datacenterId": dc.Reference().Value}, nil
}

func getFolder(ctx context.Context, s *session, args Props) (Props, error) {
	p, err := need(args, "path")
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	f, err := s.finder(nil).Folder(ctx, p)
	if err != nil {
		return nil, err
	}
	return Props{"id": f.Reference().Value, "path": str(args, "path")}, nil
}

func getVirtualMachine(ctx context.Context, s *session, args Props) (Props, error) {
	var vm *object.VirtualMachine
	switch {
	case str(args, "uuid") != "":
		v, err := findVM(ctx, s, str(args, "uuid"))
		if err != nil {
			return nil, err
		}
		vm = v
	case str(args, "moid") != "":
		vm = object.NewVirtualMachine(s.vim, ref("VirtualMachine", str(args, "moid")))
	case str(args, "name") != "":
		dc, err := withDatacenter(ctx, s, args)
		if err != nil {
			return nil, err
		}
		name := str(args, "name")
		if f := str(args, "folder"); f != "" && !strings.Contains(name, "/") {
			name = strings.TrimSuffix(f, "/") + "/" + name
		}
		v, err := s.finder(dc).VirtualMachine(ctx, name)
		if err != nil {
			return nil, err
		}
		vm = v
	default:
		return nil, fmt.Errorf("one of name, uuid or moid is required")
	}
	var m mo.VirtualMachine
	if err := s.retrieve(ctx, vm.Reference(), []string{"config.uuid"}, &m); err != nil {
		return nil, err
	}
	if m.Config == nil {
		return nil, fmt.Errorf("virtual machine %s has no configuration", vm.Reference().Value)
	}
	outs, _, err := vmKind{}.read(ctx, s, m.Config.Uuid, Props{"imported": false})
	if err != nil {
		return nil, err
	}
	var full mo.VirtualMachine
	if err := s.retrieve(ctx, vm.Reference(), []string{"config"}, &full); err != nil {
		return nil, err
	}
	outs["id"] = m.Config.Uuid
	outs["instanceUuid"] = full.Config.InstanceUuid
	outs["firmware"] = full.Config.Firmware
	outs["hardwareVersion"] = hardwareVersion(full.Config.Version)
	var nicTypes []string
	for _, n := range list(Props{"n": normalize(outs["networkInterfaces"])}, "n") {
		nicTypes = append(nicTypes, str(n, "adapterType"))
	}
	if nicTypes == nil {
		nicTypes = []string{}
	}
	outs["networkInterfaceTypes"] = nicTypes
	outs["scsiType"] = scsiType(object.VirtualDeviceList(full.Config.Hardware.Device))
	for _, k := range []string{"imported", "rebootRequired", "resourcePoolId", "datastoreId", "powerState", "vmwareToolsStatus", "vmxPath"} {
		delete(outs, k)
	}
	if dc := str(args, "datacenterId"); dc != "" {
		outs["datacenterId"] = dc
	}
	return outs, nil
}

func hardwareVersion(v string) int64 {
	var n int64
	_, _ = fmt.Sscanf(v, "vmx-%d", &n)
	return n
}

func scsiType(devices object.VirtualDeviceList) string {
	for _, d := range devices {
		switch d.(type) {
		case *types.ParaVirtualSCSIController:
			return "pvscsi"
		case *types.VirtualLsiLogicSASController:
			return "lsilogic-sas"
		case *types.VirtualLsiLogicController:
			return "lsilogic"
		case *types.VirtualBusLogicController:
			return "buslogic"
		}
	}
	return ""
}
