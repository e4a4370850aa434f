import * as pulumi from "@pulumi/pulumi";
import type { VcenterConnection } from "../connection.js";

export type Props = Record<string, unknown>;

/** One vSphere object type: how to make it, change it and remove it with govc. */
export interface ResourceHandler {
  /** Inputs that can change without replacing the object; a change to any other input replaces it. */
  readonly updatable: readonly string[];
  create(conn: VcenterConnection, inputs: Props): Promise<{ id: string; outs: Props }>;
  update?(conn: VcenterConnection, id: string, olds: Props, news: Props): Promise<Props>;
  delete(conn: VcenterConnection, id: string, props: Props): Promise<void>;
}

export function str(props: Props, key: string): string {
  const v = props[key];
  if (typeof v !== "string" || v === "") throw new Error(`input "${key}" must be a non-empty string`);
  return v;
}

export function num(props: Props, key: string): number {
  const v = props[key];
  if (typeof v !== "number" || !Number.isFinite(v)) throw new Error(`input "${key}" must be a number`);
  return v;
}

export function optStr(props: Props, key: string): string | undefined {
  const v = props[key];
  return typeof v === "string" && v !== "" ? v : undefined;
}

/**
 * Inputs as they go into the outputs kept in state. Delete gets only those outputs, so the connection stays, with
 * its password wrapped as a secret again so that the engine encrypts it.
 */
export function publicInputs(inputs: Props): Props {
  const conn = inputs.connection as Record<string, unknown> | undefined;
  if (!conn) return inputs;
  const password = { [pulumi.runtime.specialSigKey]: pulumi.runtime.specialSecretSig, value: conn.password };
  return { ...inputs, connection: { ...conn, password } };
}
