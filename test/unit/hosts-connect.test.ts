import { describe, expect, it } from "vitest";
import { connectHost, hostPool, LocalExecutor, SshExecutor, type HostAccess } from "../../hosts/index.js";

// The one known_hosts rule (hosts/connect.ts): SSH only with a known_hosts named in the configuration.
describe("connectHost", () => {
  const host = { name: "qn-db-01", ssh: { host: "10.10.20.11", port: 22, user: "dcctl" } };
  const access = (ssh: HostAccess["ssh"], localHosts: string[] = []): HostAccess => ({ file: "/etc/dcctl/repositories.yaml", localHosts, ssh });

  it("refuses SSH without ssh.knownHosts, naming the file and the host, and has no default file", () => {
    expect(() => connectHost(host, access({ keyFile: "/etc/dcctl/ssh/id_ed25519" }))).toThrow(/^\/etc\/dcctl\/repositories\.yaml: ssh\.knownHosts is required to reach qn-db-01 \(host keys are pinned\)$/);
  });

  it("reaches a local host without SSH settings, and an SSH host through the configured known_hosts", () => {
    expect(connectHost(host, access({}, ["qn-db-01"]))).toBeInstanceOf(LocalExecutor);
    const ssh = connectHost(host, access({ knownHosts: "/etc/dcctl/ssh/known_hosts" }));
    expect(ssh).toBeInstanceOf(SshExecutor);
    expect(ssh.target).toBe("dcctl@10.10.20.11");
  });

  it("shares one executor per host in a pool", async () => {
    const pool = hostPool(access({ knownHosts: "/etc/dcctl/ssh/known_hosts" }));
    expect(pool(host)).toBe(pool(host));
    expect(pool({ ...host, name: "qn-db-02" })).not.toBe(pool(host));
    await pool.closeAll();
  });
});
