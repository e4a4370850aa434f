import { renameSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import pg from "pg";

/**
 * The lab's "public-service portal": serves citizens' dossiers from PostgreSQL over HTTP. /health answers 200 only
 * when the database answers and holds dossiers, so that a DR verify step proves restored data is being served.
 */
export interface PortalOptions {
  listenHost: string;
  listenPort: number;
  pg: { host: string; port: number; user: string; database: string };
  /**
   * Citizens keep filing: one new dossier every `everyMs`, and after each commit the last one written goes to
   * `recordFile` (`{"code","at"}`), so that after a site is lost the lab can say what the secondary is missing.
   */
  writer?: { everyMs: number; recordFile: string };
}

/** A new dossier, numbered after the newest one, filed now. */
const FILE_DOSSIER = `INSERT INTO dossiers (id, code, citizen_name, citizen_id, procedure, agency, status, submitted_at, due_at)
  SELECT n, 'QN-2026-' || lpad(n::text, 8, '0'), 'Công dân trực tuyến', '000000000000', 'Đăng ký hộ kinh doanh', 'Sở Kế hoạch và Đầu tư',
         'received', now(), now() + interval '15 days'
  FROM (SELECT coalesce(max(id), 0) + 1 AS n FROM dossiers) AS next
  RETURNING code, submitted_at`;

function startWriter(pool: pg.Pool, w: NonNullable<PortalOptions["writer"]>): () => void {
  let busy = false;
  const timer = setInterval(() => {
    // One at a time: a database that hangs (a lost site) must not pile up inserts.
    if (busy) return;
    busy = true;
    pool
      .query<{ code: string; submitted_at: Date }>(FILE_DOSSIER)
      .then(({ rows }) => {
        const row = rows[0];
        if (!row) return;
        const tmp = `${w.recordFile}.tmp`;
        writeFileSync(tmp, JSON.stringify({ code: row.code, at: row.submitted_at.toISOString() }) + "\n");
        renameSync(tmp, w.recordFile);
      })
      // Read-only (fenced) or unreachable: nothing was written, nothing to record.
      .catch(() => undefined)
      .finally(() => (busy = false));
  }, w.everyMs);
  return () => clearInterval(timer);
}

export function startPortal(opts: PortalOptions): Promise<{ close(): Promise<void> }> {
  const pool = new pg.Pool({ ...opts.pg, max: 4, connectionTimeoutMillis: 3_000 });
  pool.on("error", () => undefined);
  const json = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { "content-type": "application/json; charset=utf-8" });
    res.end(JSON.stringify(body));
  };
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://portal");
    try {
      if (url.pathname === "/health") {
        const { rows } = await pool.query<{ n: string }>("SELECT count(*) AS n FROM dossiers");
        const n = Number(rows[0]?.n ?? 0);
        // Which database it serves: a drill's check tells its own portal (its scratch copy) from one left by another run.
        json(res, n > 0 ? 200 : 503, { status: n > 0 ? "ok" : "no data", dossiers: n, database: opts.pg.database });
        return;
      }
      const m = /^\/dossiers\/([\w-]+)$/.exec(url.pathname);
      if (m) {
        const { rows } = await pool.query("SELECT code, citizen_name, procedure, agency, status, submitted_at, due_at, decided_at FROM dossiers WHERE code = $1", [m[1]]);
        if (rows[0]) json(res, 200, rows[0]);
        else json(res, 404, { error: "no such dossier" });
        return;
      }
      if (url.pathname === "/dossiers") {
        const status = url.searchParams.get("status");
        const { rows } = await pool.query("SELECT code, citizen_name, procedure, status FROM dossiers WHERE ($1::text IS NULL OR status = $1) ORDER BY id LIMIT 50", [status]);
        json(res, 200, rows);
        return;
      }
      json(res, 404, { error: "not found" });
    } catch (e) {
      json(res, 503, { status: "database unavailable", error: e instanceof Error ? e.message : String(e) });
    }
  };
  const server = createServer((req, res) => void handle(req, res));
  const stopWriter = opts.writer ? startWriter(pool, opts.writer) : () => undefined;
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.listenPort, opts.listenHost, () =>
      resolve({
        close: async () => {
          stopWriter();
          await new Promise<void>((r) => server.close(() => r()));
          await pool.end();
        },
      }),
    );
  });
}
