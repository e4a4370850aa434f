import type { SmtpSettings } from "./config.js";
import type { Message } from "./message.js";
import { failureLine, readSecret } from "./secrets.js";

/**
 * Sends a message to the configured recipients over SMTP (nodemailer): STARTTLS when the server offers it on a
 * plain port, TLS from the start when `secure`. Every wait is bounded by `timeoutMs`, and aborting `signal` drops the
 * connection, so that a mail server that accepts and then says nothing cannot hold a backup run or a DR run.
 * nodemailer (some 45 modules) is loaded here, when a message goes out: every command that may notify imports this
 * module, and most runs send nothing, or send only after their own work.
 */
export async function sendMail(s: SmtpSettings, m: Message, timeoutMs: number, signal: AbortSignal): Promise<void> {
  const pass = s.passwordFile ? readSecret(s.passwordFile, "the SMTP password file") : undefined;
  const { default: nodemailer } = await import("nodemailer");
  const transport = nodemailer.createTransport({
    host: s.host,
    port: s.port,
    secure: s.secure,
    ...(s.user && pass !== undefined ? { auth: { user: s.user, pass } } : {}),
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    socketTimeout: timeoutMs,
    dnsTimeout: timeoutMs,
    logger: false,
    debug: false,
  });
  const drop = () => transport.close();
  signal.addEventListener("abort", drop, { once: true });
  try {
    const info = await transport.sendMail({
      from: s.from,
      to: s.to,
      subject: m.subject,
      text: m.text,
      ...(m.html ? { html: m.html } : {}),
      // For mail filters and for finding every message about one run.
      headers: { "X-Dcctl-Event": m.event, "X-Dcctl-Run": m.run, "X-Dcctl-Status": m.status },
    });
    const rejected = (info.rejected as (string | { address: string })[]).map((a) => (typeof a === "string" ? a : a.address));
    if (rejected.length) throw new Error(`the server refused ${rejected.join(", ")} (${info.response})`);
  } catch (e) {
    throw new Error(failureLine(e, [pass]), { cause: e });
  } finally {
    signal.removeEventListener("abort", drop);
    transport.close();
  }
}
