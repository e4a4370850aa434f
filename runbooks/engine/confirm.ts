import type { Sites } from "../../inventory/index.js";
import { translator, type Lang, type Texts } from "../../util/i18n.js";
import type { Runbook } from "./model.js";
import { planRunbook } from "./plan.js";
import { stepModules } from "./steps/index.js";

/**
 * What a failover or failback will change, in one sentence for the confirmation question (util/confirm.ts frames it),
 * in the operator's language: the run's kind and target, then each step's own phrase (its module's `confirm`).
 */
const RUN_TEXTS: Record<Lang, Texts> = {
  en: {
    site: { primary: "primary", secondary: "secondary" },
    run: {
      drill: "drill at the {{to}} site with runbook {{runbook}}: {{changes}}",
      failover: "failover to the {{to}} site with runbook {{runbook}}: {{changes}}",
      failback: "failback to the {{to}} site with runbook {{runbook}}: {{changes}}",
    },
  },
  vi: {
    site: { primary: "trung tâm dữ liệu chính (primary)", secondary: "trung tâm dữ liệu dự phòng (secondary)" },
    run: {
      drill: "diễn tập tại {{to}} theo kịch bản {{runbook}}, gồm: {{changes}}",
      failover: "chuyển đổi dự phòng (failover) sang {{to}} theo kịch bản {{runbook}}, gồm: {{changes}}",
      failback: "chuyển về {{to}} (failback) theo kịch bản {{runbook}}, gồm: {{changes}}",
    },
  },
};

function stepTexts(lang: Lang): Texts {
  return Object.fromEntries(Object.values(stepModules).flatMap((m) => (m.confirmTexts ? [[m.type, m.confirmTexts[lang]]] : [])));
}

/** Every text of the confirmation, by language: the run's own, and each step type's under `step.<type>`. */
export const RUN_CONFIRM_TEXTS: Record<Lang, Texts> = { en: { ...RUN_TEXTS.en, step: stepTexts("en") }, vi: { ...RUN_TEXTS.vi, step: stepTexts("vi") } };

export function runChanges(runbook: Runbook, sites: Sites, lang: Lang): string {
  const t = translator(lang, "dr-confirm", RUN_CONFIRM_TEXTS);
  const parts: string[] = [];
  for (const p of planRunbook(runbook, sites)) {
    const phrase = stepModules[p.step.type].confirm(p, (key, vars) => t(`step.${p.step.type}.${key}`, vars));
    if (phrase !== undefined) parts.push(phrase);
  }
  return t(`run.${runbook.kind}`, { to: t(`site.${runbook.to}`), runbook: runbook.name, changes: parts.join("; ") });
}
