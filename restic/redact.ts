/**
 * Removes credentials from repository locations before they reach a message or a log:
 * `rest:https://user:secret@host/repo` becomes `rest:https://user:***@host/repo`.
 * Works on any text, so restic's own error lines (which quote the URL) can go through it too.
 */
export function redactRepo(text: string): string {
  return text.replace(/(\b[a-z][a-z0-9+.-]*:\/\/)([^/\s:@]+):([^@\s/]*)@/gi, "$1$2:***@");
}

/** Squeezes a (possibly multi-line) message into one line for DcctlError. */
export function oneLine(text: string): string {
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean)
    .join(" ")
    .replace(/^Fatal:\s*/, "");
}
