import { DcctlError } from "../../../util/errors.js";
import { defineStep } from "./types.js";
import { Params } from "./params.js";
import { hostText, onHosts } from "./on-hosts.js";

/**
 * `promote`: turns a PostgreSQL streaming standby into a primary. A server that is not in recovery (already promoted,
 * or restored from a backup rather than streaming) and a non-PostgreSQL server need nothing: a note, not a failure.
 */
export const promoteStep = defineStep<Record<string, never>>({
  type: "promote",
  // It asks pg_is_in_recovery() first, so running it again after a crash does nothing twice.
  idempotent: true,
  parse(raw) {
    const p = new Params(raw);
    p.only();
    return p.result({});
  },
  plan(p) {
    return p.hosts.map((h) =>
      h.services.includes("postgresql")
        ? `promote the PostgreSQL standby on ${hostText(h)} if it is in recovery (pg_promote)`
        : `${hostText(h)}: no streaming PostgreSQL standby (${h.services.join(", ") || "no services"}): nothing to promote`,
    );
  },
  async run(p, _params, ctx) {
    const sql = ctx.services.sql;
    return onHosts(p, async (host) => {
      if (!host.services.includes("postgresql")) return [`no streaming PostgreSQL standby: nothing to promote`];
      if (!sql) throw new DcctlError("no SQL client is configured (backup config databases)");
      const state = (await sql.query(host, "postgresql", "postgres", "SELECT pg_is_in_recovery();\n")).trim();
      if (state !== "t") return [`not in recovery: already a primary, nothing to promote`];
      await sql.query(host, "postgresql", "postgres", "SELECT pg_promote(true, 60);\n");
      return [`promoted to primary`];
    });
  },
});
