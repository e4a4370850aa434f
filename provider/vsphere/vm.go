package main

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// vmKind: vsphere:index/virtualMachine:VirtualMachine. ID: the VM's BIOS UUID (config.uuid), as in the real provider.
type vmKind struct{}

func (vmKind) inputs() fieldSpec {
	return fieldSpec{
		"name": nil, "resourcePoolId": nil, "datastoreId": nil, "datacenterId": nil, "folder": nil,
		"numCpus": nil, "memory": nil, "guestId": nil, "annotation": nil, "tags": nil,
		"waitForGuestNetTimeout": nil, "waitForGuestIpTimeout": nil, "waitForGuestNetRoutable": nil,
		"cpuHotAddEnabled": nil, "memoryHotAddEnabled": nil, "numCoresPerSocket": nil, "enableDiskUuid": nil,
		"firmware": nil, "scsiType": nil, "hostSystemId": nil, "forcePowerOff": nil, "shutdownWaitTimeout": nil,
		"networkInterfaces": {"networkId": nil, "adapterType": nil, "useStaticMac": nil, "macAddress": nil},
		"disks": {"label": nil, "size": nil, "thinProvisioned": nil, "eagerlyScrub": nil, "unitNumber": nil,
			"datastoreId": nil, "keepOnRemove": nil, "controllerType": nil},
		"clone": {
			"templateUuid": nil, "timeout": nil, "linkedClone": nil,
			"customize": {
				"linuxOptions":      {"hostName": nil, "domain": nil, "timeZone": nil, "hwClockUtc": nil},
				"networkInterfaces": {"ipv4Address": nil, "ipv4Netmask": nil, "dnsServerLists": nil, "dnsDomain": nil},
				"ipv4Gateway":       nil, "dnsServerLists": nil, "dnsSuffixLists": nil, "timeout": nil,
			},
		},
	}
}
func (vmKind) required() []string { return []string{"resourcePoolId"} }
func (vmKind) updatable() []string {
	return []string{"name", "numCpus", "memory", "guestId", "annotation", "tags", "folder", "networkInterfaces", "disks",
		"waitForGuestNetTimeout", "waitForGuestIpTimeout", "waitForGuestNetRoutable", "cpuHotAddEnabled",
		"memoryHotAddEnabled", "numCoresPerSocket", "enableDiskUuid", "hostSystemId", "forcePowerOff", "shutdownWaitTimeout"}
}
func (vmKind) autoName() string { return "name" }

func (vmKind) validate(news Props) [][2]string {
	var out [][2]string
	clone := obj(news, "clone")
	if clone != nil {
		if _, ok := clone["templateUuid"]; !ok {
			out = append(out, [2]string{"clone.templateUuid", "missing required input \"clone.templateUuid\""})
		}
		if c := obj(clone, "customize"); c != nil {
			if lo := obj(c, "linuxOptions"); lo == nil {
				out = append(out, [2]string{"clone.customize.linuxOptions", "clone.customize needs linuxOptions (windowsOptions is not implemented)"})
			} else if str(lo, "hostName") == "" && !isUnknown(lo["hostName"]) {
				out = append(out, [2]string{"clone.customize.linuxOptions.hostName", "missing required input \"clone.customize.linuxOptions.hostName\""})
			}
			if nics, nis := list(c, "networkInterfaces"), list(news, "networkInterfaces"); len(nics) > len(nis) {
				out = append(out, [2]string{"clone.customize.networkInterfaces", fmt.Sprintf("clone.customize has %d networkInterfaces but the VM has %d", len(nics), len(nis))})
			}
		}
	}
	for i, d := range list(news, "disks") {
		if str(d, "label") == "" && !isUnknown(d["label"]) {
			out = append(out, [2]string{fmt.Sprintf("disks[%d].label", i), fmt.Sprintf("disks[%d] needs a label", i)})
		}
		if c := str(d, "controllerType"); c != "" && c != "scsi" {
			out = append(out, [2]string{fmt.Sprintf("disks[%d].controllerType", i), fmt.Sprintf("disks[%d].controllerType %q is not implemented by dcctl's vsphere plugin (only scsi)", i, c)})
		}
	}
	if f := str(news, "firmware"); f != "" && f != "bios" && f != "efi" {
		out = append(out, [2]string{"firmware", fmt.Sprintf("firmware %q is not bios or efi", f)})
	}
	if t := str(news, "scsiType"); t != "" && t != "pvscsi" && t != "lsilogic" && t != "lsilogic-sas" {
		out = append(out, [2]string{"scsiType", fmt.Sprintf("scsiType %q is not pvscsi, lsilogic or lsilogic-sas", t)})
	}
	for i, n := range list(news, "networkInterfaces") {
		if _, ok := n["networkId"]; !ok {
			out = append(out, [2]string{fmt.Sprintf("networkInterfaces[%d].networkId", i), fmt.Sprintf("networkInterfaces[%d] needs networkId", i)})
		}
	}
	return out
}

const gib = int64(1024 * 1024 * 1024)

// inputOnly: inputs that vSphere does not record, kept in the state as the program gave them.
var vmInputOnly = []string{"clone", "waitForGuestNetTimeout", "waitForGuestIpTimeout", "datacenterId"}

func findVM(ctx context.Context, s *session, uuid string) (*object.VirtualMachine, error) {
	r, err := object.NewSearchIndex(s.vim).FindByUuid(ctx, nil, uuid, true, nil)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, fmt.Errorf("virtual machine with UUID %s not found", uuid)
	}
	return object.NewVirtualMachine(s.vim, r.Reference()), nil
}

func (k vmKind) create(ctx context.Context, s *session, news Props) (string, Props, error) {
	poolRef := ref("ResourcePool", str(news, "resourcePoolId"))
	var dc *object.Datacenter
	var err error
	if id := str(news, "datacenterId"); id != "" {
		dc = object.NewDatacenter(s.vim, ref("Datacenter", id))
	} else if dc, err = s.datacenterOf(ctx, poolRef); err != nil {
		return "", nil, fmt.Errorf("resource pool %s: %s", poolRef.Value, err)
	}
	folders, err := dc.Folders(ctx)
	if err != nil {
		return "", nil, err
	}
	folder, err := folderAt(ctx, s, folders.VmFolder, str(news, "folder"))
	if err != nil {
		return "", nil, fmt.Errorf("folder %q: %s", str(news, "folder"), err)
	}
	var dsRef *types.ManagedObjectReference
	if id := str(news, "datastoreId"); id != "" {
		r := ref("Datastore", id)
		dsRef = &r
	}
	name := str(news, "name")

	var vm *object.VirtualMachine
	if clone := obj(news, "clone"); clone != nil {
		tplRef, err := object.NewSearchIndex(s.vim).FindByUuid(ctx, dc, str(clone, "templateUuid"), true, nil)
		if err != nil || tplRef == nil {
			return "", nil, fmt.Errorf("clone.templateUuid: no virtual machine or template with UUID %s", str(clone, "templateUuid"))
		}
		tpl := object.NewVirtualMachine(s.vim, tplRef.Reference())
		spec := types.VirtualMachineCloneSpec{
			Location: types.VirtualMachineRelocateSpec{Pool: &poolRef, Datastore: dsRef, Host: hostRef(news)},
			Config:   &types.VirtualMachineConfigSpec{NumCPUs: int32(num(news, "numCpus", 1)), MemoryMB: num(news, "memory", 1024)},
		}
		if boolean(clone, "linkedClone", false) {
			var t mo.VirtualMachine
			if err := s.retrieve(ctx, tpl.Reference(), []string{"snapshot"}, &t); err != nil || t.Snapshot == nil || t.Snapshot.CurrentSnapshot == nil {
				return "", nil, fmt.Errorf("clone.linkedClone: template %s has no snapshot to link to", str(clone, "templateUuid"))
			}
			spec.Snapshot = t.Snapshot.CurrentSnapshot
			spec.Location.DiskMoveType = string(types.VirtualMachineRelocateDiskMoveOptionsCreateNewChildDiskBacking)
		}
		tctx, cancel := context.WithTimeout(ctx, time.Duration(num(clone, "timeout", 30))*time.Minute)
		task, err := tpl.Clone(tctx, folder, name, spec)
		if err != nil {
			cancel()
			return "", nil, fmt.Errorf("clone %s: %s", name, err)
		}
		info, err := task.WaitForResult(tctx, nil)
		cancel()
		if err != nil {
			return "", nil, fmt.Errorf("clone %s: %s", name, err)
		}
		vm = object.NewVirtualMachine(s.vim, info.Result.(types.ManagedObjectReference))
	} else {
		if dsRef == nil {
			return "", nil, fmt.Errorf("a virtual machine that is not cloned needs datastoreId")
		}
		var ds mo.Datastore
		if err := s.retrieve(ctx, *dsRef, []string{"name"}, &ds); err != nil {
			return "", nil, fmt.Errorf("datastoreId %s: %s", dsRef.Value, err)
		}
		spec := types.VirtualMachineConfigSpec{
			Name: name, GuestId: orDefault(str(news, "guestId"), "otherGuest64"),
			NumCPUs: int32(num(news, "numCpus", 1)), MemoryMB: num(news, "memory", 1024),
			Files:    &types.VirtualMachineFileInfo{VmPathName: fmt.Sprintf("[%s]", ds.Name)},
			Firmware: str(news, "firmware"),
		}
		var host *object.HostSystem
		if h := hostRef(news); h != nil {
			host = object.NewHostSystem(s.vim, *h)
		}
		info, err := waitResult(ctx)(folder.CreateVM(ctx, spec, object.NewResourcePool(s.vim, poolRef), host))
		if err != nil {
			return "", nil, fmt.Errorf("create virtual machine %s: %s", name, err)
		}
		vm = object.NewVirtualMachine(s.vim, info.Result.(types.ManagedObjectReference))
	}

	var mvm mo.VirtualMachine
	if err := s.retrieve(ctx, vm.Reference(), []string{"config.uuid"}, &mvm); err != nil {
		return "", nil, err
	}
	id := mvm.Config.Uuid
	fail := func(err error) (string, Props, error) {
		outs, _, rerr := k.read(ctx, s, id, news)
		if rerr != nil {
			outs = copyProps(news)
		}
		return id, outs, err
	}
	if err := reconfigure(ctx, s, vm, nil, news, dsRef); err != nil {
		return fail(err)
	}
	if clone := obj(news, "clone"); clone != nil {
		if c := obj(clone, "customize"); c != nil {
			var dev mo.VirtualMachine
			if err := s.retrieve(ctx, vm.Reference(), []string{"config.hardware.device"}, &dev); err != nil {
				return fail(err)
			}
			nics := 0
			if dev.Config != nil {
				nics = len(nicsOf(object.VirtualDeviceList(dev.Config.Hardware.Device)))
			}
			if err := waitFor(ctx)(vm.Customize(ctx, customizationSpec(c, nics))); err != nil {
				return fail(fmt.Errorf("customize %s: %s", name, err))
			}
		}
	}
	if err := setTags(ctx, s, vm.Reference(), nil, strs(news, "tags")); err != nil {
		return fail(err)
	}
	if err := waitFor(ctx)(vm.PowerOn(ctx)); err != nil {
		return fail(fmt.Errorf("power on %s: %s", name, err))
	}
	if err := waitGuest(ctx, s, vm, news); err != nil {
		return fail(err)
	}
	outs, _, err := k.read(ctx, s, id, news)
	return id, outs, err
}

func hostRef(news Props) *types.ManagedObjectReference {
	if h := str(news, "hostSystemId"); h != "" {
		r := ref("HostSystem", h)
		return &r
	}
	return nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func waitResult(ctx context.Context) func(*object.Task, error) (*types.TaskInfo, error) {
	return func(t *object.Task, err error) (*types.TaskInfo, error) {
		if err != nil {
			return nil, err
		}
		return t.WaitForResult(ctx, nil)
	}
}

// waitGuest waits, as the real provider does, for the guest to report an address: waitForGuestNetTimeout minutes
// (default 5) for any routable address, waitForGuestIpTimeout minutes (default 0: not at all) for an IPv4 one.
func waitGuest(ctx context.Context, s *session, vm *object.VirtualMachine, news Props) error {
	minutes := num(news, "waitForGuestNetTimeout", 5)
	if ip := num(news, "waitForGuestIpTimeout", 0); ip > 0 {
		minutes = ip
	}
	if minutes <= 0 {
		return nil
	}
	deadline := time.Now().Add(time.Duration(minutes) * time.Minute)
	for {
		var m mo.VirtualMachine
		if err := s.retrieve(ctx, vm.Reference(), []string{"guest.ipAddress", "guest.net"}, &m); err != nil {
			return err
		}
		if m.Guest != nil && hasUsableAddress(m.Guest, news) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timeout waiting for an available IP address after %d minutes (waitForGuestNetTimeout)", minutes)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// hasUsableAddress: a guest address that is neither loopback nor link-local and, with waitForGuestNetRoutable
// (default true) and a customised gateway, on a network that holds that gateway.
func hasUsableAddress(g *types.GuestInfo, news Props) bool {
	gateway := net.ParseIP(str(obj(obj(news, "clone"), "customize"), "ipv4Gateway"))
	routable := boolean(news, "waitForGuestNetRoutable", true) && gateway != nil
	for _, n := range g.Net {
		var prefixes []types.NetIpConfigInfoIpAddress
		if n.IpConfig != nil {
			prefixes = n.IpConfig.IpAddress
		}
		for _, a := range n.IpAddress {
			ip := net.ParseIP(a)
			if ip == nil || ip.IsLinkLocalUnicast() || ip.IsLoopback() {
				continue
			}
			if !routable {
				return true
			}
			for _, p := range prefixes {
				if p.IpAddress == a {
					_, subnet, err := net.ParseCIDR(fmt.Sprintf("%s/%d", a, p.PrefixLength))
					if err == nil && subnet.Contains(gateway) {
						return true
					}
				}
			}
		}
	}
	if ip := net.ParseIP(g.IpAddress); ip != nil && !ip.IsLoopback() && !ip.IsLinkLocalUnicast() && len(g.Net) == 0 {
		return true
	}
	return false
}

func guestAddresses(g *types.GuestInfo) []string {
	var out []string
	for _, n := range g.Net {
		out = append(out, n.IpAddress...)
	}
	if len(out) == 0 && g.IpAddress != "" {
		out = append(out, g.IpAddress)
	}
	return out
}

func netmask(bits int64) string {
	return net.IP(net.CIDRMask(int(bits), 32)).String()
}

// customizationSpec: a Linux guest customisation with one adapter mapping per NIC of the machine (vSphere wants
// exactly that many): those of customize.networkInterfaces in order, then, as the real provider does, DHCP for the rest.
func customizationSpec(c Props, nics int) types.CustomizationSpec {
	lo := obj(c, "linuxOptions")
	spec := types.CustomizationSpec{
		Identity: &types.CustomizationLinuxPrep{
			HostName:   &types.CustomizationFixedName{Name: str(lo, "hostName")},
			Domain:     str(lo, "domain"),
			TimeZone:   str(lo, "timeZone"),
			HwClockUTC: types.NewBool(boolean(lo, "hwClockUtc", true)),
		},
		GlobalIPSettings: types.CustomizationGlobalIPSettings{DnsSuffixList: strs(c, "dnsSuffixLists"), DnsServerList: strs(c, "dnsServerLists")},
	}
	gateway := str(c, "ipv4Gateway")
	for _, n := range list(c, "networkInterfaces") {
		ipSet := types.CustomizationIPSettings{DnsServerList: strs(n, "dnsServerLists"), DnsDomain: str(n, "dnsDomain")}
		if addr := str(n, "ipv4Address"); addr != "" {
			ipSet.Ip = &types.CustomizationFixedIp{IpAddress: addr}
			ipSet.SubnetMask = netmask(num(n, "ipv4Netmask", 24))
			// The gateway goes to the interface whose subnet holds it, as in the real provider.
			_, subnet, err := net.ParseCIDR(fmt.Sprintf("%s/%d", addr, num(n, "ipv4Netmask", 24)))
			if gateway != "" && err == nil && subnet.Contains(net.ParseIP(gateway)) {
				ipSet.Gateway = []string{gateway}
			}
		} else {
			ipSet.Ip = &types.CustomizationDhcpIpGenerator{}
		}
		spec.NicSettingMap = append(spec.NicSettingMap, types.CustomizationAdapterMapping{Adapter: ipSet})
	}
	for len(spec.NicSettingMap) < nics {
		spec.NicSettingMap = append(spec.NicSettingMap, types.CustomizationAdapterMapping{Adapter: types.CustomizationIPSettings{Ip: &types.CustomizationDhcpIpGenerator{}}})
	}
	return spec
}

// networkBacking: what a NIC on the network with that managed object ID (network-…, dvportgroup-…) is backed by.
func networkBacking(ctx context.Context, s *session, id string) (types.BaseVirtualDeviceBackingInfo, error) {
	kind := "Network"
	switch {
	case strings.HasPrefix(id, "dvportgroup-"):
		kind = "DistributedVirtualPortgroup"
	case strings.HasPrefix(id, "dvs-"):
		return nil, fmt.Errorf("networkId %s is a distributed switch, not a port group", id)
	}
	n, ok := object.NewReference(s.vim, ref(kind, id)).(object.NetworkReference)
	if !ok {
		return nil, fmt.Errorf("networkId %s is not a network", id)
	}
	b, err := n.EthernetCardBackingInfo(ctx)
	if err != nil {
		return nil, fmt.Errorf("networkId %s: %s", id, err)
	}
	return b, nil
}

func sortedDisks(devices object.VirtualDeviceList) []*types.VirtualDisk {
	var disks []*types.VirtualDisk
	for _, d := range devices.SelectByType((*types.VirtualDisk)(nil)) {
		disks = append(disks, d.(*types.VirtualDisk))
	}
	sort.SliceStable(disks, func(i, j int) bool {
		ci, cj := disks[i].ControllerKey, disks[j].ControllerKey
		if ci != cj {
			return ci < cj
		}
		return unit(disks[i].UnitNumber) < unit(disks[j].UnitNumber)
	})
	return disks
}

func unit(u *int32) int32 {
	if u == nil {
		return -1
	}
	return *u
}

func nicsOf(devices object.VirtualDeviceList) []types.BaseVirtualEthernetCard {
	var out []types.BaseVirtualEthernetCard
	for _, d := range devices.SelectByType((*types.VirtualEthernetCard)(nil)) {
		out = append(out, d.(types.BaseVirtualEthernetCard))
	}
	return out
}

// reconfigure brings the VM's CPU, memory, guest, annotation, NICs and disks to what news says (olds: what the
// state said before, nil on create). Hardware that the program leaves out stays as it is.
func reconfigure(ctx context.Context, s *session, vm *object.VirtualMachine, olds, news Props, dsRef *types.ManagedObjectReference) error {
	var m mo.VirtualMachine
	if err := s.retrieve(ctx, vm.Reference(), []string{"config", "runtime.powerState", "datastore"}, &m); err != nil {
		return err
	}
	spec := types.VirtualMachineConfigSpec{}
	changed := false
	if v, ok := news["numCpus"].(float64); ok && int32(v) != m.Config.Hardware.NumCPU {
		spec.NumCPUs, changed = int32(v), true
	}
	if v, ok := news["memory"].(float64); ok && int32(v) != m.Config.Hardware.MemoryMB {
		spec.MemoryMB, changed = int64(v), true
	}
	if v := str(news, "guestId"); v != "" && v != m.Config.GuestId {
		spec.GuestId, changed = v, true
	}
	if _, set := news["annotation"]; set || (olds != nil && str(olds, "annotation") != "") {
		if a := str(news, "annotation"); a != annotationOf(m.Config) {
			spec.Annotation, changed = a, true
			if a == "" {
				spec.Annotation = " " // an empty string leaves vSphere's annotation as it was
			}
		}
	}
	if v, ok := news["cpuHotAddEnabled"].(bool); ok && (m.Config.CpuHotAddEnabled == nil || *m.Config.CpuHotAddEnabled != v) {
		spec.CpuHotAddEnabled, changed = types.NewBool(v), true
	}
	if v, ok := news["memoryHotAddEnabled"].(bool); ok && (m.Config.MemoryHotAddEnabled == nil || *m.Config.MemoryHotAddEnabled != v) {
		spec.MemoryHotAddEnabled, changed = types.NewBool(v), true
	}
	if v, ok := news["numCoresPerSocket"].(float64); ok && int32(v) != m.Config.Hardware.NumCoresPerSocket {
		spec.NumCoresPerSocket, changed = int32(v), true
	}
	if v := str(news, "firmware"); v != "" && v != m.Config.Firmware {
		spec.Firmware, changed = v, true
	}
	if v, ok := news["enableDiskUuid"].(bool); ok && diskUUIDEnabled(m.Config) != v {
		spec.ExtraConfig = append(spec.ExtraConfig, &types.OptionValue{Key: "disk.EnableUUID", Value: strings.ToUpper(fmt.Sprint(v))})
		changed = true
	}
	devices := object.VirtualDeviceList(m.Config.Hardware.Device)
	if _, set := news["networkInterfaces"]; set {
		nics := nicsOf(devices)
		want := list(news, "networkInterfaces")
		for i, n := range want {
			backing, err := networkBacking(ctx, s, str(n, "networkId"))
			if err != nil {
				return fmt.Errorf("networkInterfaces[%d]: %s", i, err)
			}
			if i < len(nics) {
				card := nics[i].GetVirtualEthernetCard()
				wantMac := boolean(n, "useStaticMac", false) && !strings.EqualFold(card.MacAddress, str(n, "macAddress"))
				if networkIDOf(card) == str(n, "networkId") && !wantMac {
					continue
				}
				card.Backing = backing
				if wantMac {
					card.AddressType, card.MacAddress = string(types.VirtualEthernetCardMacTypeManual), str(n, "macAddress")
				}
				spec.DeviceChange = append(spec.DeviceChange, &types.VirtualDeviceConfigSpec{Operation: types.VirtualDeviceConfigSpecOperationEdit, Device: nics[i].(types.BaseVirtualDevice)})
			} else {
				card, err := devices.CreateEthernetCard(orDefault(str(n, "adapterType"), "vmxnet3"), backing)
				if err != nil {
					return fmt.Errorf("networkInterfaces[%d]: %s", i, err)
				}
				card.GetVirtualDevice().Key = int32(-200 - i)
				if boolean(n, "useStaticMac", false) {
					c := card.(types.BaseVirtualEthernetCard).GetVirtualEthernetCard()
					c.AddressType, c.MacAddress = string(types.VirtualEthernetCardMacTypeManual), str(n, "macAddress")
				}
				spec.DeviceChange = append(spec.DeviceChange, &types.VirtualDeviceConfigSpec{Operation: types.VirtualDeviceConfigSpecOperationAdd, Device: card})
			}
			changed = true
		}
		for i := len(want); i < len(nics); i++ {
			spec.DeviceChange = append(spec.DeviceChange, &types.VirtualDeviceConfigSpec{Operation: types.VirtualDeviceConfigSpecOperationRemove, Device: nics[i].(types.BaseVirtualDevice)})
			changed = true
		}
	}
	if _, set := news["disks"]; set {
		have := sortedDisks(devices)
		want := list(news, "disks")
		var controller types.BaseVirtualController
		for i, d := range want {
			sizeKB := num(d, "size", 16) * gib / 1024
			if i < len(have) {
				cur := have[i]
				if sizeKB < cur.CapacityInKB {
					return fmt.Errorf("disks[%d] (%s): size %d GB is smaller than the disk's %d GB; vSphere cannot shrink a disk", i, str(d, "label"), num(d, "size", 0), cur.CapacityInKB*1024/gib)
				}
				if sizeKB > cur.CapacityInKB {
					cur.CapacityInKB, cur.CapacityInBytes = sizeKB, sizeKB*1024
					spec.DeviceChange = append(spec.DeviceChange, &types.VirtualDeviceConfigSpec{Operation: types.VirtualDeviceConfigSpecOperationEdit, Device: cur})
					changed = true
				}
				continue
			}
			if controller == nil {
				if c, err := devices.FindSCSIController(""); err == nil {
					controller = c
				} else {
					dev, err := devices.CreateSCSIController(orDefault(str(news, "scsiType"), "pvscsi"))
					if err != nil {
						return err
					}
					dev.GetVirtualDevice().Key = -100
					devices = append(devices, dev)
					controller = dev.(types.BaseVirtualController)
					spec.DeviceChange = append(spec.DeviceChange, &types.VirtualDeviceConfigSpec{Operation: types.VirtualDeviceConfigSpecOperationAdd, Device: dev})
				}
			}
			ds := dsRef
			if id := str(d, "datastoreId"); id != "" {
				r := ref("Datastore", id)
				ds = &r
			}
			if ds == nil && len(m.Datastore) > 0 {
				ds = &m.Datastore[0]
			}
			if ds == nil {
				return fmt.Errorf("disks[%d]: no datastore for a new disk (set datastoreId)", i)
			}
			disk := devices.CreateDisk(controller, *ds, "")
			disk.Key = int32(-300 - i)
			disk.CapacityInKB, disk.CapacityInBytes = sizeKB, sizeKB*1024
			backing := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
			backing.ThinProvisioned = types.NewBool(boolean(d, "thinProvisioned", true))
			if boolean(d, "eagerlyScrub", false) {
				backing.EagerlyScrub, backing.ThinProvisioned = types.NewBool(true), types.NewBool(false)
			}
			if u, ok := d["unitNumber"].(float64); ok {
				n := int32(u)
				disk.UnitNumber = &n
			}
			devices = append(devices, disk)
			spec.DeviceChange = append(spec.DeviceChange, &types.VirtualDeviceConfigSpec{Operation: types.VirtualDeviceConfigSpecOperationAdd, Device: disk, FileOperation: types.VirtualDeviceConfigSpecFileOperationCreate})
			changed = true
		}
		oldDisks := list(olds, "disks")
		for i := len(want); i < len(have); i++ {
			op := types.VirtualDeviceConfigSpecFileOperationDestroy
			if i < len(oldDisks) && boolean(oldDisks[i], "keepOnRemove", false) {
				op = "" // detach only: the file stays on the datastore
			}
			spec.DeviceChange = append(spec.DeviceChange, &types.VirtualDeviceConfigSpec{Operation: types.VirtualDeviceConfigSpecOperationRemove, Device: have[i], FileOperation: op})
			changed = true
		}
	}
	if !changed {
		return nil
	}
	err := waitFor(ctx)(vm.Reconfigure(ctx, spec))
	if err != nil && m.Runtime.PowerState == types.VirtualMachinePowerStatePoweredOn && strings.Contains(err.Error(), "PowerState") {
		// No hot-add: as the real provider does, shut down, change, power on again.
		if perr := shutdown(ctx, s, vm, news); perr != nil {
			return fmt.Errorf("reconfigure: %s; power off: %s", err, perr)
		}
		if err = waitFor(ctx)(vm.Reconfigure(ctx, spec)); err == nil {
			err = waitFor(ctx)(vm.PowerOn(ctx))
		}
	}
	if err != nil {
		return fmt.Errorf("reconfigure: %s", err)
	}
	return nil
}

// annotationOf: vSphere cannot store an empty annotation over a set one, so clearing writes a single space.
func annotationOf(c *types.VirtualMachineConfigInfo) string {
	if c.Annotation == " " {
		return ""
	}
	return c.Annotation
}

func diskUUIDEnabled(c *types.VirtualMachineConfigInfo) bool {
	for _, o := range c.ExtraConfig {
		if ov := o.GetOptionValue(); ov.Key == "disk.EnableUUID" {
			return strings.EqualFold(fmt.Sprint(ov.Value), "true")
		}
	}
	return false
}

// shutdown stops a powered-on VM as the real provider does: a clean guest shutdown when VMware Tools run, waiting up
// to shutdownWaitTimeout minutes (default 3), then a hard power-off unless forcePowerOff is false.
func shutdown(ctx context.Context, s *session, vm *object.VirtualMachine, p Props) error {
	var m mo.VirtualMachine
	if err := s.retrieve(ctx, vm.Reference(), []string{"runtime.powerState", "guest.toolsRunningStatus"}, &m); err != nil {
		return err
	}
	if m.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOn {
		return nil
	}
	if m.Guest != nil && m.Guest.ToolsRunningStatus == string(types.VirtualMachineToolsRunningStatusGuestToolsRunning) {
		if err := vm.ShutdownGuest(ctx); err == nil {
			wctx, cancel := context.WithTimeout(ctx, time.Duration(num(p, "shutdownWaitTimeout", 3))*time.Minute)
			err = vm.WaitForPowerState(wctx, types.VirtualMachinePowerStatePoweredOff)
			cancel()
			if err == nil {
				return nil
			}
		}
		if !boolean(p, "forcePowerOff", true) {
			return fmt.Errorf("the guest did not shut down within %d minutes and forcePowerOff is false", num(p, "shutdownWaitTimeout", 3))
		}
	}
	return waitFor(ctx)(vm.PowerOff(ctx))
}

// networkIDOf: the managed object ID of the network a NIC is on.
func networkIDOf(card *types.VirtualEthernetCard) string {
	switch b := card.Backing.(type) {
	case *types.VirtualEthernetCardNetworkBackingInfo:
		if b.Network != nil {
			return b.Network.Value
		}
	case *types.VirtualEthernetCardDistributedVirtualPortBackingInfo:
		return b.Port.PortgroupKey
	}
	return ""
}

func adapterTypeOf(card types.BaseVirtualEthernetCard) string {
	switch card.(type) {
	case *types.VirtualVmxnet3:
		return "vmxnet3"
	case *types.VirtualE1000:
		return "e1000"
	case *types.VirtualE1000e:
		return "e1000e"
	case *types.VirtualVmxnet3Vrdma:
		return "vmxnet3vrdma"
	case *types.VirtualPCNet32:
		return "pcnet32"
	case *types.VirtualSriovEthernetCard:
		return "sriov"
	}
	return "unknown"
}

func (vmKind) read(ctx context.Context, s *session, id string, olds Props) (Props, Props, error) {
	vm, err := findVM(ctx, s, id)
	if err != nil {
		return nil, nil, err
	}
	var m mo.VirtualMachine
	if err := s.retrieve(ctx, vm.Reference(), []string{"name", "config", "runtime.powerState", "runtime.host", "resourcePool", "datastore", "guest", "parent"}, &m); err != nil {
		return nil, nil, err
	}
	if m.Config == nil {
		return nil, nil, fmt.Errorf("virtual machine %s has no configuration yet", id)
	}
	ins := Props{
		"name": m.Name, "numCpus": m.Config.Hardware.NumCPU, "memory": m.Config.Hardware.MemoryMB,
		"guestId": m.Config.GuestId, "annotation": annotationOf(m.Config),
		"numCoresPerSocket": m.Config.Hardware.NumCoresPerSocket, "firmware": m.Config.Firmware,
		"cpuHotAddEnabled":    m.Config.CpuHotAddEnabled != nil && *m.Config.CpuHotAddEnabled,
		"memoryHotAddEnabled": m.Config.MemoryHotAddEnabled != nil && *m.Config.MemoryHotAddEnabled,
		"enableDiskUuid":      diskUUIDEnabled(m.Config),
		"scsiType":            scsiType(object.VirtualDeviceList(m.Config.Hardware.Device)),
	}
	if m.Runtime.Host != nil {
		ins["hostSystemId"] = m.Runtime.Host.Value
	}
	if m.ResourcePool != nil {
		ins["resourcePoolId"] = m.ResourcePool.Value
	}
	if len(m.Datastore) > 0 {
		ins["datastoreId"] = m.Datastore[0].Value
	}
	if m.Parent != nil {
		if dc, err := s.datacenterOf(ctx, vm.Reference()); err == nil {
			if folders, err := dc.Folders(ctx); err == nil {
				if rel, err := relativeFolder(ctx, s, folders.VmFolder, *m.Parent); err == nil {
					ins["folder"] = rel
				}
			}
		}
	}
	devices := object.VirtualDeviceList(m.Config.Hardware.Device)
	var nicIns, nicOuts []Props
	for _, c := range nicsOf(devices) {
		card := c.GetVirtualEthernetCard()
		nicIns = append(nicIns, Props{"networkId": networkIDOf(card), "adapterType": adapterTypeOf(c)})
		nicOuts = append(nicOuts, Props{"networkId": networkIDOf(card), "adapterType": adapterTypeOf(c), "macAddress": card.MacAddress, "key": card.Key,
			"useStaticMac": card.AddressType == string(types.VirtualEthernetCardMacTypeManual)})
	}
	oldDisks := list(olds, "disks")
	var diskIns, diskOuts []Props
	for i, d := range sortedDisks(devices) {
		label := fmt.Sprintf("disk%d", i)
		if i < len(oldDisks) && str(oldDisks[i], "label") != "" {
			label = str(oldDisks[i], "label")
		}
		thin, eager := false, false
		var file, uuid, ds string
		if b, ok := d.Backing.(*types.VirtualDiskFlatVer2BackingInfo); ok {
			thin = b.ThinProvisioned != nil && *b.ThinProvisioned
			eager = b.EagerlyScrub != nil && *b.EagerlyScrub
			file, uuid = b.FileName, b.Uuid
			if b.Datastore != nil {
				ds = b.Datastore.Value
			}
		}
		size := (d.CapacityInKB*1024 + gib - 1) / gib
		keep := i < len(oldDisks) && boolean(oldDisks[i], "keepOnRemove", false)
		diskIns = append(diskIns, Props{"label": label, "size": size, "thinProvisioned": thin})
		diskOuts = append(diskOuts, Props{"label": label, "size": size, "thinProvisioned": thin, "eagerlyScrub": eager, "key": d.Key,
			"unitNumber": unit(d.UnitNumber), "path": file, "uuid": uuid, "datastoreId": ds, "keepOnRemove": keep, "controllerType": "scsi"})
	}
	ins["networkInterfaces"] = orEmpty(nicIns)
	ins["disks"] = orEmpty(diskIns)
	attached, err := attachedTags(ctx, s, vm.Reference())
	if err != nil {
		return nil, nil, err
	}
	ins["tags"] = attached

	outs := copyProps(ins)
	for _, k := range []string{"forcePowerOff", "shutdownWaitTimeout", "waitForGuestNetRoutable"} {
		if v, ok := olds[k]; ok {
			outs[k] = v
		}
	}
	outs["networkInterfaces"] = orEmpty(nicOuts)
	outs["disks"] = orEmpty(diskOuts)
	outs["uuid"] = m.Config.Uuid
	outs["moid"] = vm.Reference().Value
	outs["changeVersion"] = m.Config.ChangeVersion
	outs["vmxPath"] = vmxPath(m.Config.Files.VmPathName)
	outs["powerState"] = powerState(m.Runtime.PowerState)
	outs["rebootRequired"] = false
	outs["imported"] = boolean(olds, "imported", str(olds, "uuid") == "" && len(olds) == 0)
	var addrs []string
	if m.Guest != nil {
		addrs = guestAddresses(m.Guest)
		outs["defaultIpAddress"] = m.Guest.IpAddress
		outs["vmwareToolsStatus"] = string(m.Guest.ToolsRunningStatus)
	}
	if addrs == nil {
		addrs = []string{}
	}
	outs["guestIpAddresses"] = addrs
	for _, k := range vmInputOnly {
		if v, ok := olds[k]; ok {
			outs[k] = v
			ins[k] = v
		}
	}
	return outs, ins, nil
}

func orEmpty(xs []Props) []Props {
	if xs == nil {
		return []Props{}
	}
	return xs
}

// vmxPath: "[ds1] vm-1/vm-1.vmx" → "vm-1/vm-1.vmx", the path within the datastore as the real provider reports it.
func vmxPath(p string) string {
	if _, after, ok := strings.Cut(p, "]"); ok {
		return strings.TrimSpace(after)
	}
	return p
}

func powerState(p types.VirtualMachinePowerState) string {
	switch p {
	case types.VirtualMachinePowerStatePoweredOn:
		return "on"
	case types.VirtualMachinePowerStatePoweredOff:
		return "off"
	case types.VirtualMachinePowerStateSuspended:
		return "suspended"
	}
	return string(p)
}

func (k vmKind) update(ctx context.Context, s *session, id string, olds, news Props) (Props, error) {
	vm, err := findVM(ctx, s, id)
	if err != nil {
		return nil, err
	}
	if n := str(news, "name"); n != "" && n != str(olds, "name") {
		if err := waitFor(ctx)(vm.Rename(ctx, n)); err != nil {
			return nil, fmt.Errorf("rename to %s: %s", n, err)
		}
	}
	if f, set := news["folder"]; set && f != olds["folder"] {
		dc, err := s.datacenterOf(ctx, vm.Reference())
		if err != nil {
			return nil, err
		}
		folders, err := dc.Folders(ctx)
		if err != nil {
			return nil, err
		}
		target, err := folderAt(ctx, s, folders.VmFolder, str(news, "folder"))
		if err != nil {
			return nil, fmt.Errorf("folder %q: %s", str(news, "folder"), err)
		}
		if err := waitFor(ctx)(target.MoveInto(ctx, []types.ManagedObjectReference{vm.Reference()})); err != nil {
			return nil, fmt.Errorf("move to folder %q: %s", str(news, "folder"), err)
		}
	}
	if h := hostRef(news); h != nil && str(news, "hostSystemId") != str(olds, "hostSystemId") {
		if err := waitFor(ctx)(vm.Relocate(ctx, types.VirtualMachineRelocateSpec{Host: h}, types.VirtualMachineMovePriorityDefaultPriority)); err != nil {
			return nil, fmt.Errorf("migrate to host %s: %s", h.Value, err)
		}
	}
	var dsRef *types.ManagedObjectReference
	if v := str(news, "datastoreId"); v != "" {
		r := ref("Datastore", v)
		dsRef = &r
	}
	if err := reconfigure(ctx, s, vm, olds, news, dsRef); err != nil {
		return nil, err
	}
	if _, set := news["tags"]; set || len(strs(olds, "tags")) > 0 {
		current, err := attachedTags(ctx, s, vm.Reference())
		if err != nil {
			return nil, err
		}
		if err := setTags(ctx, s, vm.Reference(), current, strs(news, "tags")); err != nil {
			return nil, err
		}
	}
	merged := copyProps(olds)
	for k, v := range news {
		merged[k] = v
	}
	outs, _, err := k.read(ctx, s, id, merged)
	return outs, err
}

func (vmKind) delete(ctx context.Context, s *session, id string, olds Props) error {
	vm, err := findVM(ctx, s, id)
	if err != nil {
		return err
	}
	// vCenter drops a destroyed VM's tag associations itself; the simulator keeps them and then refuses to delete
	// the tags, so detach first.
	if attached, err := attachedTags(ctx, s, vm.Reference()); err == nil {
		_ = setTags(ctx, s, vm.Reference(), attached, nil)
	}
	if err := shutdown(ctx, s, vm, olds); err != nil {
		return fmt.Errorf("power off: %s", err)
	}
	// Disks marked keepOnRemove are detached first, so that destroying the VM leaves their files.
	var m mo.VirtualMachine
	if err := s.retrieve(ctx, vm.Reference(), []string{"config.hardware.device"}, &m); err == nil && m.Config != nil {
		spec := types.VirtualMachineConfigSpec{}
		have := sortedDisks(object.VirtualDeviceList(m.Config.Hardware.Device))
		for i, d := range list(olds, "disks") {
			if boolean(d, "keepOnRemove", false) && i < len(have) {
				spec.DeviceChange = append(spec.DeviceChange, &types.VirtualDeviceConfigSpec{Operation: types.VirtualDeviceConfigSpecOperationRemove, Device: have[i]})
			}
		}
		if len(spec.DeviceChange) > 0 {
			if err := waitFor(ctx)(vm.Reconfigure(ctx, spec)); err != nil {
				return fmt.Errorf("detach disks kept on remove: %s", err)
			}
		}
	}
	return waitFor(ctx)(vm.Destroy(ctx))
}
