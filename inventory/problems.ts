import type { DataPath } from "./yaml-source.js";

/** One problem found in a site file, at a path into its data; the loader turns it into `file:line: message`. */
export interface Problem {
  path: DataPath;
  message: string;
}

/** Narrowing helpers for data that has not (yet) passed the schema. */
export function asRecord(value: unknown): Record<string, unknown> | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

export function asArray(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

export function asString(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}

export function valueAt(data: unknown, path: DataPath): unknown {
  let node = data;
  for (const key of path) {
    if (Array.isArray(node) && typeof key === "number") node = node[key];
    else node = asRecord(node)?.[String(key)];
    if (node === undefined) return undefined;
  }
  return node;
}

/** Renders a field path relative to its subject: ["disks", 1, "sizeGb"] → "disks[1].sizeGb". */
export function fieldText(path: DataPath): string {
  let text = "";
  for (const key of path) text += typeof key === "number" ? `[${key}]` : text ? `.${key}` : key;
  return text;
}

const subjects: Record<string, string> = { hosts: "host", networks: "network", templates: "template" };

/**
 * Splits a path into the thing a user recognises (`host "qn-db-01"`, `network "dmz"`, `drTiers[2]`) and the rest.
 * `subject` is "" for top-level fields.
 */
export function subjectOf(data: unknown, path: DataPath): { subject: string; rest: DataPath } {
  const [list, index, ...rest] = path;
  if (typeof list === "string" && typeof index === "number") {
    const noun = subjects[list];
    const name = asString(asRecord(valueAt(data, [list, index]))?.name);
    const subject = noun && name ? `${noun} "${name}"` : `${list}[${index}]`;
    return { subject, rest };
  }
  return { subject: "", rest: path };
}

/** `host "qn-db-01": ` or "" for top-level fields. */
export function prefixFor(data: unknown, path: DataPath): string {
  const { subject } = subjectOf(data, path);
  return subject ? `${subject}: ` : "";
}

export function show(value: unknown): string {
  if (value === null || value === undefined) return "nothing";
  return JSON.stringify(value);
}

/** Levenshtein distance, for "did you mean" hints on misspelt fields. */
export function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0] ?? 0;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const saved = row[j] ?? 0;
      const cost = a[i - 1]?.toLowerCase() === b[j - 1]?.toLowerCase() ? 0 : 1;
      row[j] = Math.min((row[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, previous + cost);
      previous = saved;
    }
  }
  return row[b.length] ?? 0;
}

export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const distance = editDistance(word, candidate);
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance];
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}
