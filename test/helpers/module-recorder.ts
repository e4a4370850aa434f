import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

/**
 * A file to preload with `node --import` that records every module the process loads, one path or URL a line, into
 * $LOADED_LOG: ES modules through a loader hook, CommonJS through Module._load. Written into `dir`.
 */
export function moduleRecorder(dir: string): string {
  const hooks = join(dir, "hooks.mjs");
  const recorder = join(dir, "record.mjs");
  writeFileSync(hooks, `import { appendFileSync } from "node:fs";\nexport async function load(url, context, next) { appendFileSync(process.env.LOADED_LOG, url + "\\n"); return next(url, context); }\n`);
  writeFileSync(
    recorder,
    [
      'import Module, { register } from "node:module";',
      'import { appendFileSync } from "node:fs";',
      `register(${JSON.stringify(pathToFileURL(hooks).href)});`,
      "const load = Module._load;",
      "Module._load = function (request, parent, isMain) {",
      "  try { appendFileSync(process.env.LOADED_LOG, Module._resolveFilename(request, parent, isMain) + '\\n'); } catch {}",
      "  return load.apply(this, arguments);",
      "};",
    ].join("\n"),
  );
  return recorder;
}

/** The modules a recorded run loaded, once each. */
export function recordedModules(log: string): string[] {
  return [...new Set(readFileSync(log, "utf8").split("\n").filter(Boolean))];
}

/** The npm packages among loaded modules. */
export function packagesOf(files: string[]): Set<string> {
  return new Set(files.flatMap((f) => /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(f)?.[1] ?? []));
}

/** yargs and the layout libraries it loads: all that `dcctl --help` may load besides dcctl's own few modules. */
export const HELP_PACKAGES = /^(yargs|yargs-parser|cliui|y18n|escalade|get-caller-file|string-width|strip-ansi|ansi-regex|ansi-styles|wrap-ansi|emoji-regex|get-east-asian-width)$/;
