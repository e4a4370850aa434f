import { createRequire } from "node:module";
import type { i18n } from "i18next";
import { InputError } from "./errors.js";

/**
 * The languages dcctl speaks to people in: reports, the console and confirmation prompts. English is the default;
 * Vietnamese for the duty room (`--lang vi`, `DCCTL_LANG=vi` or `lang: vi` in the repositories file). Machine output
 * (--json, metrics, journals) never changes with the language.
 *
 * Each module that shows text keeps its texts beside it as one `Texts` object per language, under a namespace of its
 * own, and asks for a translator: `const t = translator(lang, "report", REPORT_TEXTS)`. Keys are looked up by i18next
 * (plurals with `count`: `key_one` / `key_other`; Vietnamese has no plural forms, so `key_other` only).
 */
export const LANGS = ["en", "vi"] as const;
export type Lang = (typeof LANGS)[number];
export const DEFAULT_LANG: Lang = "en";

export interface Texts {
  [key: string]: string | Texts;
}

/** A translated text; `vars` fill `{{name}}` placeholders (never HTML-escaped: the renderer escapes). */
export type Translate = (key: string, vars?: Record<string, string | number>) => string;

let instance: i18n | undefined;

function i18nInstance(): i18n {
  if (instance) return instance;
  // Loaded here, on the first translation, and not by every command that only needs LANGS (most never translate).
  const { createInstance } = createRequire(import.meta.url)("i18next") as typeof import("i18next");
  const created = createInstance();
  // Synchronous: all texts are in the process already, and a translator must be usable the moment it is made.
  void created.init({
    initAsync: false,
    lng: DEFAULT_LANG,
    fallbackLng: DEFAULT_LANG,
    supportedLngs: [...LANGS],
    resources: {},
    interpolation: { escapeValue: false },
    returnNull: false,
  });
  instance = created;
  return created;
}

/** A translator for one namespace in one language; the texts are registered on first use. */
export function translator(lang: Lang, namespace: string, texts: Record<Lang, Texts>): Translate {
  const i = i18nInstance();
  for (const l of LANGS) if (!i.hasResourceBundle(l, namespace)) i.addResourceBundle(l, namespace, texts[l], true, false);
  const t = i.getFixedT(lang, namespace);
  return (key, vars) => t(key, vars ?? {});
}

export function isLang(value: string): value is Lang {
  return (LANGS as readonly string[]).includes(value);
}

/**
 * The language to speak: the --lang flag, else DCCTL_LANG, else the config's `lang`, else English. `source` names
 * where a bad value came from, for the one-line error.
 */
export function chooseLang(flag: string | undefined, config: string | undefined, env: NodeJS.ProcessEnv = process.env): Lang {
  const candidates: [string | undefined, string][] = [
    [flag, "--lang"],
    [env.DCCTL_LANG, "DCCTL_LANG"],
    [config, "lang in the repositories file"],
  ];
  for (const [value, source] of candidates) {
    if (value === undefined || value === "") continue;
    if (!isLang(value)) throw new InputError([`dcctl: ${source} is "${value}"; dcctl speaks ${LANGS.join(", ")}`]);
    return value;
  }
  return DEFAULT_LANG;
}
