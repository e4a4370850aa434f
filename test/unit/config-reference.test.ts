import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { LIMITS_SCHEMA, DEFAULT_LIMITS } from "../../backup/limits.js";
import { DEFAULT_MIN_AGE_MS, DEFAULT_STALL_MS, POLICIES_SCHEMA } from "../../backup/policies.js";
import { DEFAULT_DRILL_EVERY_DAYS } from "../../inventory/index.js";
import { SITE_SCHEMA } from "../../inventory/schema-check.js";
import { parseDuration, parseSpan } from "../../util/duration.js";
import { REFERENCE_FILE, configurationReference } from "../../scripts/config-reference.js";

type Schema = { properties?: Record<string, Schema>; additionalProperties?: Schema | boolean; items?: Schema; default?: unknown };

/** The schema at a path of property names ("*" for a mapping's free keys, "[]" for a list's items). */
function at(schema: object, ...path: string[]): Schema {
  let s = schema as Schema;
  for (const p of path) {
    const next = p === "[]" ? s.items : p === "*" ? (typeof s.additionalProperties === "object" ? s.additionalProperties : undefined) : s.properties?.[p];
    if (!next) throw new Error(`no ${p} in the schema at ${path.join(".")}`);
    s = next;
  }
  return s;
}

describe("docs/reference/configuration.md", () => {
  it("is what npm run docs writes from the schemas now", () => {
    const committed = readFileSync(REFERENCE_FILE, "utf8").split("\n");
    const now = configurationReference().split("\n");
    const first = now.findIndex((line, i) => line !== committed[i]);
    const where = first === -1 ? (now.length === committed.length ? "" : `line ${Math.min(now.length, committed.length) + 1}`) : `line ${first + 1}`;
    // Named, so that a failure says what to do rather than printing two whole files.
    expect(where, `docs/reference/configuration.md is stale from ${where}: run npm run docs and commit it`).toBe("");
  });

  it("states the defaults the loaders apply", () => {
    const limits = Object.entries(LIMITS_SCHEMA.properties).map(([key, s]) => [key, parseDuration((s as Schema).default)]);
    expect(Object.fromEntries(limits)).toEqual({
      listing: DEFAULT_LIMITS.listingMs,
      stall: DEFAULT_LIMITS.stallMs,
      replicate: DEFAULT_LIMITS.replicateMs,
      prune: DEFAULT_LIMITS.pruneMs,
      verify: DEFAULT_LIMITS.verifyMs,
    });
    expect(parseDuration(at(POLICIES_SCHEMA.schema, "policies", "*", "stallTimeout").default)).toBe(DEFAULT_STALL_MS);
    expect(parseSpan(at(POLICIES_SCHEMA.schema, "policies", "*", "minAge").default)).toBe(DEFAULT_MIN_AGE_MS);
    expect(at(SITE_SCHEMA.schema, "drTiers", "[]", "drillEveryDays").default).toBe(DEFAULT_DRILL_EVERY_DAYS);
  });
});
