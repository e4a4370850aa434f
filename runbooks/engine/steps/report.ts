import { defineStep } from "./types.js";
import { Params } from "./params.js";

/** `report`: writes report.md and report.json of the run as it stands (the runner writes them again at the end). */
export const reportStep = defineStep<Record<string, never>>({
  type: "report",
  idempotent: true,
  parse(raw) {
    const p = new Params(raw);
    p.only();
    return p.result({});
  },
  plan() {
    return ["write report.md and report.json in the run's folder: steps, timings, data checks, RPO/RTO against the tiers"];
  },
  async run(_p, _params, ctx) {
    const files = await ctx.writeReport();
    return { notes: files.map((f) => `wrote ${f}`), data: {} };
  },
});
