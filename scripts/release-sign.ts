import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { cacheDir } from "../util/tools.js";

/**
 * Release signatures with `ssh-keygen -Y`, which every Debian host has (openssh-client), so checking one needs no
 * tool of ours: `ssh-keygen -Y verify -f ALLOWED_SIGNERS -I IDENTITY -n dcctl-release -s FILE.sig < FILE`.
 * The key is $DCCTL_RELEASE_KEY (a private key file; $DCCTL_RELEASE_SIGNER names its identity), or else a key made
 * once for this machine under the cache: good for a build's own checks, not for a province, which should publish the
 * allowed-signers line of its own key where operators fetch releases from, not beside the tarball alone.
 */

export const SIGNATURE_NAMESPACE = "dcctl-release";

export interface SigningKey {
  privateKey: string;
  identity: string;
  /** An allowed-signers file holding this key's public half, for `ssh-keygen -Y verify -f`. */
  allowedSigners: string;
}

export function releaseSigningKey(env: NodeJS.ProcessEnv = process.env): SigningKey {
  const identity = env.DCCTL_RELEASE_SIGNER ?? "release@dcctl";
  let privateKey = env.DCCTL_RELEASE_KEY;
  if (!privateKey) {
    privateKey = join(cacheDir(env), "release-key", "id_ed25519");
    if (!existsSync(privateKey)) {
      mkdirSync(dirname(privateKey), { recursive: true, mode: 0o700 });
      execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", identity, "-f", privateKey]);
    }
  }
  const pub = execFileSync("ssh-keygen", ["-y", "-f", privateKey], { encoding: "utf8" }).trim();
  const allowedSigners = `${privateKey}.allowed_signers`;
  const line = `${identity} namespaces="${SIGNATURE_NAMESPACE}" ${pub}\n`;
  if (!existsSync(allowedSigners) || readFileSync(allowedSigners, "utf8") !== line) writeFileSync(allowedSigners, line);
  return { privateKey, identity, allowedSigners };
}

/** Writes FILE.sig, and the allowed-signers file beside FILE for whoever checks it on this machine. */
export function signFile(file: string, key: SigningKey): void {
  execFileSync("ssh-keygen", ["-q", "-Y", "sign", "-f", key.privateKey, "-n", SIGNATURE_NAMESPACE, file], { stdio: ["ignore", "ignore", "inherit"] });
  writeFileSync(join(dirname(file), "allowed_signers"), readFileSync(key.allowedSigners));
}
