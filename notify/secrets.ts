import { readFileSync } from "node:fs";

/** The first line of a secret file, read at delivery so that a rotated password needs no restart; errors name the file only. */
export function readSecret(path: string, what: string): string {
  try {
    return (readFileSync(path, "utf8").split("\n")[0] ?? "").trim();
  } catch (e) {
    throw new Error(`cannot read ${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? "error"}`, { cause: e });
  }
}

/**
 * An error as one line, with what Node keeps in `cause` (fetch says only "fetch failed" and puts ECONNREFUSED
 * there), and any secret that a server or library echoed replaced, so that the line is safe for logs and journals.
 */
export function failureLine(err: unknown, secrets: (string | undefined)[] = []): string {
  const parts: string[] = [];
  let e: unknown = err;
  for (let depth = 0; e !== undefined && e !== null && depth < 4; depth++) {
    const text = e instanceof Error ? e.message : String(e);
    if (text && !parts.some((p) => p.includes(text))) parts.push(text);
    e = e instanceof Error ? e.cause : undefined;
  }
  let line = parts.join(": ").replace(/\s*\n\s*/g, " | ").trim() || "unknown error";
  for (const s of secrets) if (s) line = line.replaceAll(s, "***");
  return line;
}
