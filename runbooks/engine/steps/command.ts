import { defineStep } from "./types.js";
import { Params } from "./params.js";
import { hostText, lastLine, onHosts, runOn, shown } from "./on-hosts.js";
import { DcctlError } from "../../../util/errors.js";
import { expandArgv } from "./argv-vars.js";

/**
 * `command`: an operator script (argument vector) on each target host over SSH, or on the DR runner without targets.
 * Its arguments may name what the run made: {run}, {db:NAME} (see argv-vars.ts).
 */
interface CommandParams {
  argv: string[];
}

export const commandStep = defineStep<CommandParams>({
  type: "command",
  // Whether a script may run twice is only known to whoever wrote it: the step's own `idempotent:` decides (runner).
  idempotent: false,
  parse(raw) {
    const p = new Params(raw);
    p.only("argv");
    const argv = p.argv("argv", true);
    return p.result({ argv: argv ?? [] });
  },
  confirm: {
    texts: {
      en: { onHosts: "run {{step}} on {{hosts}}", onRunner: "run {{step}} on the DR runner" },
      vi: { onHosts: "chạy bước {{step}} trên {{hosts}}", onRunner: "chạy bước {{step}} trên máy chạy DR" },
    },
    change: (p, _params, t) => (p.hosts.length ? t("onHosts", { step: p.step.id, hosts: p.hosts.map((h) => h.name).join(", ") }) : t("onRunner", { step: p.step.id })),
  },
  plan(p, { argv }) {
    if (p.hosts.length === 0) return [`run \`${shown(argv)}\` on the DR runner`];
    return p.hosts.map((h) => `run \`${shown(argv)}\` on ${hostText(h)}`);
  },
  async run(p, params, ctx) {
    const argv = expandArgv(params.argv, { runId: ctx.runId, kind: p.kind });
    if (p.hosts.length === 0) {
      const res = await ctx.services.local.run(argv, { timeoutMs: p.step.timeoutMs });
      if (res.code !== 0) throw new DcctlError(`\`${shown(argv)}\` failed (exit ${res.code}): ${lastLine(res.stderr) || lastLine(res.stdout)}`);
      return { notes: [`DR runner: exit 0${lastLine(res.stdout) ? `: ${lastLine(res.stdout)}` : ""}`], data: {} };
    }
    return onHosts(p, async (host) => {
      const res = await runOn(ctx, p, host, argv);
      return [`exit 0${lastLine(res.stdout) ? `: ${lastLine(res.stdout)}` : ""}`];
    });
  },
});
