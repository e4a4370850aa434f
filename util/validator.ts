import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import type { Options, ValidateFunction } from "ajv";

/**
 * JSON-schema validators that cost nothing at start-up. Loading ajv and compiling a schema costs ~80 ms, which every
 * dcctl start that reads a YAML file would pay; so the build (scripts/build-validators.ts, run by `npm run build`
 * and scripts/setup.sh) writes each schema's validator as ajv standalone code to dist/validators/<name>.cjs, and
 * this module loads that file. It is one validator per schema either way: the file is used only when it was made
 * from this very schema and these options (its fingerprint says so); otherwise (the sources run by vitest, or tsc
 * alone after a schema changed) ajv compiles the same schema with the same options here, on first use.
 */
export interface SchemaSpec {
  /** The generated file's name: dist/validators/<name>.cjs. */
  name: string;
  schema: object;
  options: Pick<Options, "allErrors" | "verbose" | "strict">;
}

/** A generated validator: ajv's standalone function, with the fingerprint of the spec it was made from. */
type Prebuilt = ValidateFunction & { schemaFingerprint?: unknown };

const require = createRequire(import.meta.url);

/** Where the build writes the validators: dist/validators beside dist/util (nothing there when run from source). */
export const VALIDATORS_DIR = fileURLToPath(new URL("../validators/", import.meta.url));

/** Names the exact schema and options, so that a validator built from an older schema is never used. */
export function schemaFingerprint(spec: SchemaSpec): string {
  return createHash("sha256").update(JSON.stringify([spec.schema, spec.options])).digest("hex");
}

/** The validator of a schema, made on first call: the generated one when it matches, else compiled by ajv. */
export function schemaValidator<T>(spec: SchemaSpec): () => ValidateFunction<T> {
  let validate: ValidateFunction<T> | undefined;
  return () => (validate ??= prebuilt<T>(spec) ?? compiled<T>(spec));
}

function prebuilt<T>(spec: SchemaSpec): ValidateFunction<T> | undefined {
  let fn: Prebuilt;
  try {
    fn = require(`${VALIDATORS_DIR}${spec.name}.cjs`) as Prebuilt;
  } catch {
    return undefined;
  }
  return typeof fn === "function" && fn.schemaFingerprint === schemaFingerprint(spec) ? (fn as ValidateFunction<T>) : undefined;
}

function compiled<T>(spec: SchemaSpec): ValidateFunction<T> {
  const { Ajv } = require("ajv") as typeof import("ajv");
  return new Ajv(spec.options).compile<T>(spec.schema);
}
