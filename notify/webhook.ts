import type { WebhookSettings } from "./config.js";
import type { Message } from "./message.js";
import { failureLine, readSecret } from "./secrets.js";

/** What a chat or incident system receives: one JSON object per message. */
export interface WebhookBody {
  event: Message["event"];
  subject: string;
  text: string;
  link: string | null;
  run: string;
  status: Message["status"];
}

/**
 * POSTs the message as JSON, with the token (when configured) as a bearer token. Redirects are refused: following
 * one would hand the token to wherever it points. Any answer but 2xx is a failed delivery.
 */
export async function postWebhook(w: WebhookSettings, m: Message, signal: AbortSignal): Promise<void> {
  const token = w.tokenFile ? readSecret(w.tokenFile, "the webhook token file") : undefined;
  const body: WebhookBody = { event: m.event, subject: m.subject, text: m.text, link: m.link ?? null, run: m.run, status: m.status };
  try {
    const res = await fetch(w.url, {
      method: "POST",
      headers: { "content-type": "application/json", "user-agent": "dcctl", ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
      redirect: "error",
      signal,
    });
    const answer = (await res.text()).slice(0, 200);
    if (!res.ok) throw new Error(`HTTP ${res.status} ${res.statusText}${answer.trim() ? `: ${answer.trim()}` : ""}`);
  } catch (e) {
    throw new Error(failureLine(e, [token]), { cause: e });
  }
}

/** The webhook as a log line may name it: its origin only, since chat services put their secret in the path. */
export function webhookTarget(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return "webhook";
  }
}
