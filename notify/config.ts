/**
 * The `notify:` section of the repositories file (backup/repositories.ts): who is told, and of what. The schema
 * there checks the shape; what a schema cannot say (an address that is not one, a URL that is not http) is checked
 * here, with a path into the file so that the loader can name the line.
 */

/** What a message is about: "failure" is a backup run with failed jobs, or a failed replicate, prune or verify; the others are the DR run kinds. */
export const NOTIFY_EVENTS = ["failure", "drill", "failover", "failback", "recover"] as const;
export type NotifyEvent = (typeof NOTIFY_EVENTS)[number];

export interface SmtpSettings {
  host: string;
  port: number;
  /** TLS from the first byte (port 465); otherwise STARTTLS when the server offers it. */
  secure: boolean;
  from: string;
  to: string[];
  user?: string;
  /** Absolute; read at each delivery, never logged. */
  passwordFile?: string;
}

export interface WebhookSettings {
  url: string;
  /** Absolute; its first line is sent as `Authorization: Bearer …`. */
  tokenFile?: string;
}

export interface NotifyConfig {
  smtp?: SmtpSettings;
  webhook?: WebhookSettings;
  /** Where `dcctl serve` answers, without a trailing slash: messages link `<consoleUrl>/runs/<runId>`. */
  consoleUrl?: string;
  on: NotifyEvent[];
}

/** The section as written in the file (after the schema accepted it). */
export interface RawNotifyConfig {
  smtp?: { host: string; port?: number; secure?: boolean; from: string; to: string[]; user?: string; passwordFile?: string };
  webhook?: { url: string; tokenFile?: string };
  consoleUrl?: string;
  on?: NotifyEvent[];
}

export interface NotifyProblem {
  path: (string | number)[];
  message: string;
}

// An address alone or "Name <address>": enough to catch a forgotten domain before the first failure needs it.
const ADDRESS = /^(?:[^<>]*<\s*)?[^\s@<>]+@[^\s@<>]+\.[^\s@<>]+(?:\s*>)?$/;

function httpUrl(text: string): boolean {
  try {
    const u = new URL(text);
    return u.protocol === "http:" || u.protocol === "https:";
  } catch {
    return false;
  }
}

/** The section with defaults and absolute paths, and whatever in it cannot work. */
export function notifyConfig(raw: RawNotifyConfig, abs: (path: string) => string): { value: NotifyConfig; problems: NotifyProblem[] } {
  const problems: NotifyProblem[] = [];
  if (!raw.smtp && !raw.webhook) problems.push({ path: ["notify"], message: "notify: name a channel: smtp, webhook or both" });
  const value: NotifyConfig = { on: raw.on ? [...new Set(raw.on)] : [...NOTIFY_EVENTS] };
  if (raw.smtp) {
    const s = raw.smtp;
    if (!ADDRESS.test(s.from)) problems.push({ path: ["notify", "smtp", "from"], message: `notify.smtp.from: "${s.from}" is not an e-mail address` });
    s.to.forEach((a, i) => {
      if (!ADDRESS.test(a)) problems.push({ path: ["notify", "smtp", "to", i], message: `notify.smtp.to.${i}: "${a}" is not an e-mail address` });
    });
    const secure = s.secure ?? s.port === 465;
    value.smtp = { host: s.host, port: s.port ?? (secure ? 465 : 587), secure, from: s.from, to: [...s.to] };
    if (s.user) value.smtp.user = s.user;
    if (s.passwordFile) value.smtp.passwordFile = abs(s.passwordFile);
  }
  if (raw.webhook) {
    if (!httpUrl(raw.webhook.url)) problems.push({ path: ["notify", "webhook", "url"], message: `notify.webhook.url: "${raw.webhook.url}" is not an http(s) URL` });
    value.webhook = { url: raw.webhook.url, ...(raw.webhook.tokenFile ? { tokenFile: abs(raw.webhook.tokenFile) } : {}) };
  }
  if (raw.consoleUrl !== undefined) {
    if (!httpUrl(raw.consoleUrl)) problems.push({ path: ["notify", "consoleUrl"], message: `notify.consoleUrl: "${raw.consoleUrl}" is not an http(s) URL` });
    value.consoleUrl = raw.consoleUrl.replace(/\/+$/, "");
  }
  return { value, problems };
}
