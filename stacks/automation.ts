import { writeFileSync, existsSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { LocalWorkspace, type PulumiFn, type Stack, type ConfigMap } from "@pulumi/pulumi/automation/index.js";
import { stringify } from "yaml";
import { cacheDir, repoRoot, toolEnv, toolPath } from "../util/tools.js";
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

/**
 * Where set-up puts pulumi-resource-vsphere, the Go plugin that serves @pulumi/vsphere's tokens (provider/vsphere);
 * the engine takes the `vsphere` plugin from here, whatever version the SDK asks for (4.17.0+dcctl).
 */
export const vspherePluginDir = join(repoRoot, "provider", "vsphere", "bin");

/** The Pulumi project name of every dcctl stack. */
export const projectName = "dcctl";

/** Where the policy analyzer is: a release's libexec/, or set-up's tool folder (where set-up writes it). */
function analyzerDir(): string {
  const found = toolPath("pulumi-analyzer-policy-nodejs");
  return isAbsolute(found) ? dirname(found) : join(cacheDir(), "bin");
}

/**
 * The workspace's Pulumi.yaml, written by us rather than through `projectSettings` because the Node SDK's type for
 * it lacks `plugins`: the vSphere provider plugin is built into this checkout, and naming it keeps the engine from
 * looking for it on PATH or downloading one.
 */
function writeProjectFile(backend: StateBackend): void {
  const project = {
    name: projectName,
    runtime: "nodejs",
    backend: { url: `file://${backend.dir}` },
    plugins: {
      providers: [{ name: "vsphere", path: vspherePluginDir }],
      analyzers: [{ name: "policy-nodejs", path: analyzerDir() }],
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
