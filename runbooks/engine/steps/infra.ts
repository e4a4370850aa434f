import { SITE_NAMES, type SiteName } from "../../../inventory/index.js";
import { DcctlError } from "../../../util/errors.js";
import { defineStep } from "./types.js";
import { leavesProduction } from "../model.js";
import { Params } from "./params.js";

/**
 * `infra`: the Automation API brings a site stack to a DR mode. `active` on the secondary adds its application tier
 * (the activeOnly hosts); `standby` takes it away again (failback); `drill` brings up drill copies on the isolated
 * drill network, which clean-up removes.
 */
interface InfraParams {
  site: SiteName;
  mode: "standby" | "active" | "drill";
}

const MODES = ["standby", "active", "drill"] as const;

export const infraStep = defineStep<InfraParams>({
  type: "infra",
  // `pulumi up` converges on the declared state: a second run after a crash changes only what the first did not.
  idempotent: true,
  parse(raw, kind) {
    const p = new Params(raw);
    p.only("site", "mode");
    const site = p.string("site", true);
    const mode = p.string("mode", true);
    if (site !== undefined && !(SITE_NAMES as readonly string[]).includes(site)) p.problems.push({ path: ["with", "site"], message: `with.site must be one of ${SITE_NAMES.join(", ")}` });
    if (mode !== undefined && !(MODES as readonly string[]).includes(mode)) p.problems.push({ path: ["with", "mode"], message: `with.mode must be one of ${MODES.join(", ")}` });
    if (leavesProduction(kind) && mode !== undefined && mode !== "drill") {
      p.problems.push({ path: ["with", "mode"], message: `a ${kind} may only bring up drill copies (mode: drill), not mode ${mode}` });
    }
    return p.result({ site: site as SiteName, mode: mode as InfraParams["mode"] });
  },
  confirm: {
    texts: { en: { change: "pulumi up stack {{site}} with dr:mode={{mode}}" }, vi: { change: "chạy pulumi up cho stack {{site}} với dr:mode={{mode}}" } },
    change: (_p, { site, mode }, t) => t("change", { site, mode }),
  },
  plan(p, { site, mode }) {
    const activeOnly = p.hosts.filter((h) => h.activeOnly).map((h) => h.name);
    if (mode === "drill") return [`pulumi up: drill copies on the isolated drill network of stack ${site}; ${p.kind === "recover" ? "kept with the recovered copies (removed if the run fails)" : "removed after the drill"}`];
    const line = `pulumi up stack ${site} with dr:mode=${mode}`;
    return mode === "active" && activeOnly.length ? [line, `    brings up: ${activeOnly.join(", ")}`] : [line];
  },
  async run(_p, { site, mode }, ctx) {
    if (!ctx.services.infra) throw new DcctlError("infra: no Automation API driver is configured");
    return { notes: await ctx.services.infra.up(site, mode), data: { site, mode } };
  },
  async cleanup(_p, { site, mode }, ctx) {
    if (mode !== "drill" || !ctx.services.infra) return [];
    return ctx.services.infra.downDrill(site);
  },
});
