import { spawnSync } from "node:child_process";
import { userInfo } from "node:os";

/**
 * Who runs dcctl, as four eyes counts people: the OS user of this process. Run through sudo by root, the user sudo
 * names (SUDO_USER): root can be anyone anyway, and sudo sets the variable itself. Any other process may set
 * SUDO_USER to what it likes, so it is not believed there.
 */
export interface OperatorIdentity {
  name: string;
  /** The uid files this process writes are owned by. */
  uid: number;
  /** "sudo": root, naming the user sudo ran it for; then files are root's and only the name inside tells who. */
  via: "os-user" | "sudo";
}

export function currentOperator(env: NodeJS.ProcessEnv = process.env): OperatorIdentity {
  const uid = process.geteuid?.() ?? userInfo().uid;
  const sudoUser = env.SUDO_USER?.trim();
  if (uid === 0 && sudoUser && sudoUser !== "root") return { name: sudoUser, uid, via: "sudo" };
  return { name: userNameOf(uid) ?? userInfo().username, uid, via: "os-user" };
}

/** The name of the operator running this process (a DR journal's operator, a request's requester). */
export function operatorName(env: NodeJS.ProcessEnv = process.env): string {
  return currentOperator(env).name;
}

const names = new Map<number, string | undefined>();

/**
 * The user name of a uid, as the system's user database says (getent: local files, LDAP or sssd alike); undefined
 * for a uid no user has. Asked once per uid.
 */
export function userNameOf(uid: number): string | undefined {
  if (names.has(uid)) return names.get(uid);
  let name: string | undefined;
  if (uid === (process.geteuid?.() ?? -1)) name = userInfo().username;
  else {
    const r = spawnSync("getent", ["passwd", String(uid)], { encoding: "utf8", timeout: 5000 });
    const first = r.status === 0 ? r.stdout.split("\n")[0]?.split(":")[0] : undefined;
    name = first || undefined;
  }
  names.set(uid, name);
  return name;
}
