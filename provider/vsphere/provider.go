package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"
)

// version of this plugin: the package version that the embedded schema states.
var version = func() string {
	var head struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal([]byte(schemaJSON), &head); err != nil || head.Version == "" {
		return "0.0.0"
	}
	return head.Version
}()

// resourceKind is one resource type of the provider.
type resourceKind interface {
	// inputs that this provider implements (any other input of the real schema is refused in Check).
	inputs() fieldSpec
	// required inputs, as the real schema requires them.
	required() []string
	// updatable inputs: a change to one of them is made in place; a change to any other replaces the object.
	updatable() []string
	// autoName: the input that Pulumi fills from the resource's name when the program leaves it out ("" for none).
	autoName() string
	create(ctx context.Context, s *session, news Props) (string, Props, error)
	// read returns the object's current state and the inputs that would produce it; nil outputs when it is gone.
	// olds is the state so far (empty on import).
	read(ctx context.Context, s *session, id string, olds Props) (outs Props, ins Props, err error)
	update(ctx context.Context, s *session, id string, olds, news Props) (Props, error)
	delete(ctx context.Context, s *session, id string, olds Props) error
}

var kinds = map[string]resourceKind{
	"vsphere:index/folder:Folder":                                                     folderKind{},
	"vsphere:index/resourcePool:ResourcePool":                                         poolKind{},
	"vsphere:index/distributedPortGroup:DistributedPortGroup":                         portGroupKind{},
	"vsphere:index/tagCategory:TagCategory":                                           categoryKind{},
	"vsphere:index/tag:Tag":                                                           tagKind{},
	"vsphere:index/virtualMachine:VirtualMachine":                                     vmKind{},
	"vsphere:index/computeClusterVmAntiAffinityRule:ComputeClusterVmAntiAffinityRule": ruleKind{},
	"vsphere:index/computeClusterVmAffinityRule:ComputeClusterVmAffinityRule":         ruleKind{affinity: true},
	"vsphere:index/distributedVirtualSwitch:DistributedVirtualSwitch":                 switchKind{},
}

type server struct {
	pulumirpc.UnimplementedResourceProviderServer
	conn sessionHolder
}

func newServer() *server { return &server{} }

func kindOf(urn string) (string, resourceKind, error) {
	// urn:pulumi:STACK::PROJECT::PARENT$TYPE::NAME
	parts := strings.Split(urn, "::")
	if len(parts) < 4 {
		return "", nil, fmt.Errorf("bad URN %q", urn)
	}
	qualified := strings.Split(parts[2], "$")
	t := qualified[len(qualified)-1]
	k, ok := kinds[t]
	if !ok {
		return t, nil, fmt.Errorf("vsphere: resource type %s is not implemented by this provider", t)
	}
	return t, k, nil
}

func nameOf(urn string) string {
	parts := strings.Split(urn, "::")
	return parts[len(parts)-1]
}

func (p *server) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: version}, nil
}

func (p *server) GetSchema(_ context.Context, req *pulumirpc.GetSchemaRequest) (*pulumirpc.GetSchemaResponse, error) {
	if req.GetVersion() > 0 {
		return nil, fmt.Errorf("schema version %d is not supported", req.GetVersion())
	}
	return &pulumirpc.GetSchemaResponse{Schema: schemaJSON}, nil
}

func (p *server) Attach(context.Context, *pulumirpc.PluginAttach) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
}

// Cancel: the engine is about to stop this plugin; end the vSphere session instead of leaving it to time out.
func (p *server) Cancel(ctx context.Context, _ *emptypb.Empty) (*emptypb.Empty, error) {
	p.conn.logout(ctx)
	return &emptypb.Empty{}, nil
}

var configKeys = map[string]bool{"user": true, "password": true, "vsphereServer": true, "allowUnverifiedSsl": true, "version": true}

func (p *server) CheckConfig(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	var failures []*pulumirpc.CheckFailure
	news := fromStruct(req.GetNews())
	keys := make([]string, 0, len(news))
	for k := range news {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !configKeys[k] {
			failures = append(failures, &pulumirpc.CheckFailure{Property: k, Reason: fmt.Sprintf("provider configuration vsphere:%s is not implemented by this provider (it implements user, password, vsphereServer, allowUnverifiedSsl)", k)})
		}
	}
	return &pulumirpc.CheckResponse{Inputs: req.GetNews(), Failures: failures}, nil
}

func (p *server) DiffConfig(_ context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	olds, news := fromStruct(req.GetOldInputs()), fromStruct(req.GetNews())
	var diffs []string
	for k := range configKeys {
		if k == "version" {
			continue
		}
		if !covers(olds[k], news[k]) || (empty(news[k]) && !empty(olds[k])) {
			diffs = append(diffs, k)
		}
	}
	sort.Strings(diffs)
	changes := pulumirpc.DiffResponse_DIFF_NONE
	if len(diffs) > 0 {
		changes = pulumirpc.DiffResponse_DIFF_SOME
	}
	return &pulumirpc.DiffResponse{Changes: changes, Diffs: diffs}, nil
}

func (p *server) Configure(_ context.Context, req *pulumirpc.ConfigureRequest) (*pulumirpc.ConfigureResponse, error) {
	args := fromStruct(req.GetArgs())
	cfg, err := configFrom(args, req.GetVariables())
	if err != nil {
		return nil, err
	}
	p.conn.configure(cfg)
	return &pulumirpc.ConfigureResponse{AcceptSecrets: false, SupportsPreview: false, AcceptResources: false}, nil
}

func (p *server) session(ctx context.Context) (*session, error) { return p.conn.get(ctx) }

// guard turns a panic in a handler into that call's error, so that one bad input cannot kill the plugin.
func guard(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("vsphere plugin: internal error: %v", r)
	}
}

func (p *server) Check(_ context.Context, req *pulumirpc.CheckRequest) (_ *pulumirpc.CheckResponse, err error) {
	defer guard(&err)
	t, k, err := kindOf(req.GetUrn())
	if err != nil {
		return nil, err
	}
	news := fromStruct(req.GetNews())
	olds := fromStruct(req.GetOlds())
	var failures []*pulumirpc.CheckFailure
	refused := map[string]bool{}
	for _, path := range unsupported(news, k.inputs(), "") {
		refused[path] = true
		failures = append(failures, &pulumirpc.CheckFailure{Property: path, Reason: fmt.Sprintf("input %q is not implemented by dcctl's vsphere plugin; remove it", path)})
	}
	for _, f := range typeFailures(t, news) {
		if !refused[f[0]] {
			failures = append(failures, &pulumirpc.CheckFailure{Property: f[0], Reason: f[1]})
		}
	}
	if an := k.autoName(); an != "" && empty(news[an]) {
		if prev := str(olds, an); prev != "" {
			news[an] = prev
		} else {
			b := make([]byte, 4)
			_, _ = rand.Read(b)
			news[an] = nameOf(req.GetUrn()) + "-" + hex.EncodeToString(b)[:7]
		}
	}
	for _, r := range k.required() {
		if _, ok := news[r]; !ok {
			failures = append(failures, &pulumirpc.CheckFailure{Property: r, Reason: fmt.Sprintf("missing required input %q", r)})
		}
	}
	if v, ok := k.(validator); ok && len(failures) == 0 {
		for _, f := range v.validate(news) {
			failures = append(failures, &pulumirpc.CheckFailure{Property: f[0], Reason: f[1]})
		}
	}
	ins, err := toStruct(news)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CheckResponse{Inputs: ins, Failures: failures}, nil
}

// validator: a resource kind with checks of its own beyond names and required inputs; each failure is (path, reason).
type validator interface {
	validate(news Props) [][2]string
}

// clearable: inputs whose removal from the program means "set it empty" rather than "leave it as it is".
var clearable = map[string]bool{"tags": true, "annotation": true, "description": true, "virtualMachineIds": true}

func (p *server) Diff(_ context.Context, req *pulumirpc.DiffRequest) (_ *pulumirpc.DiffResponse, err error) {
	defer guard(&err)
	_, k, err := kindOf(req.GetUrn())
	if err != nil {
		return nil, err
	}
	olds := fromStruct(req.GetOlds())
	oldIns := fromStruct(req.GetOldInputs())
	news := fromStruct(req.GetNews())
	upd := map[string]bool{}
	for _, u := range k.updatable() {
		upd[u] = true
	}
	var diffs, replaces []string
	detailed := map[string]*pulumirpc.PropertyDiff{}
	for key, nv := range news {
		ov, had := olds[key]
		if isUnknown(nv) || !sameValue(key, ov, nv) {
			diffs = append(diffs, key)
			kind := pulumirpc.PropertyDiff_UPDATE
			if !had {
				kind = pulumirpc.PropertyDiff_ADD
			}
			if !upd[key] {
				replaces = append(replaces, key)
				kind = kind + 1 // ADD_REPLACE, UPDATE_REPLACE follow ADD and UPDATE
			}
			detailed[key] = &pulumirpc.PropertyDiff{Kind: kind, InputDiff: true}
		}
	}
	for key, ov := range oldIns {
		if _, still := news[key]; still || !clearable[key] || empty(ov) || empty(olds[key]) {
			continue
		}
		diffs = append(diffs, key)
		kind := pulumirpc.PropertyDiff_DELETE
		if !upd[key] {
			replaces = append(replaces, key)
			kind = pulumirpc.PropertyDiff_DELETE_REPLACE
		}
		detailed[key] = &pulumirpc.PropertyDiff{Kind: kind, InputDiff: true}
	}
	sort.Strings(diffs)
	sort.Strings(replaces)
	changes := pulumirpc.DiffResponse_DIFF_NONE
	if len(diffs) > 0 {
		changes = pulumirpc.DiffResponse_DIFF_SOME
	}
	return &pulumirpc.DiffResponse{
		Changes: changes, Diffs: diffs, Replaces: replaces, DetailedDiff: detailed, HasDetailedDiff: true,
		DeleteBeforeReplace: len(replaces) > 0,
	}, nil
}

// sameValue: whether the state already holds what the program asks; string lists of IDs compare as sets.
func sameValue(key string, old, news any) bool {
	if key == "tags" || key == "virtualMachineIds" || key == "associableTypes" {
		o, _ := old.([]any)
		n, _ := news.([]any)
		return sameSet(anyStrings(o), anyStrings(n))
	}
	return covers(old, news)
}

func anyStrings(xs []any) []string {
	out := make([]string, 0, len(xs))
	for _, x := range xs {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func (p *server) Create(ctx context.Context, req *pulumirpc.CreateRequest) (_ *pulumirpc.CreateResponse, err error) {
	defer guard(&err)
	_, k, err := kindOf(req.GetUrn())
	if err != nil {
		return nil, err
	}
	s, err := p.session(ctx)
	if err != nil {
		return nil, err
	}
	news := fromStruct(req.GetProperties())
	id, outs, err := k.create(ctx, s, news)
	if err != nil {
		if id != "" && outs != nil {
			// Created but not finished: keep it in state so the next run fixes or replaces it.
			st, serr := toStruct(outs)
			if serr == nil {
				return nil, partial(id, st, err)
			}
		}
		return nil, err
	}
	st, err := toStruct(outs)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CreateResponse{Id: id, Properties: st}, nil
}

func partial(id string, st *structpb.Struct, cause error) error {
	detail := &pulumirpc.ErrorResourceInitFailed{Id: id, Properties: st, Reasons: []string{cause.Error()}}
	stt, err := status.New(codes.Unknown, cause.Error()).WithDetails(detail)
	if err != nil {
		return cause
	}
	return stt.Err()
}

func (p *server) Read(ctx context.Context, req *pulumirpc.ReadRequest) (_ *pulumirpc.ReadResponse, err error) {
	defer guard(&err)
	_, k, err := kindOf(req.GetUrn())
	if err != nil {
		return nil, err
	}
	s, err := p.session(ctx)
	if err != nil {
		return nil, err
	}
	olds := fromStruct(req.GetProperties())
	oldIns := fromStruct(req.GetInputs())
	for key, v := range oldIns {
		if _, ok := olds[key]; !ok {
			olds[key] = v
		}
	}
	id := req.GetId()
	if r, ok := k.(resolver); ok && len(olds) == 0 {
		if id, err = r.resolveID(ctx, s, id); err != nil {
			return nil, err
		}
	}
	outs, ins, err := k.read(ctx, s, id, olds)
	if err != nil {
		if isNotFound(err) {
			return &pulumirpc.ReadResponse{}, nil
		}
		return nil, err
	}
	if outs == nil {
		return &pulumirpc.ReadResponse{}, nil
	}
	// Inputs the object cannot tell (how it was made, timeouts) stay as they were in the program.
	for key, v := range oldIns {
		if _, ok := ins[key]; !ok {
			ins[key] = v
		}
		if _, ok := outs[key]; !ok {
			outs[key] = v
		}
	}
	so, err := toStruct(outs)
	if err != nil {
		return nil, err
	}
	si, err := toStruct(ins)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.ReadResponse{Id: id, Properties: so, Inputs: si}, nil
}

func (p *server) Update(ctx context.Context, req *pulumirpc.UpdateRequest) (_ *pulumirpc.UpdateResponse, err error) {
	defer guard(&err)
	_, k, err := kindOf(req.GetUrn())
	if err != nil {
		return nil, err
	}
	s, err := p.session(ctx)
	if err != nil {
		return nil, err
	}
	outs, err := k.update(ctx, s, req.GetId(), fromStruct(req.GetOlds()), fromStruct(req.GetNews()))
	if err != nil {
		if outs != nil {
			// Changed in part: the state records what the object now is, and the next run tries again.
			if st, serr := toStruct(outs); serr == nil {
				return nil, partial(req.GetId(), st, err)
			}
		}
		return nil, err
	}
	st, err := toStruct(outs)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.UpdateResponse{Properties: st}, nil
}

func (p *server) Delete(ctx context.Context, req *pulumirpc.DeleteRequest) (_ *emptypb.Empty, err error) {
	defer guard(&err)
	_, k, err := kindOf(req.GetUrn())
	if err != nil {
		return nil, err
	}
	s, err := p.session(ctx)
	if err != nil {
		return nil, err
	}
	if err := k.delete(ctx, s, req.GetId(), fromStruct(req.GetProperties())); err != nil && !isNotFound(err) {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

func (p *server) Invoke(ctx context.Context, req *pulumirpc.InvokeRequest) (_ *pulumirpc.InvokeResponse, err error) {
	defer guard(&err)
	fn, ok := functions[req.GetTok()]
	if !ok {
		return nil, fmt.Errorf("vsphere: function %s is not implemented by this provider", req.GetTok())
	}
	args := fromStruct(req.GetArgs())
	if bad := unsupported(args, fn.inputs, ""); len(bad) > 0 {
		return nil, fmt.Errorf("%s: input %q is not implemented by dcctl's vsphere plugin; remove it", req.GetTok(), bad[0])
	}
	s, err := p.session(ctx)
	if err != nil {
		return nil, err
	}
	out, err := fn.call(ctx, s, args)
	if err != nil {
		return nil, fmt.Errorf("%s: %s", req.GetTok(), err)
	}
	st, err := toStruct(out)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.InvokeResponse{Return: st}, nil
}

func asErr[T error](err error, target *T) bool { return errors.As(err, target) }

func sortStrings(xs []string) []string {
	sort.Strings(xs)
	return xs
}
