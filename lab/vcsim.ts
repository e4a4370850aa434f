import { randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { govc, type VcenterConnection } from "./govc.js";
import { freePort, startServer, type ServerProcess } from "../util/process.js";
import { toolPath } from "../util/tools.js";
import { checkListenAddress, placed, type Placement } from "./placement.js";

/** What a site's vCenter must already hold before its stack is applied: the parts the stack looks up. */
export interface VcenterShape {
  datacenter: string;
  cluster: string;
  esxiHosts: string[];
  datastores: string[];
  dvSwitch: string;
  templates: string[];
}

export interface Vcsim {
  connection: VcenterConnection;
  server: ServerProcess;
  stop(): Promise<void>;
}

/**
 * Starts govmomi's vCenter simulator on a loopback port with an empty inventory, then builds the given shape in it
 * through the vSphere API (the simulator cannot rename hosts or datastores, so they are created with their names).
 */
export async function startVcsim(
  stateDir: string,
  shape: VcenterShape,
  // vcsim takes any user and password; `password` fixes the one its clients present (a test that looks for it).
  opts: { host?: string; port?: number; placement?: Placement; password?: string } = {},
): Promise<Vcsim> {
  const host = opts.host ?? "127.0.0.1";
  checkListenAddress("vcsim", host, opts.placement);
  const port = opts.port ?? (await freePort(host));
  const args = ["-l", `${host}:${port}`, "-dc", "1", "-cluster", "0", "-host", "0", "-ds", "0", "-pod", "0"];
  args.push("-folder", "0", "-app", "0", "-pool", "0", "-vm", "0", "-standalone-host", "0");
  const server = await startServer("vcsim", ...placed(opts.placement, toolPath("vcsim"), args), { waitFor: { host, port } });
  const connection: VcenterConnection = { url: `https://${host}:${port}/sdk`, username: "user", password: opts.password ?? randomBytes(12).toString("hex"), insecure: true };
  try {
    await shapeVcenter(connection, shape, stateDir);
  } catch (err) {
    await server.stop();
    throw err;
  }
  return { connection, server, stop: () => server.stop() };
}

async function shapeVcenter(conn: VcenterConnection, s: VcenterShape, stateDir: string): Promise<void> {
  const dc = `/${s.datacenter}`;
  await govc(conn, ["object.rename", "/DC0", s.datacenter]);
  await govc(conn, ["cluster.create", "-dc", s.datacenter, s.cluster]);
  const hostPaths = s.esxiHosts.map((h) => `${dc}/host/${s.cluster}/${h}`);
  for (const h of s.esxiHosts) {
    // The simulated ESXi host's root password: a fixed value that vcsim ignores and nothing else uses, so on argv it
    // reveals nothing (govc takes it only as a flag). vCenter's own password reaches govc by environment only.
    await govc(conn, ["cluster.add", "-dc", s.datacenter, "-cluster", s.cluster, "-hostname", h, "-username", "root", "-password", "lab", "-noverify"]);
  }
  for (const ds of s.datastores) {
    const dir = join(stateDir, "datastores", s.datacenter, ds);
    mkdirSync(dir, { recursive: true });
    await govc(conn, ["datastore.create", "-dc", s.datacenter, "-type", "local", "-name", ds, "-path", dir, ...hostPaths]);
  }
  await govc(conn, ["dvs.create", "-dc", s.datacenter, s.dvSwitch]);
  await govc(conn, ["dvs.add", "-dc", s.datacenter, "-dvs", s.dvSwitch, "-pnic", "vmnic1", ...hostPaths]);
  const firstDs = s.datastores[0];
  if (!firstDs) throw new Error("a vCenter shape needs at least one datastore");
  for (const t of s.templates) {
    await govc(conn, ["vm.create", "-dc", s.datacenter, "-on=false", "-ds", firstDs, "-net", "VM Network", "-pool", `${dc}/host/${s.cluster}/Resources`, "-folder", `${dc}/vm`, t]);
    await govc(conn, ["vm.markastemplate", "-dc", s.datacenter, `${dc}/vm/${t}`]);
  }
}
