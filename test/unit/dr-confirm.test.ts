import { describe, expect, it } from "vitest";
import { loadSites } from "../../inventory/index.js";
import { RUN_CONFIRM_TEXTS, runChanges } from "../../runbooks/engine/confirm.js";
import { loadRunbook } from "../../runbooks/engine/load.js";
import { DISRUPTIVE_TYPES, stepModules } from "../../runbooks/engine/steps/index.js";
import type { Texts } from "../../util/i18n.js";

// Each runbook step module names its own change for the confirmation of a failover or failback.
describe("the confirmation of a DR run, from the step modules", () => {
  const sites = loadSites();

  it("has a phrase for every step type that changes production, in both languages with the same placeholders", () => {
    for (const type of DISRUPTIVE_TYPES) expect(stepModules[type].confirmTexts, type).toBeDefined();
    const flat = (t: Texts, prefix = ""): Map<string, string> => new Map(Object.entries(t).flatMap(([k, v]) => (typeof v === "string" ? [[`${prefix}${k}`, v] as const] : [...flat(v, `${prefix}${k}.`)])));
    const vars = (s: string) => [...s.matchAll(/\{\{(\w+)\}\}/g)].map((m) => m[1]).sort().join(",");
    const en = flat(RUN_CONFIRM_TEXTS.en);
    const vi = flat(RUN_CONFIRM_TEXTS.vi);
    expect([...vi.keys()].sort()).toEqual([...en.keys()].sort());
    for (const [k, v] of vi) expect(vars(v), k).toBe(vars(en.get(k) ?? ""));
  });

  it("names, for the shipped failover, the fence, the promotion, the infra step and the DNS switch, in order", () => {
    const { runbook } = loadRunbook("failover", sites);
    const text = runChanges(runbook, sites, "en");
    expect(text).toMatch(/^failover to the secondary site with runbook failover: stop writes on qn-app-portal-01, /);
    const at = (s: string) => text.indexOf(s);
    expect(at("stop writes on")).toBeLessThan(at("promote standbys on"));
    expect(at("promote standbys on")).toBeLessThan(at("pulumi up stack secondary with dr:mode=active"));
    expect(text).toMatch(/switch DNS: point dichvucong\.quangninh\.gov\.vn at qn-dr-app-portal-01 \(ttl 60\)/);
    expect(text).not.toMatch(/\{\{|step\./);
  });
});
