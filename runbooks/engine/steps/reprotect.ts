import { join } from "node:path";
import { describeDiverged, DivergedWritesError } from "../../../databases/replication.js";
import { pairFollowedBy, replicationPairs } from "../../../backup/replication/index.js";
import { DcctlError, ExitCode, errorMessage } from "../../../util/errors.js";
import { defineStep, StepFailure, type DivergedWrites } from "./types.js";
import { Params } from "./params.js";
import { hostText } from "./on-hosts.js";

/**
 * `reprotect`: each target host becomes the replica of the other end of its replication pair, replacing what it holds
 * — a primary host follows the standby that took over (after a failover), a standby its primary again (after a
 * failback). A former primary is first measured: the writes it holds past where the other's history forked (which a
 * rewind or re-seed throws away) are kept in the run folder (`diverged/<host>/`), and the step refuses (exit 5) unless
 * the run was told to discard them (`--discard-diverged`); then what was discarded is the run's data loss (`diverged`).
 */
export const reprotectStep = defineStep<Record<string, never>>({
  type: "reprotect",
  // A host that already follows its counterpart is kept as it is; one half rebuilt is rebuilt again.
  idempotent: true,
  parse(raw) {
    const p = new Params(raw);
    p.only();
    return p.result({});
  },
  confirm: {
    texts: { en: { change: "rebuild {{hosts}} as replicas (a former primary's writes past the fork are kept and refused unless --discard-diverged)" }, vi: { change: "dựng lại {{hosts}} thành bản sao (dữ liệu máy chủ chính cũ ghi sau điểm rẽ nhánh được lưu giữ và bị từ chối nếu không có --discard-diverged)" } },
    change: (p, _params, t) => t("change", { hosts: p.hosts.map((h) => h.name).join(", ") }),
  },
  plan(p) {
    return p.hosts.map((h) => `make ${hostText(h)} the replica of its pair's other end (a former primary: rewound or re-seeded, after keeping and counting any writes it holds past the fork; refused unless --discard-diverged when it holds some)`);
  },
  async run(p, _params, ctx) {
    const replicas = ctx.services.replicas;
    if (!replicas) throw new DcctlError("reprotect: no replication control is configured (backup config)");
    const pairs = replicationPairs(ctx.sites);
    const outcomes = await Promise.allSettled(
      p.hosts.map(async (host) => {
        const pair = pairFollowedBy(pairs, host.name);
        if (!pair) return { notes: [`${host.name}: in no replication pair: nothing to do`] };
        const res = await replicas.setup(pair, { keepDir: join(ctx.runDir, "diverged", host.name), discard: ctx.discardDiverged, log: (l) => ctx.log(`${host.name}: ${l}`) });
        return { notes: [`${host.name}: ${res.action}, following ${pair.primary.name}`, ...res.notes.map((n) => `${host.name}: ${n}`)], ...(res.diverged ? { diverged: res.diverged } : {}) };
      }),
    );
    const notes: string[] = [];
    const discarded: DivergedWrites[] = [];
    const refused: DivergedWrites[] = [];
    const failed: string[] = [];
    let code: ExitCode = ExitCode.failed;
    outcomes.forEach((o, i) => {
      const name = p.hosts[i]?.name ?? "?";
      if (o.status === "fulfilled") {
        notes.push(...o.value.notes);
        if (o.value.diverged) discarded.push(o.value.diverged);
        return;
      }
      if (o.reason instanceof DivergedWritesError) refused.push(o.reason.diverged);
      if (o.reason instanceof DcctlError && o.reason.exitCode === ExitCode.notConfirmed) code = ExitCode.notConfirmed;
      failed.push(o.reason instanceof DivergedWritesError ? describeDiverged(o.reason.diverged) : `${name}: ${errorMessage(o.reason)}`);
    });
    if (failed.length) {
      const told = refused.length ? ": rebuilding discards them; to do so, run the failback again (or resume it) with --discard-diverged" : "";
      throw new StepFailure(`${failed.join("; ")}${told}`, { diverged: discarded, refused }, code);
    }
    return { notes, data: { diverged: discarded } };
  },
});
