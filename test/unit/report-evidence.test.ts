import { createHash } from "node:crypto";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import type { ExecResult, ExecStream, Executor } from "../../hosts/index.js";
import { loadSites, type Sites } from "../../inventory/index.js";
import { parseRunbook, readJournal, resumeRun, silentProgress, startRun, writeReport, type DrServices, type RunReport } from "../../runbooks/engine/index.js";
import { Journal } from "../../runbooks/engine/journal.js";
import { REPORT_TEXTS } from "../../runbooks/engine/report-texts.js";
import { reportHtml, runReportHtml } from "../../runbooks/engine/report-html.js";
import { verifyChain, verifyReport, type VerifyOutcome } from "../../runbooks/engine/verify-report.js";
import { CLI_CONFIRM_TEXTS } from "../../cli/confirm-texts.js";
import { CONFIRM_TEXTS, confirmQuestion } from "../../util/confirm.js";
import type { Texts } from "../../util/i18n.js";
import { dcctl as runCli, mainJs } from "../helpers/cli.js";

/**
 * Item 4/5 of issue 12: hash-chained journals, reports that carry the chain head and the auditor's evidence, their
 * verification (`dcctl dr verify-report`), report.html, and Vietnamese reports and prompts.
 */

const sites = loadSites();
const FAILED_AT = new Date("2026-11-22T06:00:00Z");
const ZEROS = "0".repeat(64);
let state: string;
let env: NodeJS.ProcessEnv;

beforeEach(() => {
  state = mkdtempSync(join(tmpdir(), "dcctl-evidence-"));
  env = { DCCTL_STATE_DIR: state };
});
afterEach(() => rmSync(state, { recursive: true, force: true }));

const cliEnv = () => ({ ...process.env, DCCTL_SITES_DIR: "", DCCTL_DEBUG: "", DCCTL_LANG: "", DCCTL_STATE_DIR: state, DCCTL_REPOS_FILE: join(state, "none.yaml") });
const dcctl = (args: string[], extra: Record<string, string> = {}) => runCli(args, { ...cliEnv(), ...extra });

class LocalFake implements Executor {
  readonly target = "fake";
  async run(argv: string[]): Promise<ExecResult> {
    return { code: 0, stdout: `${argv.join(" ")}\n`, stderr: "" };
  }
  stream(): ExecStream {
    throw new Error("not used");
  }
  async close(): Promise<void> {}
}

function services(snapshotAgeMin = 10): DrServices {
  const local = new LocalFake();
  return {
    executorFor: () => local,
    local,
    now: () => new Date(),
    restorer: {
      async restore() {
        return { snapshotId: "abcd1234", snapshotTime: new Date(FAILED_AT.getTime() - snapshotAgeMin * 60_000).toISOString() };
      },
      async drop() {},
    },
    sql: { query: async () => "t\n" },
    snapshots: { newest: async () => ({ id: "abcd1234", time: new Date(FAILED_AT.getTime() - snapshotAgeMin * 60_000).toISOString() }) },
  };
}

const DRILL = `
name: drill-test
kind: drill
to: secondary
groups:
  - name: prepare
    steps:
      - { id: precheck, type: precheck, targets: { hosts: [qn-db-01] }, with: { repository: secondary, allowStale: true } }
  - name: restore
    steps:
      - id: restore-portal
        type: restore-db
        service: portal
        targets: { hosts: [qn-dr-db-01] }
        dependsOn: [precheck]
        with: { databases: [portal], from: qn-db-01 }
  - name: verify
    steps:
      - id: verify-portal
        type: verify
        service: portal
        targets: { hosts: [qn-dr-db-01] }
        dependsOn: [restore-portal]
        with:
          sql: [{ database: portal, query: "SELECT count(*) > 0 FROM dossiers", expect: t }]
`;

function drill(lang: "en" | "vi" = "en", snapshotAgeMin = 10) {
  return startRun({
    runbook: parseRunbook("runbooks/drill-test.yaml", DRILL, sites),
    runbookText: DRILL,
    sites,
    services: services(snapshotAgeMin),
    progress: silentProgress(),
    operator: "nguyen.van.a",
    confirmedBy: "not needed (drill: non-disruptive)",
    failedAt: FAILED_AT,
    lang,
    env,
  });
}

const verify = (dir: string, head?: string, current: Sites = sites): VerifyOutcome => verifyReport(dir, { ...(head ? { head } : {}), currentSites: () => current });
const check = (o: VerifyOutcome, name: string) => o.checks.find((c) => c.check === name);
const read = (dir: string, name: string) => readFileSync(join(dir, name), "utf8");
const journalLines = (dir: string) => read(dir, "journal.jsonl").split("\n").filter(Boolean);
const writeLines = (dir: string, lines: string[]) => writeFileSync(join(dir, "journal.jsonl"), lines.join("\n") + "\n");
const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

describe("the journal's hash chain", () => {
  it("chains every record to the one before (64 zeros first), hash last, and the run verifies", async () => {
    const out = await drill();
    const lines = journalLines(out.runDir);
    let prev = ZEROS;
    for (const line of lines) {
      const rec = JSON.parse(line) as Record<string, unknown>;
      expect(Object.keys(rec).at(-1)).toBe("hash");
      expect(rec.prev).toBe(prev);
      // Recomputed from the definition: sha256(prev + "\n" + the record as written, without its hash).
      const { hash, ...rest } = rec;
      expect(hash).toBe(sha256(`${prev}\n${JSON.stringify(rest)}`));
      prev = String(hash);
    }
    const report = JSON.parse(read(out.runDir, "report.json")) as RunReport;
    expect(report.journalHead).toEqual({ seq: lines.length, hash: prev });
    expect(out.journalHead).toEqual(report.journalHead);
    expect(read(out.runDir, "report.md").trimEnd().split("\n\n").at(-2)).toBe(`Journal: ${join(out.runDir, "journal.jsonl")}, ${lines.length} records, chain head sha256:${prev}`);
    expect(read(out.runDir, "report.html")).toContain(`chain head sha256:${prev}`);

    const v = verify(out.runDir, `sha256:${prev}`);
    expect(v.checks.map((c) => `${c.check}: ${c.status}`)).toEqual([
      "journal chain: ok",
      "anchored head: ok",
      "runbook copy: ok",
      "inventory copy: ok",
      "report head: ok",
      "report.json: ok",
      "report.md: ok",
      "report.html: ok",
    ]);
    expect(v.ok).toBe(true);
  });

  it("names the seq of a journal line with one character edited", async () => {
    const out = await drill();
    const lines = journalLines(out.runDir);
    const i = lines.findIndex((l) => l.includes('"type":"step-end"') && l.includes('"step":"verify-portal"'));
    lines[i] = (lines[i] ?? "").replace('"attempt":1', '"attempt":2');
    writeLines(out.runDir, lines);
    const v = verify(out.runDir);
    expect(check(v, "journal chain")).toMatchObject({ status: "failed", seq: i + 1, detail: `first bad record: seq ${i + 1} (line ${i + 1}): its hash does not match its content: the record was edited` });
    expect(v.ok).toBe(false);

    const cli = dcctl(["dr", "verify-report", out.runId]);
    expect(cli.code).toBe(1);
    expect(cli.stdout).toContain(`FAILED      journal chain: first bad record: seq ${i + 1} (line ${i + 1}): its hash does not match its content`);
    expect(cli.stderr.split("\n").filter(Boolean)).toEqual([expect.stringMatching(new RegExp(`^dcctl: run ${out.runId}: \\d+ of 7 checks failed \\(first: journal chain: first bad record: seq ${i + 1} `))]);
  });

  it("detects a record removed from the middle, records swapped, and records cut from the end", async () => {
    const out = await drill();
    const original = journalLines(out.runDir);
    writeLines(out.runDir, original.filter((_, i) => i !== 3));
    expect(check(verify(out.runDir), "journal chain")).toMatchObject({ status: "failed", seq: 4, detail: "first bad record: seq 4 (line 4): line 4 holds seq 5 where seq 4 was expected: record 4 was removed" });

    const swapped = [...original];
    [swapped[3], swapped[4]] = [swapped[4] ?? "", swapped[3] ?? ""];
    writeLines(out.runDir, swapped);
    expect(check(verify(out.runDir), "journal chain")).toMatchObject({ status: "failed", seq: 4 });

    // Cutting the end leaves a chain that verifies: report.json's head and the anchor show what is missing.
    const head = (JSON.parse(original.at(-1) ?? "{}") as { hash: string }).hash;
    writeLines(out.runDir, original.slice(0, -2));
    const v = verify(out.runDir, head);
    expect(check(v, "journal chain")?.status).toBe("ok");
    expect(check(v, "anchored head")).toMatchObject({ status: "failed", detail: `sha256:${head} is no record of the journal: the journal was rewritten or cut short` });
    expect(check(v, "report head")).toMatchObject({ status: "failed", seq: original.length - 1 });
  });

  it("a journal rewritten with a recomputed chain passes the chain check but not the anchored head", async () => {
    const out = await drill();
    const head = out.journalHead.hash;
    const forged = journalLines(out.runDir).map((l) => JSON.parse(l) as Record<string, unknown>);
    rmSync(join(out.runDir, "journal.jsonl"));
    const j = new Journal(join(out.runDir, "journal.jsonl"), () => new Date());
    for (const rec of forged) {
      const body = Object.fromEntries(Object.entries(rec).filter(([k]) => !["seq", "at", "prev", "hash"].includes(k)));
      j.append((rec.type === "run-start" ? { ...body, operator: "someone-else" } : body) as unknown as Parameters<Journal["append"]>[0]);
    }
    j.close();
    await writeReport(out.runDir, parseRunbook("runbooks/drill-test.yaml", DRILL, sites), sites);
    expect(verify(out.runDir).ok).toBe(true);
    const anchored = verify(out.runDir, head);
    expect(check(anchored, "anchored head")?.status).toBe("failed");
    expect(anchored.ok).toBe(false);
  });
});

describe("verify-report: the reports against the journal", () => {
  it("names an edited report.md with its first differing line, and report.json and report.html too", async () => {
    const out = await drill();
    const md = read(out.runDir, "report.md");
    const lines = md.split("\n");
    const n = lines.findIndex((l) => l.startsWith("| portal |"));
    writeFileSync(join(out.runDir, "report.md"), md.replace("| portal | 1 | 10 min |", "| portal | 1 | 9 min |"));
    const v = verify(out.runDir);
    expect(check(v, "report.md")).toMatchObject({ status: "failed" });
    expect(check(v, "report.md")?.detail).toBe(`edited: line ${n + 1} differs: the journal gives ${JSON.stringify(lines[n])}, the file has ${JSON.stringify(lines[n]?.replace("10 min", "9 min"))}`);
    expect(check(v, "report.json")?.status).toBe("ok");
    expect(check(v, "journal chain")?.status).toBe("ok");

    const json = JSON.parse(read(out.runDir, "report.json")) as RunReport;
    writeFileSync(join(out.runDir, "report.json"), JSON.stringify({ ...json, operator: "someone-else" }, null, 2) + "\n");
    writeFileSync(join(out.runDir, "report.html"), read(out.runDir, "report.html").replace("nguyen.van.a", "someone-else"));
    const again = verify(out.runDir);
    expect(check(again, "report.json")?.detail).toMatch(/^edited: line \d+ differs: the journal gives " {2}\\"operator\\": \\"nguyen.van.a\\",", the file has " {2}\\"operator\\": \\"someone-else\\","$/);
    expect(check(again, "report.html")?.status).toBe("failed");
  });

  it("a report written before the run went on (a crash after a report step) verifies against its own head", async () => {
    const out = await drill();
    const j = new Journal(join(out.runDir, "journal.jsonl"));
    j.append({ type: "note", message: "written after the report" });
    j.close();
    const v = verify(out.runDir, `sha256:${out.journalHead.hash}`);
    expect(v.ok).toBe(true);
    expect(check(v, "report head")?.detail).toBe(`seq ${out.journalHead.seq} sha256:${out.journalHead.hash}; the journal has 1 record after it (the run went on after this report)`);
    expect(check(v, "anchored head")?.detail).toMatch(/^seq \d+; 1 record written after it/);
  });

  it("rebuilds with the run's inventory copy, so an inventory changed since then is no false alarm", async () => {
    const out = await drill();
    const changed: Sites = JSON.parse(JSON.stringify(sites)) as Sites;
    for (const t of changed.secondary.drTiers) t.rpoMinutes = 1;
    expect(verify(out.runDir, undefined, changed).ok).toBe(true);
    writeFileSync(join(out.runDir, "runbook.yaml"), DRILL.replace("drill-test", "drill-edited"));
    expect(check(verify(out.runDir), "runbook copy")?.status).toBe("failed");
  });

  it("reports a journal written before the chain as not chained, not as tampered", async () => {
    const dir = join(state, "dr", "runs", "R-old");
    mkdirSync(dir, { recursive: true });
    const runbook = `name: old\nkind: drill\nto: secondary\ngroups:\n  - name: g\n    steps:\n      - { id: a, type: command, with: { argv: [a] } }\n`;
    writeFileSync(join(dir, "runbook.yaml"), runbook);
    const at = "2026-01-05T01:00:00.000Z";
    const old = [
      { seq: 1, at, type: "run-start", runId: "R-old", runbook: "old", kind: "drill", to: "secondary", scope: "s", file: "old.yaml", failedAt: at, operator: "x", confirmedBy: "y", host: "h", pid: 1 },
      { seq: 2, at, type: "step-start", step: "a", attempt: 1, hosts: [] },
      { seq: 3, at, type: "step-end", step: "a", attempt: 1, status: "ok", durationMs: 1, notes: [], data: {} },
      { seq: 4, at, type: "run-end", status: "ok" },
    ];
    writeLines(dir, old.map((r) => JSON.stringify(r)));
    // A report as dcctl wrote it then: no format, no journalHead, no evidence.
    writeFileSync(join(dir, "report.json"), JSON.stringify({ runId: "R-old", status: "ok", journal: join(dir, "journal.jsonl") }, null, 2) + "\n");
    writeFileSync(join(dir, "report.md"), "# DR drill R-old: OK\n");
    expect(readJournal(join(dir, "journal.jsonl")).records).toHaveLength(4);

    const v = verify(dir);
    expect(check(v, "journal chain")).toMatchObject({ status: "not chained", detail: "4 records, not chained (written before dcctl 0.2.0): nothing to recompute" });
    expect(check(v, "report head")?.status).toBe("not chained");
    expect(check(v, "report.md")?.status).toBe("skipped");
    expect(v.ok).toBe(true);
    const cli = dcctl(["dr", "verify-report", "R-old"]);
    expect(cli.code).toBe(0);
    expect(cli.stdout).toMatch(/^not chained journal chain: 4 records, not chained \(written before dcctl 0\.2\.0\)/m);
    // The console still shows such a run, from what its report.json has.
    const old1 = JSON.parse(read((await drill()).runDir, "report.json")) as Record<string, unknown>;
    for (const k of ["format", "lang", "evidence", "runNotes", "resumedBy", "journalHead", "journalRecords"]) delete old1[k];
    writeFileSync(join(dir, "report.json"), JSON.stringify(old1));
    expect(runReportHtml(dir)).toContain("<p>Not in this report: it was written before dcctl 0.2.0, which adds the evidence section.</p>");
    expect(dcctl(["dr", "verify-report", "R-none"])).toMatchObject({ code: 2, stderr: expect.stringMatching(/^dcctl: no DR run R-none in .*runs \(see dcctl dr history\)\n$/) });
  });
});

const RESUMABLE = `
name: resumable
kind: drill
to: secondary
groups:
  - name: g
    steps:
      - { id: first, type: command, with: { argv: [first] } }
      - { id: middle, type: command, dependsOn: [first], with: { argv: [middle] } }
`;

describe("resume", () => {
  const crashed = (runId: string, chained: boolean) => {
    const dir = join(state, "dr", "runs", runId);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "runbook.yaml"), RESUMABLE);
    const bodies = [
      { type: "run-start", runId, runbook: "resumable", kind: "drill", to: "secondary", scope: "site-secondary", file: "test.yaml", failedAt: FAILED_AT.toISOString(), operator: "night-shift", confirmedBy: "x", host: "h", pid: 1 },
      { type: "step-start", step: "first", attempt: 1, hosts: [] },
      { type: "step-end", step: "first", attempt: 1, status: "ok", durationMs: 5, notes: [], data: {} },
      { type: "step-start", step: "middle", attempt: 1, hosts: [] },
    ] as const;
    if (chained) {
      const j = new Journal(join(dir, "journal.jsonl"));
      for (const b of bodies) j.append(b as unknown as Parameters<Journal["append"]>[0]);
      j.close();
    } else {
      writeLines(dir, bodies.map((b, i) => JSON.stringify({ seq: i + 1, at: FAILED_AT.toISOString(), ...b })));
    }
    return dir;
  };
  const resume = (runId: string) => resumeRun({ runId, sites, services: services(), progress: silentProgress(), operator: "day-shift", confirmedBy: "test", env, rerun: ["middle"] });

  it("continues the chain from the last record", async () => {
    const dir = crashed("R1", true);
    const before = journalLines(dir);
    const out = await resume("R1");
    expect(out.status).toBe("ok");
    const after = journalLines(dir);
    expect(after.slice(0, before.length)).toEqual(before);
    const lastBefore = JSON.parse(before.at(-1) ?? "{}") as { hash: string };
    expect(JSON.parse(after[before.length] ?? "{}")).toMatchObject({ type: "run-resume", seq: before.length + 1, prev: lastBefore.hash });
    const v = verify(dir);
    expect(v.checks.filter((c) => c.status !== "ok").map((c) => c.check)).toEqual(["runbook copy"]);
    expect(check(v, "runbook copy")?.status).toBe("skipped");
  });

  it("after a crash that tore the last line, sets the torn bytes aside and resumes on a line of its own", async () => {
    const dir = crashed("R3", true);
    const whole = read(dir, "journal.jsonl");
    const torn = '{"seq":5,"at":"2026-11-22T06:01:00.000Z","type":"step-end","step":"mid';
    writeFileSync(join(dir, "journal.jsonl"), whole + torn);
    expect(readJournal(join(dir, "journal.jsonl")).tornTail).toBe(true);
    const out = await resume("R3");
    expect(out.status).toBe("ok");
    expect(read(dir, "journal.jsonl").startsWith(whole)).toBe(true);
    expect(readJournal(join(dir, "journal.jsonl")).tornTail).toBe(false);
    expect(verifyChain(read(dir, "journal.jsonl")).problem).toBeUndefined();
    const aside = readdirSync(dir).filter((f) => f.startsWith("journal.jsonl.torn-"));
    expect(aside.length).toBe(1);
    expect(read(dir, aside[0] ?? "")).toBe(torn);
  });

  it("seals an unchained journal's records into the chain that the resume begins", async () => {
    const dir = crashed("R2", false);
    await resume("R2");
    const chain = verifyChain(read(dir, "journal.jsonl"));
    expect(chain.chainedFrom).toBe(5);
    expect(chain.problem).toBeUndefined();
    expect(check(verify(dir), "journal chain")?.detail).toMatch(/; records 1-4 are not chained \(written before dcctl 0\.2\.0\) but sealed by seq 5$/);
    // An old record edited afterwards no longer matches what the first chained record sealed.
    const lines = journalLines(dir);
    lines[1] = (lines[1] ?? "").replace('"attempt":1', '"attempt":3');
    writeLines(dir, lines);
    expect(verifyChain(read(dir, "journal.jsonl")).problem).toMatchObject({ seq: 5, message: expect.stringMatching(/^its prev does not match the hash of seq 4/) });
  });
});

describe("report.html", () => {
  it("is one self-contained file with the evidence section, a missed target red and in words", async () => {
    const out = await drill("en", 30);
    const html = read(out.runDir, "report.html");
    expect(html.startsWith("<!DOCTYPE html>\n<html lang=\"en\">")).toBe(true);
    expect(html).not.toMatch(/<(script|link|img|iframe|object)\b/i);
    expect(html).not.toMatch(/(src|href)\s*=\s*["']?\s*(https?:)?\/\//i);
    expect(html).not.toMatch(/@import|url\(/i);
    expect(html).toContain("<h2>Evidence for ISO/IEC 27001:2022</h2>");
    for (const c of ["A.5.30 ICT readiness for business continuity", "A.8.13 Information backup", "A.8.14 Redundancy of information processing facilities"]) expect(html).toContain(`<h3>${c}</h3>`);
    expect(html).toMatch(/<tr><td>portal<\/td><td>1<\/td><td>30 min<\/td><td>15 min<\/td><td class="bad"><strong>missed<\/strong><\/td>/);
    expect(html).toContain("<li>Promotion of a standby: not shown by this run (a drill leaves the standbys replicating).</li>");

    // The console's call: a run's page from its report.json, in the reader's language, with the one link it adds.
    const page = runReportHtml(out.runDir, "vi", { consoleLink: { href: "/runs", text: "Danh sách lần chạy" } });
    expect(page).toContain('<html lang="vi">');
    expect(page).toContain("<h2>Bằng chứng phục vụ đánh giá theo ISO/IEC 27001:2022</h2>");
    expect([...page.matchAll(/href="([^"]*)"/g)].map((m) => m[1])).toEqual(["/runs"]);
    const report = JSON.parse(read(out.runDir, "report.json")) as RunReport;
    expect(reportHtml(report)).toBe(html);
  });
});

describe("Vietnamese", () => {
  it("--lang vi writes report.md and report.html in Vietnamese; report.json stays language-neutral", async () => {
    const out = await drill("vi", 30);
    const md = read(out.runDir, "report.md");
    const rel = JSON.parse(read(out.runDir, "report.json")) as RunReport;
    const restoredAt = rel.evidence.backup.restoreTest?.at ?? "?";
    for (const phrase of [
      // Every step ended well, but the RPO target was missed: the headline says so.
      `# Báo cáo diễn tập khôi phục thảm họa ${out.runId}: KHÔNG ĐẠT MỤC TIÊU RPO/RTO`,
      "Kết quả: mọi bước đều hoàn thành nhưng không đạt mục tiêu: portal: RPO 30 phút, vượt mục tiêu 15 phút của cấp DR 1.",
      "## RPO và RTO so với mục tiêu theo cấp DR",
      "| Dịch vụ | Cấp DR | RPO | Mục tiêu | Kết quả | RTO | Mục tiêu | Kết quả |",
      "| portal | 1 | 30 phút | 15 phút | **Không đạt** |",
      "Xác nhận bởi: không cần xác nhận (diễn tập, không gây gián đoạn dịch vụ).",
      "## Sai lệch so với kế hoạch",
      "- portal: RPO 30 phút, vượt mục tiêu 15 phút của cấp DR 1",
      "## Bằng chứng phục vụ đánh giá theo ISO/IEC 27001:2022",
      "### A.8.13 Sao lưu thông tin",
      `- Kiểm thử khôi phục lúc ${restoredAt}: Đạt; kiểm tra dữ liệu: 1/1 nội dung đạt.`,
      "- Bản sao lưu tại hai địa điểm: lần chạy này chỉ sử dụng kho sao lưu tại trung tâm dữ liệu dự phòng (secondary); bản sao lưu tại trung tâm dữ liệu chính (primary) không được thể hiện qua lần chạy này.",
      "- Nâng máy chủ dự phòng lên làm chính: không được thể hiện qua lần chạy này (diễn tập giữ nguyên các máy chủ dự phòng ở chế độ sao chép).",
      "- Người thực hiện: nguyen.van.a, khởi động trên máy",
      "mã băm cuối chuỗi sha256:",
    ]) {
      expect(md).toContain(phrase);
    }
    expect(md).not.toMatch(/\b(met|missed|Deviations|Steps|Evidence)\b/);
    expect(read(out.runDir, "report.html")).toContain('<td class="bad"><strong>Không đạt</strong></td>');
    expect(rel.lang).toBe("vi");
    expect(rel.deviations).toContain("portal: RPO 30 min exceeds the tier 1 target of 15 min");
    expect(rel.evidence.continuity.targetsMissed).toEqual([
      { service: "portal", measure: "RPO" },
      { service: "overall", measure: "RPO" },
    ]);
    // A rebuild gives the same text: the language is the journal's.
    expect(readJournal(join(out.runDir, "journal.jsonl")).records[0]).toMatchObject({ type: "run-start", lang: "vi" });
    expect(verify(out.runDir).ok).toBe(true);
  });

  it("asks and refuses in Vietnamese", () => {
    expect(confirmQuestion({ action: "xoá toàn bộ máy ảo, port group, thư mục và thẻ (tag) của stack primary", expect: "primary", lang: "vi" })).toBe(
      'Thao tác sắp thực hiện: xoá toàn bộ máy ảo, port group, thư mục và thẻ (tag) của stack primary.\nGõ "primary" để tiếp tục: ',
    );
    const refused = dcctl(["--lang", "vi", "dr", "failover", "--to", "secondary"]);
    expect(refused.code).toBe(5);
    expect(refused.stderr).toMatch(
      /^dcctl: từ chối thực hiện khi không có --yes và không có terminal để hỏi xác nhận: chuyển đổi dự phòng \(failover\) sang trung tâm dữ liệu dự phòng \(secondary\) theo kịch bản failover, gồm: dừng ghi dữ liệu trên qn-app-portal-01, .*; nâng máy chủ dự phòng qn-dr-db-01 lên làm máy chủ chính; .*; chuyển bản ghi DNS: trỏ dichvucong\.quangninh\.gov\.vn tới qn-dr-app-portal-01 \(ttl 60\); .*\n$/,
    );
    expect(dcctl(["dr", "failback", "--to", "primary"], { DCCTL_LANG: "vi" }).stderr).toMatch(/^dcctl: từ chối thực hiện .*: chuyển về trung tâm dữ liệu chính \(primary\) \(failback\) theo kịch bản failback, gồm: /);
  });

  it.skipIf(spawnSync("sh", ["-c", "command -v script"]).status !== 0)("asks at a terminal in Vietnamese and takes a wrong word as no (exit 5)", () => {
    const cmd = `${JSON.stringify(process.execPath)} ${JSON.stringify(mainJs)} --lang vi dr failover --to secondary`;
    const res = spawnSync("script", ["-qec", cmd, "/dev/null"], { input: "khong\n", encoding: "utf8", env: cliEnv(), timeout: 60_000 });
    expect(res.status).toBe(5);
    expect(res.stdout).toContain("Thao tác sắp thực hiện: chuyển đổi dự phòng (failover) sang trung tâm dữ liệu dự phòng (secondary) theo kịch bản failover, gồm: dừng ghi dữ liệu trên qn-app-portal-01");
    expect(res.stdout).toContain('Gõ "secondary" để tiếp tục: ');
    expect(res.stdout).toContain("dcctl: không được xác nhận, thao tác chưa được thực hiện: chuyển đổi dự phòng (failover)");
  });

  it("every text has both languages, with the same placeholders", () => {
    const flat = (t: Texts, prefix = ""): Map<string, string> =>
      new Map(Object.entries(t).flatMap(([k, v]) => (typeof v === "string" ? [[`${prefix}${k}`, v] as const] : [...flat(v, `${prefix}${k}.`)])));
    // Vietnamese has no plural forms: an English key_one/key_other pair is one key_other there.
    const base = (k: string) => k.replace(/_(one|other)$/, "");
    const vars = (s: string) => [...s.matchAll(/\{\{(\w+)\}\}/g)].map((m) => m[1]).sort().join(",");
    for (const texts of [REPORT_TEXTS, CONFIRM_TEXTS, CLI_CONFIRM_TEXTS]) {
      const en = flat(texts.en);
      const vi = flat(texts.vi);
      expect(new Set([...vi.keys()].map(base))).toEqual(new Set([...en.keys()].map(base)));
      for (const [k, v] of vi) {
        const english = en.get(k) ?? en.get(`${base(k)}_other`) ?? "";
        expect(vars(v), k).toBe(vars(english));
      }
    }
  });
});

describe("dcctl dr through the CLI", () => {
  const tmp = mkdtempSync(join(tmpdir(), "dcctl-evidence-cli-"));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  const runbook = join(tmp, "cli-drill.yaml");
  writeFileSync(runbook, `name: cli-drill\nkind: drill\nto: secondary\nscope: test-evidence\ngroups:\n  - name: g\n    steps:\n      - { id: hello, type: command, with: { argv: [sh, -c, "echo xin chao"] } }\n`);

  it("prints the chain head at the end of the run; verify-report --head checks against it; dr report prints and makes a PDF", () => {
    const run = dcctl(["--lang", "vi", "dr", "drill", "--runbook", runbook]);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    const m = /^\d\d:\d\d:\d\d journal: (\S+), (\d+) records, chain head (sha256:[0-9a-f]{64})$/m.exec(run.stdout);
    expect(m).not.toBeNull();
    const runId = (JSON.parse(dcctl(["dr", "history", "--json"]).stdout) as { runId: string }[])[0]?.runId ?? "";
    const ok = dcctl(["dr", "verify-report", runId, "--head", m?.[3] ?? ""]);
    expect(ok.code).toBe(0);
    expect(ok.stdout.split("\n").filter(Boolean).map((l) => l.split(":")[0])).toEqual([
      "ok          journal chain",
      "ok          anchored head",
      "ok          runbook copy",
      "ok          inventory copy",
      "ok          report head",
      "ok          report.json",
      "ok          report.md",
      "ok          report.html",
    ]);
    const wrong = dcctl(["dr", "verify-report", runId, "--head", `sha256:${"ab".repeat(32)}`, "--json"]);
    expect(wrong.code).toBe(1);
    expect((JSON.parse(wrong.stdout) as VerifyOutcome).checks.find((c) => c.check === "anchored head")?.status).toBe("failed");

    expect(dcctl(["dr", "report", runId]).stdout).toMatch(/^# Báo cáo diễn tập khôi phục thảm họa \S+: HOÀN THÀNH\n/);
    if (spawnSync("sh", ["-c", "command -v chromium"]).status === 0) {
      const pdf = join(tmp, "report.pdf");
      const t0 = Date.now();
      const printed = dcctl(["dr", "report", runId, "--pdf", pdf]);
      expect(printed.stderr).toBe("");
      expect(printed.code).toBe(0);
      expect(readFileSync(pdf).subarray(0, 5).toString()).toBe("%PDF-");
      process.stdout.write(`report.pdf by chromium in ${Date.now() - t0} ms (dcctl start included)\n`);
    }
    expect(existsSync(join(state, "dr", "runs", runId, "report.html"))).toBe(true);
  });
});
