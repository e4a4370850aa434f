// Command pulumi-resource-vsphere is dcctl's vSphere resource provider: the tokens, property names and provider
// configuration of the real Pulumi vSphere provider for what dcctl's stacks use, served over the Pulumi provider
// protocol and driving vCenter through govmomi (one session per process).
package main

import (
	"fmt"
	"os"

	"github.com/pulumi/pulumi/pkg/v3/resource/provider"
	sdkprovider "github.com/pulumi/pulumi/sdk/v3/go/pulumi/provider"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

func main() {
	err := provider.Main("vsphere", func(*sdkprovider.HostClient) (pulumirpc.ResourceProviderServer, error) {
		return newServer(), nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
