import type { Problem } from "../../../inventory/problems.js";
import { show } from "../../../inventory/problems.js";

/**
 * Small readers for a step's `with:` mapping. Each records a problem (path relative to `with`) instead of throwing,
 * so that the loader can report every mistake of a runbook at once.
 */
export class Params {
  readonly problems: Problem[] = [];
  constructor(
    private readonly raw: Record<string, unknown>,
    private readonly prefix = "with",
  ) {}

  private bad(key: string | (string | number)[], message: string): undefined {
    this.problems.push({ path: ["with", ...(Array.isArray(key) ? key : [key])], message });
    return undefined;
  }

  string(key: string, required: true): string;
  string(key: string, required?: boolean): string | undefined;
  string(key: string, required = false): string | undefined {
    const v = this.raw[key];
    if (v === undefined) return required ? this.bad(key, `${this.prefix}.${key} is required`) : undefined;
    if (typeof v !== "string" || v === "") return this.bad(key, `${this.prefix}.${key} must be a non-empty string, not ${show(v)}`);
    return v;
  }

  /** A string, number or boolean, as text: an expected query result may be written `expect: 42`. */
  scalar(key: string, required = false): string | undefined {
    const v = this.raw[key];
    if (v === undefined) return required ? this.bad(key, `${this.prefix}.${key} is required`) : undefined;
    if (typeof v !== "string" && typeof v !== "number" && typeof v !== "boolean") return this.bad(key, `${this.prefix}.${key} must be a string or a number, not ${show(v)}`);
    return String(v);
  }

  number(key: string, min = 0): number | undefined {
    const v = this.raw[key];
    if (v === undefined) return undefined;
    if (typeof v !== "number" || !Number.isFinite(v) || v < min) return this.bad(key, `${this.prefix}.${key} must be a number ≥ ${min}, not ${show(v)}`);
    return v;
  }

  boolean(key: string): boolean | undefined {
    const v = this.raw[key];
    if (v === undefined) return undefined;
    if (typeof v !== "boolean") return this.bad(key, `${this.prefix}.${key} must be true or false, not ${show(v)}`);
    return v;
  }

  /** An argument vector: a non-empty list of strings (never one string for a shell to split). */
  argv(key: string, required = false, path: (string | number)[] = [key], value: unknown = this.raw[key]): string[] | undefined {
    if (value === undefined) return required ? this.bad(path, `${this.prefix}.${path.join(".")} is required (an argument vector)`) : undefined;
    if (!Array.isArray(value) || value.length === 0 || !value.every((a) => typeof a === "string")) {
      return this.bad(path, `${this.prefix}.${path.join(".")} must be an argument vector (a list of strings), not ${show(value)}`);
    }
    return value as string[];
  }

  /** A list of argument vectors. */
  argvList(key: string): string[][] | undefined {
    const v = this.raw[key];
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || v.length === 0) return this.bad(key, `${this.prefix}.${key} must be a list of argument vectors, not ${show(v)}`);
    const out = v.map((a, i) => this.argv(key, true, [key, i], a));
    return out.every((a) => a !== undefined) ? (out as string[][]) : undefined;
  }

  /** A list of mappings, each read by `item` (which gets a Params for it and its index). */
  list<T>(key: string, item: (p: Params, index: number) => T | undefined): T[] | undefined {
    const v = this.raw[key];
    if (v === undefined) return undefined;
    if (!Array.isArray(v)) return this.bad(key, `${this.prefix}.${key} must be a list`);
    const out: T[] = [];
    v.forEach((entry, i) => {
      if (typeof entry !== "object" || entry === null || Array.isArray(entry)) {
        this.bad([key, i], `${this.prefix}.${key}[${i}] must be a mapping`);
        return;
      }
      const sub = new Params(entry as Record<string, unknown>, `${this.prefix}.${key}[${i}]`);
      const value = item(sub, i);
      for (const p of sub.problems) this.problems.push({ path: ["with", key, i, ...p.path.slice(1)], message: p.message });
      if (value !== undefined) out.push(value);
    });
    return out;
  }

  /** Reports keys this type does not know, so that a misspelt parameter is not silently ignored. */
  only(...keys: string[]): void {
    for (const key of Object.keys(this.raw)) {
      if (!keys.includes(key)) this.bad(key, `unknown parameter with.${key}${keys.length ? ` (known: ${keys.join(", ")})` : ""}`);
    }
  }

  result<P>(value: P): { value?: P; problems: Problem[] } {
    return this.problems.length ? { problems: this.problems } : { value, problems: [] };
  }
}
