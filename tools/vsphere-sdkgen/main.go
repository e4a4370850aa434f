// Command vsphere-sdkgen writes the Node.js SDK of a Pulumi package schema with Pulumi's own code generator
// (github.com/pulumi/pulumi/pkg/v3/codegen/nodejs), at the Pulumi version tools/pulumi builds.
//
//	vsphere-sdkgen -schema provider/vsphere/schema.json -out DIR
//
// DIR receives the TypeScript sources, package.json and tsconfig.json; compiling them is the caller's job.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/blang/semver"
	"github.com/pulumi/pulumi/pkg/v3/codegen/nodejs"
	"github.com/pulumi/pulumi/pkg/v3/codegen/schema"
)

// noLoader refuses every package reference: the schema is self-contained.
type noLoader struct{}

var errNoReferences = errors.New("the schema may not reference other packages")

func (noLoader) LoadPackage(string, *semver.Version) (*schema.Package, error) { return nil, errNoReferences }
func (noLoader) LoadPackageV2(context.Context, *schema.PackageDescriptor) (*schema.Package, error) {
	return nil, errNoReferences
}
func (noLoader) LoadPackageReference(string, *semver.Version) (schema.PackageReference, error) {
	return nil, errNoReferences
}
func (noLoader) LoadPackageReferenceV2(context.Context, *schema.PackageDescriptor) (schema.PackageReference, error) {
	return nil, errNoReferences
}

func run(schemaPath, out string) error {
	raw, err := os.ReadFile(schemaPath)
	if err != nil {
		return err
	}
	var spec schema.PackageSpec
	if err := json.Unmarshal(raw, &spec); err != nil {
		return fmt.Errorf("%s: %w", schemaPath, err)
	}
	pkg, diags, err := schema.BindSpec(spec, noLoader{}, schema.ValidationOptions{})
	if err != nil {
		return fmt.Errorf("%s: %w", schemaPath, err)
	}
	if diags.HasErrors() {
		return fmt.Errorf("%s: %s", schemaPath, diags.Error())
	}
	files, err := nodejs.GeneratePackage("dcctl vsphere-sdkgen", pkg, nil, nil, false, noLoader{})
	if err != nil {
		return err
	}
	for name, content := range files {
		dest := filepath.Join(out, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(dest, content, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func main() {
	schemaPath := flag.String("schema", "", "the package schema (JSON)")
	out := flag.String("out", "", "folder to write the SDK into")
	flag.Parse()
	if *schemaPath == "" || *out == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: vsphere-sdkgen -schema FILE -out DIR")
		os.Exit(2)
	}
	if err := run(*schemaPath, *out); err != nil {
		fmt.Fprintln(os.Stderr, "vsphere-sdkgen:", err)
		os.Exit(1)
	}
}
