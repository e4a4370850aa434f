import { userInfo } from "node:os";
import { run } from "../../util/process.js";

/**
 * Makes sure an unprivileged local account exists for tests (PostgreSQL refuses root; sshd refuses some things for
 * root logins, e.g. signal requests). Idempotent and safe when several test files race to create it.
 * The password field is set to `*` ("no password") rather than useradd's `!` ("locked"): with UsePAM no, sshd
 * refuses even key logins to a locked account.
 */
export async function ensureTestUser(name = "dcctl-test"): Promise<{ name: string; uid: number; home: string }> {
  if (userInfo().uid !== 0) throw new Error(`creating the test user ${name} needs root`);
  if ((await run("id", ["-u", name])).code !== 0) {
    const res = await run("useradd", ["--create-home", "--shell", "/bin/sh", name]);
    if (res.code !== 0 && (await run("id", ["-u", name])).code !== 0) throw new Error(`useradd ${name} failed: ${res.stderr.trim()}`);
  }
  await run("usermod", ["-p", "*", name]);
  const uid = Number((await run("id", ["-u", name])).stdout.trim());
  const home = (await run("getent", ["passwd", name])).stdout.split(":")[5] ?? `/home/${name}`;
  return { name, uid, home };
}
