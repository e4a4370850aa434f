/**
 * Waits for a condition, never for a fixed time: polls `probe` every `everyMs` until it gives a value (anything but
 * undefined or false), and returns that value; past `timeoutMs` it fails naming what it waited for.
 */
export async function until<T>(what: string, probe: () => T | false | undefined, timeoutMs = 60_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
