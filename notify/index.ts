import type { NotifyConfig, NotifyEvent } from "./config.js";
import type { Message, NotifyResult } from "./message.js";
import { errorMessage } from "../util/errors.js";
import { sendMail } from "./smtp.js";
import { postWebhook, webhookTarget } from "./webhook.js";

/**
 * Tells people through every channel of the site's `notify:` section. A delivery that fails is a result, never an
 * exception: the work it reports on (a backup, a drill, a failover) has its own outcome, which a mail server that is
 * down must not change. Every channel is bounded in time; they go out side by side.
 */

export { NOTIFY_EVENTS, notifyConfig, type NotifyConfig, type NotifyEvent, type RawNotifyConfig, type SmtpSettings, type WebhookSettings } from "./config.js";
export type { Message, NotifyResult } from "./message.js";

/** How long one channel may take, connecting included. */
export const NOTIFY_TIMEOUT_MS = 15_000;

/** Whether the site wants to hear of this kind of event (its `on:` list). */
export function wants(config: NotifyConfig | undefined, event: NotifyEvent): config is NotifyConfig {
  return config !== undefined && config.on.includes(event) && (config.smtp !== undefined || config.webhook !== undefined);
}

/** The channels in words, for a plan: "e-mail to a@b, c@d" and "webhook https://chat.example". */
export function channelNames(config: NotifyConfig | undefined): string[] {
  const out: string[] = [];
  if (config?.smtp) out.push(`e-mail to ${config.smtp.to.join(", ")}`);
  if (config?.webhook) out.push(`webhook ${webhookTarget(config.webhook.url)}`);
  return out;
}

/** Delivers `message` on every configured channel; [] when the site has none or does not want this event. */
export async function notifyAll(config: NotifyConfig | undefined, message: Message, opts: { timeoutMs?: number } = {}): Promise<NotifyResult[]> {
  if (!wants(config, message.event)) return [];
  const timeoutMs = opts.timeoutMs ?? NOTIFY_TIMEOUT_MS;
  const jobs: Promise<NotifyResult>[] = [];
  const smtp = config.smtp;
  const webhook = config.webhook;
  if (smtp) jobs.push(bounded("smtp", smtp.to.join(", "), timeoutMs, (signal) => sendMail(smtp, message, timeoutMs, signal)));
  if (webhook) jobs.push(bounded("webhook", webhookTarget(webhook.url), timeoutMs, (signal) => postWebhook(webhook, message, signal)));
  return Promise.all(jobs);
}

async function bounded(channel: NotifyResult["channel"], target: string, timeoutMs: number, send: (signal: AbortSignal) => Promise<void>): Promise<NotifyResult> {
  const t0 = Date.now();
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(new Error(`no answer within ${Math.round(timeoutMs / 1000)} s`));
    }, timeoutMs);
  });
  try {
    await Promise.race([send(controller.signal), deadline]);
    return { channel, target, ok: true, ms: Date.now() - t0 };
  } catch (e) {
    // The senders put the cause into the message already, with secrets taken out; the cause itself still holds them.
    return { channel, target, ok: false, error: errorMessage(e), ms: Date.now() - t0 };
  } finally {
    clearTimeout(timer);
  }
}

/** Each channel's outcome: "e-mail to a@b ok; webhook https://chat FAILED: HTTP 500 …". */
export function channelOutcomes(results: NotifyResult[]): string {
  return results.map((r) => `${r.channel === "smtp" ? "e-mail to" : "webhook"} ${r.target} ${r.ok ? "ok" : `FAILED: ${r.error ?? "unknown error"}`}`).join("; ");
}

/** One line for stderr or a step's notes: "notified: e-mail to a@b ok" or "notification failed: …". */
export function describeDelivery(results: NotifyResult[]): string {
  return `${results.every((r) => r.ok) ? "notified" : "notification failed"}: ${channelOutcomes(results)}`;
}
