import * as provider from "@pulumi/pulumi/provider/index.js";
import { vsphereProvider } from "./provider.js";

// Started by the Pulumi engine as `pulumi-resource-dcvsphere ENGINE_ADDRESS`; it prints its port and serves gRPC.
await provider.main(vsphereProvider, process.argv.slice(2));
