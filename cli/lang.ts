import { existsSync } from "node:fs";
import { backupConfigPath, loadBackupConfig, type BackupConfig } from "../backup/repositories.js";
import { chooseLang, type Lang } from "../util/i18n.js";

/**
 * The language to speak to the operator in: --lang, else DCCTL_LANG, else the repositories file's `lang`, else
 * English. A command that has the config loaded passes it; one that does not need it (infra) reads only its lang,
 * and a repositories file that does not load leaves the language to the other sources rather than stopping a
 * command that never needed it.
 */
export function operatorLang(flag: unknown, config?: BackupConfig): Lang {
  let configured = config?.lang;
  if (!config && existsSync(backupConfigPath())) {
    try {
      configured = loadBackupConfig().lang;
    } catch {
      configured = undefined;
    }
  }
  return chooseLang(typeof flag === "string" ? flag : undefined, configured);
}
