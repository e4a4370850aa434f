import * as provider from "@pulumi/pulumi/provider/index.js";
import { vsphereProvider } from "./provider.js";

// Started by the Pulumi engine as `pulumi-resource-dcvsphere ENGINE_ADDRESS`; it prints its port and serves gRPC.
// An engine killed outright (SIGKILL, OOM) never tells its plugins to stop: leave when our parent is gone.
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) process.exit(0);
}, 1_000).unref();
await provider.main(vsphereProvider, process.argv.slice(2));
