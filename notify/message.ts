import type { NotifyEvent } from "./config.js";

/** One thing to tell people, the same for every channel: mail renders subject and text, a webhook posts it as JSON. */
export interface Message {
  event: NotifyEvent;
  subject: string;
  /** Plain text, lines separated by "\n". */
  text: string;
  html?: string;
  /** Where to read more: the console's page of the run, or the report's path when there is no console. */
  link?: string;
  /** The backup run's or the DR run's id. */
  run: string;
  /** The run's result; "running" for what a DR run says on its way (its notify steps). */
  status: "ok" | "failed" | "running";
}

/** How one channel fared. `target` names where it went, never a secret (an address, a webhook's host). */
export interface NotifyResult {
  channel: "smtp" | "webhook";
  target: string;
  ok: boolean;
  error?: string;
  ms: number;
}
