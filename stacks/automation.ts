import { writeFileSync, existsSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join, resolve } from "node:path";
import { LocalWorkspace, type PulumiFn, type Stack, type ConfigMap } from "@pulumi/pulumi/automation/index.js";
import { stringify } from "yaml";
import { cacheDir, repoRoot, toolEnv } from "../util/tools.js";
import { makeDir } from "../util/dirs.js";
import { setStackConfig } from "./stack-config.js";

/** Where stack state lives and how its secrets are encrypted: a local file backend with a passphrase file. */
export interface StateBackend {
  /** Folder of the file backend (`pulumi login file://DIR`). */
  dir: string;
  /** File holding the passphrase that encrypts the stacks' secrets; created with a random one when absent. */
  passphraseFile: string;
}

export function localBackend(dir: string): StateBackend {
  const abs = resolve(dir);
  makeDir(abs);
  const passphraseFile = join(abs, "passphrase");
  if (!existsSync(passphraseFile)) writeFileSync(passphraseFile, randomBytes(24).toString("base64url") + "\n", { mode: 0o600 });
  return { dir: abs, passphraseFile };
}

/** Where set-up links pulumi-resource-vsphere, dcctl's Go plugin for the `vsphere` package (provider/vsphere). */
export const vspherePluginDir = join(repoRoot, "provider", "vsphere", "bin");

/** The Pulumi project name of every dcctl stack. */
export const projectName = "dcctl";

/**
 * The workspace's Pulumi.yaml, written by us rather than through `projectSettings` because the Node SDK's type for
 * it lacks `plugins`: our vSphere provider plugin is part of this checkout, and naming it keeps the engine off PATH.
 */
function writeProjectFile(backend: StateBackend): void {
  const project = {
    name: projectName,
    runtime: "nodejs",
    backend: { url: `file://${backend.dir}` },
    plugins: {
      providers: [
        { name: "dcvsphere", path: join(repoRoot, "provider", "bin") },
        // The Go plugin under the real provider's name, where set-up built it: the engine refuses a project plugin
        // folder that does not exist, so without it (no schema.json yet) the stacks on dcvsphere still run.
        ...(existsSync(join(vspherePluginDir, "pulumi-resource-vsphere")) ? [{ name: "vsphere", path: vspherePluginDir }] : []),
      ],
      analyzers: [{ name: "policy-nodejs", path: join(cacheDir(), "bin") }],
    },
  };
  writeFileSync(join(backend.dir, "Pulumi.yaml"), stringify(project));
}

/**
 * Selects (or creates) a stack that runs `program` in this process through the Automation API, with the tools from
 * set-up on PATH. Config values are set before returning; secret ones are encrypted by the backend's passphrase and
 * reach pulumi on its stdin, never on a command line (see setStackConfig).
 */
export async function inlineStack(stackName: string, program: PulumiFn, backend: StateBackend, config: ConfigMap = {}, extraEnv: Record<string, string> = {}): Promise<Stack> {
  const env = toolEnv();
  // The engine and its plugins inherit this process's environment, so the tool folders must be on our own PATH.
  process.env.PATH = env.PATH;
  writeProjectFile(backend);
  const stack = await LocalWorkspace.createOrSelectStack(
    { stackName, projectName, program },
    {
      workDir: backend.dir,
      envVars: {
        PULUMI_CONFIG_PASSPHRASE_FILE: backend.passphraseFile,
        PULUMI_SKIP_UPDATE_CHECK: "true",
        PULUMI_HOME: join(backend.dir, ".pulumi-home"),
        ...extraEnv,
      },
    },
  );
  await setStackConfig(stack, config);
  return stack;
}
