import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { startDcctl, type CliChild } from "../helpers/cli.js";
import { until } from "../helpers/until.js";

/**
 * What `dcctl serve` makes of hostile paths (issue 26): the `?token=` redirect never leaves the console, whatever the
 * path (`/.//evil.com` used to answer `Location: //evil.com`), and a control character in a path (a NUL, an escape
 * sequence) is refused, never echoed into a page. The built CLI with a token file, asked with raw request targets
 * (fetch would normalise them before sending).
 */

const work = mkdtempSync(join(tmpdir(), "dcctl-console-paths-"));
const token = randomBytes(24).toString("hex");
let serving: CliChild | undefined;
let base = "";
let stderr = "";

beforeAll(async () => {
  for (const r of ["primary", "secondary"]) writeFileSync(join(work, `${r}.pass`), "unused\n", { mode: 0o600 });
  // Repositories that do not exist: the console shows that as its reading, and serves its pages all the same.
  writeFileSync(
    join(work, "repositories.yaml"),
    stringify({ site: "primary", repositories: { primary: { url: join(work, "repo-primary"), passwordFile: "primary.pass" }, secondary: { url: join(work, "repo-secondary"), passwordFile: "secondary.pass" } } }),
  );
  writeFileSync(join(work, "console.token"), token + "\n", { mode: 0o600 });
  serving = startDcctl(["serve", "--listen", "127.0.0.1:0", "--token-file", join(work, "console.token")], {
    ...process.env,
    DCCTL_DEBUG: "",
    DCCTL_LANG: "",
    DCCTL_REPOS_FILE: join(work, "repositories.yaml"),
    DCCTL_STATE_DIR: join(work, "state"),
  });
  serving.child.stderr.on("data", (s: string) => (stderr += s));
  base = await until("dcctl serve to say where it listens", () => (serving?.child.exitCode === null ? /listening on (http:\S+)/.exec(stderr)?.[1] : `exited: ${stderr}`), 30_000);
  if (!base.startsWith("http:")) throw new Error(`dcctl serve ${base}`);
});

afterAll(async () => {
  if (serving && serving.child.exitCode === null) {
    serving.child.kill("SIGTERM");
    await serving.done;
  }
  rmSync(work, { recursive: true, force: true });
});

interface Answer {
  status: number;
  location?: string;
  body: string;
}

/** GET with the request target exactly as given (no normalisation), as a hand-made client or a crafted link sends it. */
function get(target: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const u = new URL(base);
    const req = request({ host: u.hostname, port: u.port, path: target, headers }, (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (s: string) => (body += s));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, ...(res.headers.location !== undefined ? { location: res.headers.location } : {}), body }));
    });
    req.on("error", reject);
    req.end();
  });
}

/** A request line with a raw byte in it, which no well-behaved client sends: the whole answer as text. */
function rawRequest(line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const u = new URL(base);
    const sock = connect({ host: u.hostname, port: Number(u.port) }, () => sock.write(`${line}\r\nHost: ${u.host}\r\nConnection: close\r\n\r\n`));
    let answer = "";
    sock.setEncoding("latin1").on("data", (s: string) => (answer += s));
    sock.on("end", () => resolve(answer));
    sock.on("error", reject);
  });
}

describe("dcctl serve and hostile paths", () => {
  it("the ?token= redirect stays on the console for any path, and keeps the path and the rest of the query", async () => {
    const targets = ["/.//evil.com", "//evil.com", "/./\\evil.com", "/%2e//evil.com", "/.///evil.com/x", "/..//evil.com"];
    for (const t of targets) {
      const a = await get(`${t}?token=${token}&x=1`);
      expect(a.status, t).toBe(303);
      const location = a.location ?? "";
      // Resolved as a browser resolves it: this console's origin, whatever the path.
      expect(new URL(location, base).origin, `${t} → ${location}`).toBe(new URL(base).origin);
      expect(location, t).toMatch(/^\/(?![/\\])/);
      expect(location, t).not.toContain("token=");
    }
    expect((await get(`/.//evil.com?token=${token}&x=1`)).location).toBe("/evil.com?x=1");
    // An ordinary deep link keeps its place.
    expect((await get(`/runs/20261122T060102Z-drill-3f9a?token=${token}`)).location).toBe("/runs/20261122T060102Z-drill-3f9a");
  });

  it("a control character in a path is refused (400) and echoed nowhere; a raw NUL in the request line too", async () => {
    const auth = { authorization: `Bearer ${token}` };
    // The same page without one: a run that does not exist, named in the page.
    const plain = await get("/runs/no-such-run", auth);
    expect(plain.status).toBe(404);
    expect(plain.body).toContain("no-such-run");
    for (const t of ["/runs/%00", "/runs/a%00b", "/%00", "/runs/x%1b%5b31mred", "/assets/%7f", "/runs/%C2%9b", "/runs/%zz"]) {
      const a = await get(t, auth);
      expect(a.status, t).toBe(400);
      expect(a.body.replace(/\n/g, ""), t).not.toMatch(/\p{Cc}/u);
      expect(a.body, t).toMatch(/^bad request: /);
    }
    // Refused before the token is even looked at, and with none.
    expect((await get("/runs/%00")).status).toBe(400);
    const raw = await rawRequest("GET /runs/\u0000 HTTP/1.1");
    expect(raw).toMatch(/^HTTP\/1\.1 400 /);
    expect(raw).not.toContain("\u0000");
    // The console still answers afterwards.
    expect((await get("/healthz")).status).toBe(200);
  });
});
