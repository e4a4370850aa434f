import { describe, expect, it } from "vitest";
import { authorizedKeyLine, MAX_RUNS_PER_REQUEST, parsePeerRequest, peerRequestArgv, type PeerRequest } from "../../backup/peer-access.js";
import { quoteArgv } from "../../hosts/quote.js";

const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOa0c2lkZGVhZGJlZWZkZWFkYmVlZmRlYWRiZWVmZGVhZGJl dcctl-primary";

describe("the forced command's reading of SSH_ORIGINAL_COMMAND", () => {
  it("answers exactly what the client sends, as the SSH executor sends it", () => {
    const requests: PeerRequest[] = [{ kind: "records" }, { kind: "runs", runIds: ["20261205T020000-42", "20261205T030000-7"] }];
    for (const req of requests) {
      expect(parsePeerRequest("exec " + quoteArgv(peerRequestArgv(req)))).toEqual(req);
      expect(parsePeerRequest(quoteArgv(peerRequestArgv(req)))).toEqual(req);
    }
  });

  it("refuses a shell, other commands, paths, options and too many ids", () => {
    const refused = [
      undefined,
      "",
      "   ",
      "rm -rf /var/lib/dcctl",
      "dcctl peer-records records; rm -rf /",
      "dcctl peer-records records && id",
      "dcctl peer-records records extra",
      "dcctl peer-records records --state-dir /etc",
      "dcctl peer-records runs",
      "dcctl peer-records runs ../../etc/shadow",
      "dcctl peer-records runs 20261205T020000-42/../x",
      "dcctl peer-records runs '20261205T020000-42'",
      "dcctl peer-records serve --state-dir /",
      "dcctl backup prune",
      "/usr/bin/dcctl peer-records records",
      "internal-sftp",
      `dcctl peer-records runs ${Array.from({ length: MAX_RUNS_PER_REQUEST + 1 }, (_, i) => `20261205T020000-${i}`).join(" ")}`,
    ];
    for (const cmd of refused) expect(() => parsePeerRequest(cmd), String(cmd)).toThrow(/refused .*: this key only reads the site's records/);
  });
});

describe("the authorized_keys line", () => {
  it("restricts the key to the forced command, quoting what needs it", () => {
    expect(authorizedKeyLine(KEY + "\n", { dcctl: ["/usr/bin/node", "/opt/dcctl/dist/cli/main.js"], stateDir: "/var/lib/dcctl" })).toBe(
      `restrict,command="/usr/bin/node /opt/dcctl/dist/cli/main.js peer-records serve --state-dir /var/lib/dcctl" ${KEY}`,
    );
    expect(authorizedKeyLine(KEY, { dcctl: ["/usr/local/bin/dcctl"], stateDir: "/srv/dcctl state", from: "10.10.50.11" })).toBe(
      `from="10.10.50.11",restrict,command="/usr/local/bin/dcctl peer-records serve --state-dir '/srv/dcctl state'" ${KEY}`,
    );
  });

  it("refuses what is not one public key, a relative state folder, and what would break out of command=\"…\"", () => {
    expect(() => authorizedKeyLine("-----BEGIN OPENSSH PRIVATE KEY-----", { dcctl: ["/d"], stateDir: "/s", source: "id.pub" })).toThrow(/id\.pub: not one OpenSSH public key line/);
    expect(() => authorizedKeyLine(`${KEY}\n${KEY}`, { dcctl: ["/d"], stateDir: "/s" })).toThrow(/not one OpenSSH public key line/);
    expect(() => authorizedKeyLine(KEY, { dcctl: ["/d"], stateDir: "state" })).toThrow(/not an absolute path/);
    expect(() => authorizedKeyLine(KEY, { dcctl: ["/d"], stateDir: '/s" ,command="sh' })).toThrow(/double quote/);
    expect(() => authorizedKeyLine(KEY, { dcctl: ["/d"], stateDir: "/s", from: '1.2.3.4",command="sh' })).toThrow(/double quote/);
  });
});
