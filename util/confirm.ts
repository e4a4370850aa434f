import { createInterface } from "node:readline/promises";
import { DcctlError, ExitCode } from "./errors.js";
import { DEFAULT_LANG, translator, type Lang, type Texts } from "./i18n.js";

export interface ConfirmOptions {
  /** --yes was given: proceed without asking. */
  yes: boolean;
  /**
   * What will be changed, in the operator's language, named in the question and in the refusal, e.g. "destroy every
   * VM of stack primary" / "xoá toàn bộ máy ảo … của stack primary". The caller words it whole (its own texts).
   */
  action: string;
  /** The word the operator must type to go ahead (a stack or host name); default "yes". */
  expect?: string;
  /** The language of the question and the refusal; default en. */
  lang?: Lang;
}

/** The frame of every confirmation; the action inside it is the caller's whole phrase. */
export const CONFIRM_TEXTS: Record<Lang, Texts> = {
  en: {
    question: 'About to {{action}}.\nType "{{expect}}" to go ahead: ',
    refused: "refusing to {{action}} without --yes: no terminal to ask for confirmation",
    declined: "not confirmed: {{action}} was not done",
  },
  vi: {
    question: 'Thao tác sắp thực hiện: {{action}}.\nGõ "{{expect}}" để tiếp tục: ',
    refused: "từ chối thực hiện khi không có --yes và không có terminal để hỏi xác nhận: {{action}}",
    declined: "không được xác nhận, thao tác chưa được thực hiện: {{action}}",
  },
};

/** The question an operator sees at the terminal. */
export function confirmQuestion(opts: Pick<ConfirmOptions, "action" | "expect" | "lang">): string {
  return translator(opts.lang ?? DEFAULT_LANG, "confirm", CONFIRM_TEXTS)("question", { action: opts.action, expect: opts.expect ?? "yes" });
}

/**
 * Asks before a destructive action. Without --yes and without a terminal there is nobody to ask: refuse (exit 5)
 * rather than guess. The operator must type the expected word; anything else stops.
 */
export async function confirmAction(opts: ConfirmOptions): Promise<void> {
  if (opts.yes) return;
  const t = translator(opts.lang ?? DEFAULT_LANG, "confirm", CONFIRM_TEXTS);
  const expect = opts.expect ?? "yes";
  if (!process.stdin.isTTY) {
    throw new DcctlError(t("refused", { action: opts.action }), ExitCode.notConfirmed);
  }
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = (await rl.question(confirmQuestion({ ...opts, expect }))).trim();
    if (answer !== expect) throw new DcctlError(t("declined", { action: opts.action }), ExitCode.notConfirmed);
  } finally {
    rl.close();
  }
}
