import { readFileSync } from "node:fs";
import { join } from "node:path";
import { build, type Plugin } from "esbuild";

/**
 * The npm packages the release bundles into its own files, with the application: those every start loads, pure
 * JavaScript that reads no file of its own by path. yargs with what it loads (cliui, y18n, yargs-parser, the string
 * width and ANSI packages) was 45 files, each a resolution, a read and a compile of its own at every start, and yaml
 * is read by every command that reads the inventory. Every other package stays the node_modules folder it is (the
 * Pulumi SDK loads its gRPC and protobuf code by path, ssh2 its native addon).
 */
const BUNDLED = new Set([
  "yargs",
  "yargs-parser",
  "cliui",
  "y18n",
  "escalade",
  "get-caller-file",
  "string-width",
  "strip-ansi",
  "ansi-regex",
  "wrap-ansi",
  "ansi-styles",
  "emoji-regex",
  "get-east-asian-width",
  "yaml",
]);

/** The package a bare import names: `@scope/name` or `name`, without a path inside it. */
function packageOf(specifier: string): string {
  const parts = specifier.split("/");
  return specifier.startsWith("@") ? parts.slice(0, 2).join("/") : (parts[0] ?? specifier);
}

/** Bare imports stay imports of node_modules (and Node's built-ins), except those of BUNDLED packages. */
const externalPackages: Plugin = {
  name: "external-packages",
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => (BUNDLED.has(packageOf(args.path)) ? undefined : { path: args.path, external: true }));
  },
};

/**
 * yargs' Node shim finds its translations (y18n's locales) by a path from its own file, which bundled is
 * dist/<folder>/<file>.js: pointed here at the yargs package the release ships in node_modules. A yargs whose shim
 * says it otherwise stops the release rather than shipping a dcctl whose help lost its translations.
 */
const yargsLocales: Plugin = {
  name: "yargs-locales",
  setup(b) {
    b.onLoad({ filter: /[/\\]yargs[/\\]lib[/\\]platform-shims[/\\]esm\.mjs$/ }, (args) => {
      const source = readFileSync(args.path, "utf8");
      const from = "resolve(__dirname, '../../../locales')";
      if (!source.includes(from)) throw new Error(`${args.path}: no ${from} to point at the shipped yargs' locales`);
      return { contents: source.replace(from, "resolve(__dirname, '../../../node_modules/yargs/locales')"), loader: "js" };
    });
  },
};

/**
 * The application bundled by esbuild into outRoot/dist: a file per entry point (given relative to dist), each lazily
 * loaded command group a chunk of its own (one file would load every group's packages, @pulumi/pulumi, ajv, fastify
 * and ssh2, at every start: 10-12x bare node against 2-3x in bench/startup.ts).
 */
export async function bundleApp(dist: string, entries: readonly string[], outRoot: string): Promise<void> {
  await build({
    entryPoints: entries.map((e) => join(dist, e)),
    outbase: dist,
    outdir: join(outRoot, "dist"),
    bundle: true,
    splitting: true,
    chunkNames: "chunks/[name]-[hash]",
    platform: "node",
    format: "esm",
    target: "node20",
    plugins: [externalPackages, yargsLocales],
    legalComments: "none",
    logLevel: "warning",
  });
}
