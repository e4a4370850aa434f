import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadBackupConfig } from "../../backup/repositories.js";
import { approveRequest, listApprovals, requireApproval } from "../../backup/approval/gate.js";
import { ApprovalRequiredError } from "../../backup/approval/refusal.js";
import { canonicalJson, differences, normalCode, type GatedAction } from "../../backup/approval/request.js";
import { authorOf, folderProblem } from "../../backup/approval/store.js";
import type { ApprovalSettings } from "../../backup/approval/config.js";
import { DcctlError, InputError } from "../../util/errors.js";

/**
 * The rules of four eyes on their own: which run matches which request, which folder may hold approvals, whose word a
 * file is, and the gate's verdicts over a real folder with its own clock given (`now`). The same flow with two real
 * OS users is test/integration/four-eyes.test.ts.
 */

const work = mkdtempSync(join(tmpdir(), "dcctl-approval-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const failover: GatedAction = {
  action: "dr failover",
  site: "secondary",
  target: "site secondary",
  args: { runbook: "failover", runbookSha256: "a".repeat(64), planned: false, failedAt: null, discardDiverged: false },
  change: "failover to the secondary site with runbook failover: promote qn-dr-db-01",
};

describe("which run an approval is for", () => {
  it("exactly the requested action matches, whatever the words of what it changes and the order of its arguments", () => {
    const reordered = { ...failover, args: Object.fromEntries(Object.entries(failover.args).reverse()), change: "other words, other locks" };
    expect(differences(failover, reordered)).toEqual([]);
  });

  it("names each difference: action, site, target, an argument changed, added or dropped", () => {
    expect(differences(failover, { ...failover, action: "dr failback" })).toEqual(["the action is dr failback, the approval is for dr failover"]);
    expect(differences(failover, { ...failover, site: "primary" })).toEqual(["the site is primary, the approval is for secondary"]);
    expect(differences(failover, { ...failover, target: "site primary" })).toEqual(["the target is site primary, the approval is for site secondary"]);
    const edited = { ...failover, args: { ...failover.args, runbookSha256: "b".repeat(64), failedAt: "2026-03-01T02:00:00+07:00" } };
    expect(differences(failover, edited)).toEqual([`failedAt is 2026-03-01T02:00:00+07:00, the approval is for (none)`, `runbookSha256 is ${"b".repeat(64)}, the approval is for ${"a".repeat(64)}`]);
    expect(differences(failover, { ...failover, args: { ...failover.args, extra: true } })).toEqual(["extra is true, the approval is for (none)"]);
    const rest = Object.fromEntries(Object.entries(failover.args).filter(([k]) => k !== "planned"));
    expect(differences(failover, { ...failover, args: rest })).toEqual(["planned is (none), the approval is for false"]);
  });

  it("a list argument matches only in the same order (the gated commands sort theirs)", () => {
    const resume: GatedAction = { ...failover, action: "dr resume", args: { rerun: ["a", "b"] } };
    expect(differences(resume, { ...resume, args: { rerun: ["a", "b"] } })).toEqual([]);
    expect(differences(resume, { ...resume, args: { rerun: ["b", "a"] } })).toHaveLength(1);
  });

  it("canonical JSON does not depend on key order", () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { y: 2, x: 1 }], c: null } })).toBe('{"a":{"c":null,"d":[1,{"x":1,"y":2}]},"b":1}');
  });

  it("codes are read as people type them", () => {
    expect(normalCode(" k7qf2m ")).toBe("K7QF2M");
    expect(normalCode("O1IL23")).toBe("011123");
    expect(normalCode("K7QF2")).toBeUndefined();
    expect(normalCode("K7QF2U")).toBeUndefined();
  });
});

describe("the folder and the files' owners", () => {
  it("accepts 3770 and a folder only its owner writes; refuses what lets one operator remove another's file", () => {
    expect(folderProblem(false, true, 0o43770)).toBeUndefined();
    expect(folderProblem(false, true, 0o40750)).toBeUndefined();
    expect(folderProblem(false, true, 0o40770)).toMatch(/writable by its group without the sticky bit .*chmod \+t/);
    expect(folderProblem(false, true, 0o41777)).toMatch(/writable by every user \(mode 01777\)/);
    expect(folderProblem(true, false, 0o120777)).toMatch(/symbolic link/);
    expect(folderProblem(false, false, 0o100640)).toBe("is not a folder");
  });

  it("a file is its owner's word; root's is taken as it says (sudo); another name is forged", () => {
    expect(authorOf({ uid: 1001, owner: "minh" }, "minh", "the approval of K7QF2M")).toBe("minh");
    expect(authorOf({ uid: 0, owner: "root" }, "minh", "the approval of K7QF2M")).toBe("minh");
    expect(() => authorOf({ uid: 1000, owner: "lan" }, "minh", "the approval of K7QF2M")).toThrow("the approval of K7QF2M says it was written by minh, but its file is owned by lan: refused as forged");
  });
});

describe("the approval: section of the repositories file", () => {
  const pass = join(work, "r.pass");
  writeFileSync(pass, "x\n", { mode: 0o600 });
  const file = join(work, "repositories.yaml");
  const base = ["site: secondary", "repositories:", `  secondary: { url: ${join(work, "repo")}, passwordFile: ${pass} }`, `stateDir: ${join(work, "state")}`];

  it("absent: no approval; given: its defaults", () => {
    writeFileSync(file, base.join("\n") + "\n");
    expect(loadBackupConfig(file, {}).approval).toBeUndefined();
    writeFileSync(file, [...base, "approval: { required: true }"].join("\n") + "\n");
    expect(loadBackupConfig(file, {}).approval).toEqual({ required: true, ttlMs: 30 * 60_000, dir: join(work, "state", "approvals") });
    writeFileSync(file, [...base, "approval:", "  required: true", "  ttl: 90s", "  dir: shared/approvals", "  approvers: [lan, minh]"].join("\n") + "\n");
    expect(loadBackupConfig(file, {}).approval).toEqual({ required: true, ttlMs: 90_000, dir: join(work, "shared", "approvals"), approvers: ["lan", "minh"] });
  });

  it("a ttl that is no duration and an approver that is no user name are refused at their line", () => {
    writeFileSync(file, [...base, "approval:", "  required: true", "  ttl: soon"].join("\n") + "\n");
    expect(() => loadBackupConfig(file, {})).toThrow(InputError);
    expect(() => loadBackupConfig(file, {})).toThrow(/repositories\.yaml:7: approval\.ttl: "soon" is not a duration/);
    writeFileSync(file, [...base, "approval:", "  required: yes please", "  approvers: [lan, 'minh; rm']"].join("\n") + "\n");
    const problems = (() => {
      try {
        loadBackupConfig(file, {});
        return [];
      } catch (e) {
        return (e as InputError).problems;
      }
    })();
    expect(problems).toEqual([expect.stringMatching(/repositories\.yaml:6: approval\.required: must be boolean/), expect.stringMatching(/repositories\.yaml:7: approval\.approvers\.1: must match pattern/)]);
  });
});

/**
 * The gate over a real folder, in this process. As root, a file is root's and its name is taken as written, as for
 * operators who work through sudo: SUDO_USER says who each call is. Not root: the OS user is every call's, and these
 * cases need two people.
 */
describe.skipIf(process.geteuid?.() !== 0)("the gate's verdicts, operators through sudo", () => {
  const settings: ApprovalSettings = { required: true, ttlMs: 30 * 60_000, dir: join(work, "gate") };
  const config = { approval: settings };
  const lan = { SUDO_USER: "lan" };
  const minh = { SUDO_USER: "minh" };
  const t0 = new Date("2026-03-01T02:00:00Z");
  const at = (minutes: number) => new Date(t0.getTime() + minutes * 60_000);

  function ask(env: NodeJS.ProcessEnv, now: Date, action = failover): ApprovalRequiredError {
    try {
      requireApproval(config, action, { argv: ["dr", "failover", "--to", "secondary", "--yes"], now, env });
    } catch (e) {
      if (e instanceof ApprovalRequiredError) return e;
      throw e;
    }
    throw new Error("the gate let a run without an approval through");
  }
  const refusal = (f: () => unknown): string => {
    try {
      f();
    } catch (e) {
      if (e instanceof ApprovalRequiredError) return `${e.exitCode} ${e.reason}: ${e.message}`;
      if (e instanceof DcctlError) return `${e.exitCode}: ${e.message}`;
      throw e;
    }
    return "passed";
  };

  it("a site that does not require approvals lets the action through untouched", () => {
    expect(requireApproval({}, failover, { argv: [] })).toBeUndefined();
    expect(requireApproval({ approval: { ...settings, required: false } }, failover, { argv: [] })).toBeUndefined();
  });

  it("request, self-approval refused, approval, one use of exactly that action", async () => {
    const asked = ask(lan, at(0));
    const code = asked.request?.code ?? "";
    expect(asked.written).toBe(true);
    expect(asked.reason).toBe("requested");
    expect(asked.exitCode).toBe(8);
    expect(asked.request?.command).toEqual(["dcctl", "dr", "failover", "--to", "secondary", "--yes", "--approval", code]);
    // The same command again finds the same request rather than writing another.
    expect(ask(lan, at(1)).request?.code).toBe(code);
    expect(ask(lan, at(1))).toMatchObject({ written: false, reason: "pending" });
    expect(refusal(() => requireApproval(config, failover, { code, argv: [], now: at(1), env: lan }))).toMatch(/^8 pending: request .* is not approved yet/);

    const confirm = async () => undefined;
    await expect(approveRequest(config, code.toLowerCase(), { confirm, now: at(2), env: lan })).rejects.toThrow(`request ${code} was made by you (lan): another operator must approve it`);
    const { grant } = await approveRequest(config, code, { confirm, now: at(2), env: minh });
    expect(grant.approvedBy).toBe("minh");
    await expect(approveRequest(config, code, { confirm, now: at(3), env: { SUDO_USER: "hoa" } })).rejects.toThrow(/already approved by minh/);

    // Someone else, another action, or a changed runbook: refused, and the approval is still there for the real run.
    expect(refusal(() => requireApproval(config, failover, { code, argv: [], now: at(4), env: { SUDO_USER: "hoa" } }))).toBe(`8 not-requester: approval ${code} was asked for by lan: only they can use it; ask for your own (run the command without --approval)`);
    expect(refusal(() => requireApproval(config, { ...failover, args: { ...failover.args, runbookSha256: "c".repeat(64) } }, { code, argv: [], now: at(4), env: lan }))).toMatch(/^8 mismatch: approval .* is not for this: runbookSha256 is c+, the approval is for a+/);

    const record = requireApproval(config, failover, { code, argv: [], now: at(5), env: lan });
    expect(record).toMatchObject({ code, action: "dr failover", target: "site secondary", requestedBy: "lan", approvedBy: "minh", requestedAt: at(0).toISOString() });
    expect(refusal(() => requireApproval(config, failover, { code, argv: [], now: at(6), env: lan }))).toMatch(/^8 used: approval .* was already used by lan at .*: an approval is good for one run/);
    expect(listApprovals(config, { all: true, now: at(6) }).find((s) => s.code === code)).toMatchObject({ status: "used", requestedBy: "lan", approval: { by: "minh" }, use: { by: "lan" } });
    expect(listApprovals(config, { now: at(6) }).find((s) => s.code === code)).toBeUndefined();
  });

  it("a request not approved within the ttl, and an approval not used within it, are expired", async () => {
    const action = { ...failover, target: "site primary", action: "dr failback" };
    const late = ask(lan, at(0), action).request?.code ?? "";
    await expect(approveRequest(config, late, { confirm: async () => undefined, now: at(31), env: minh })).rejects.toThrow(/expired at 2026-03-01T02:30:00.000Z without an approval \(ttl 30m\)/);

    // Approved now (the real clock): unused 30 minutes later it is expired, and the gate says so.
    const code = ask(lan, new Date(), { ...action, target: "site nowhere" }).request?.code ?? "";
    await approveRequest(config, code, { confirm: async () => undefined, env: minh });
    const later = new Date(Date.now() + 31 * 60_000);
    expect(refusal(() => requireApproval(config, { ...action, target: "site nowhere" }, { code, argv: [], now: later, env: lan }))).toMatch(/^8 expired: approval .*: the approval of .* by minh expired at .* \(ttl 30m\), unused; run the command without --approval to ask again$/);
  });

  it("a request changed after its approval is refused", async () => {
    const action = { ...failover, target: "site changed" };
    const code = ask(lan, new Date(), action).request?.code ?? "";
    await approveRequest(config, code, { confirm: async () => undefined, env: minh });
    const file = join(settings.dir, `${code}.request.json`);
    // Root may rewrite it (root can do anything); the approval covered the bytes, so the gate notices.
    writeFileSync(file, readFileSync(file, "utf8").replace('"planned": false', '"planned": true'));
    expect(refusal(() => requireApproval(config, { ...action, args: { ...action.args, planned: true } }, { code, argv: [], env: lan }))).toMatch(/^8 changed: approval .*: request .* was changed after minh approved it/);
  });

  it("approvers: only the named may approve", async () => {
    const only = { approval: { ...settings, approvers: ["minh"] } };
    const code = ask(lan, new Date(), { ...failover, target: "site approvers" }).request?.code ?? "";
    await expect(approveRequest(only, code, { confirm: async () => undefined, env: { SUDO_USER: "hoa" } })).rejects.toThrow("hoa is not one of the approvers of this site (approval.approvers: minh)");
  });
});
