import { join } from "node:path";
import type { Argv, CommandModule } from "yargs";
import { SITE_NAMES, loadSites, type SiteName } from "../inventory/index.js";
import { DR_MODES, type DrMode } from "../stacks/dr-mode.js";
import type { ImportOutcome } from "../stacks/import.js";
import type { PlannedResource } from "../stacks/plan.js";
import type { Stack } from "@pulumi/pulumi/automation/index.js";
import { confirmAction } from "../util/confirm.js";
import { confirmTexts } from "./confirm-texts.js";
import { operatorLang } from "./lang.js";
import { DcctlError, ExitCode, errorMessage } from "../util/errors.js";
import { readSmallFile } from "../util/files.js";
import { stateDir } from "../util/state.js";

/**
 * `dcctl infra plan|preview|up|destroy|configure|import|refresh`: the site stacks through a mock run or the Automation API.
 * The stacks (and with them the Pulumi SDK) load only when an infra command runs: every other command starts faster.
 */
const stacks = async () => {
  const [automation, infra, plan, guards, up] = await Promise.all([
    import("../stacks/automation.js"),
    import("../stacks/infra.js"),
    import("../stacks/plan.js"),
    import("../stacks/guards.js"),
    import("../stacks/up.js"),
  ]);
  return { ...automation, ...infra, ...plan, ...guards, ...up };
};

/** Refuses a stack without its vCenter connection with one line saying how to set it, instead of the engine's page of output. */
async function requireVcenter(stack: Stack, args: StackArgs, server: string): Promise<void> {
  const config = await stack.getAllConfig();
  if (!config[server]) {
    const older = config["vcenter:url"] ? " (it was stored by an older dcctl as vcenter:*, which the vsphere provider does not read)" : "";
    throw new DcctlError(
      `stack ${args.stack} has no vCenter connection in ${args.state}${older}: set it with dcctl infra configure --stack ${args.stack} --url … --user … --password-file …`,
      ExitCode.badInput,
    );
  }
}

/** The site's stack, ready for the engine: a lock left by a crashed `pulumi` cleared, and its vCenter connection present. */
async function readyStack(args: StackArgs) {
  const s = await stacks();
  const backend = s.localBackend(args.state);
  for (const note of s.clearStaleStackLocks(backend.dir, s.projectName, args.stack)) process.stderr.write(`dcctl: ${note}\n`);
  const stack = await s.siteStack(args.stack, { backend, mode: args.mode });
  await requireVcenter(stack, args, s.VSPHERE_CONFIG.server);
  return { stack, backend, s };
}

interface StackArgs {
  stack: SiteName;
  state: string;
  json: boolean;
  yes: boolean;
  mode?: DrMode;
  /** The global --lang (cli/main.ts): the confirmation's language. */
  lang?: string;
}

interface ConfigureArgs extends StackArgs {
  url: string;
  user: string;
  "password-file": string;
  insecure: boolean;
}

const defaultState = join(stateDir(), "pulumi");

function stackOptions<T>(y: Argv<T>): Argv<T & StackArgs> {
  return y
    .option("stack", { type: "string", choices: SITE_NAMES, demandOption: true, describe: "the site stack" })
    .option("state", { type: "string", default: defaultState, describe: "folder of the Pulumi state (file backend) and its passphrase" })
    .option("mode", { type: "string", choices: DR_MODES, describe: "set dr:mode on the stack (secondary: active adds the application tier)" })
    .option("json", { type: "boolean", default: false, describe: "machine-readable output" })
    .option("yes", { type: "boolean", default: false, describe: "do not ask for confirmation" }) as unknown as Argv<T & StackArgs>;
}

/** The key inputs of a planned resource, for a one-line human listing (the real provider's input names). */
function summary(r: PlannedResource): string {
  const i = r.inputs;
  const clone = i.clone as { customize?: { networkInterfaces?: { ipv4Address?: string; ipv4Netmask?: number }[] } } | undefined;
  const nic = clone?.customize?.networkInterfaces?.[0];
  const parts: [string, unknown][] = [
    ["name", r.type.endsWith(":VirtualMachine") ? undefined : i.name],
    ["folder", i.folder ?? i.path],
    ["ip", nic?.ipv4Address !== undefined ? `${nic.ipv4Address}/${String(nic.ipv4Netmask)}` : undefined],
    ["cpus", i.numCpus],
    ["memory", i.memory],
    ["vlan", i.vlanId],
    ["vms", Array.isArray(i.virtualMachineIds) ? i.virtualMachineIds.length : undefined],
  ];
  return parts.filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${String(v)}`).join(" ");
}

const plan: CommandModule<object, StackArgs> = {
  command: "plan",
  describe: "list the resources the stack declares, from a mock run (no engine, no vCenter)",
  builder: (y) => stackOptions(y),
  handler: async (args) => {
    const site = loadSites()[args.stack];
    const { planSite } = await stacks();
    const planned = await planSite(site, args.mode ?? "standby");
    if (args.json) {
      process.stdout.write(JSON.stringify(planned, null, 2) + "\n");
      return;
    }
    const width = Math.max(...planned.map((r) => r.type.length));
    for (const r of planned) process.stdout.write(`${r.type.padEnd(width)} ${r.name.padEnd(36)} ${summary(r)}\n`);
    const vms = planned.filter((r) => r.type.endsWith(":VirtualMachine")).length;
    process.stdout.write(`\n${planned.length} resources, ${vms} virtual machines (stack ${args.stack}, mode ${args.mode ?? "standby"})\n`);
  },
};

const out = (json: boolean) => (line: string) => {
  if (!json) process.stdout.write(line);
};

const preview: CommandModule<object, StackArgs> = {
  command: "preview",
  describe: "what `up` would change, with the policy pack enforced",
  builder: (y) => stackOptions(y),
  handler: async (args) => {
    const { stack, s } = await readyStack(args);
    const result = await stack.preview({ policyPacks: [s.policyPackDir], onOutput: out(args.json) }).catch((e: unknown) => {
      throw s.engineFailure(e, `pulumi preview of stack ${args.stack}`);
    });
    if (args.json) process.stdout.write(JSON.stringify(result.changeSummary) + "\n");
  },
};

const up: CommandModule<object, StackArgs> = {
  command: "up",
  describe: "apply the stack to vCenter (previews and asks first unless --yes)",
  builder: (y) => stackOptions(y),
  handler: async (args) => {
    const s = await stacks();
    const result = await s.upSiteStack(args.stack, {
      backend: s.localBackend(args.state),
      mode: args.mode,
      onNote: (note) => process.stderr.write(`dcctl: ${note}\n`),
      onOutput: out(args.json),
      opened: (stack) => requireVcenter(stack, args, s.VSPHERE_CONFIG.server),
      beforeUp: async (stack) => {
        if (args.yes) return;
        await stack.preview({ policyPacks: [s.policyPackDir], onOutput: out(args.json) }).catch((e: unknown) => {
          throw s.engineFailure(e, `pulumi preview of stack ${args.stack}`);
        });
        const lang = operatorLang(args.lang);
        await confirmAction({ yes: false, action: confirmTexts(lang)("infra.apply", { stack: args.stack }), expect: args.stack, lang });
      },
    });
    if (args.json) process.stdout.write(JSON.stringify({ result: result.summary.result, changes: result.summary.resourceChanges }) + "\n");
  },
};

const destroy: CommandModule<object, StackArgs> = {
  command: "destroy",
  describe: "remove every resource of the stack from vCenter (asks unless --yes)",
  builder: (y) => stackOptions(y),
  handler: async (args) => {
    const { stack, s } = await readyStack(args);
    const lang = operatorLang(args.lang);
    await confirmAction({ yes: args.yes, action: confirmTexts(lang)("infra.destroy", { stack: args.stack }), expect: args.stack, lang });
    const result = await stack.destroy({ onOutput: out(args.json) }).catch((e: unknown) => {
      throw s.engineFailure(e, `pulumi destroy of stack ${args.stack}`);
    });
    if (args.json) process.stdout.write(JSON.stringify({ result: result.summary.result, changes: result.summary.resourceChanges }) + "\n");
  },
};

interface RefreshArgs extends StackArgs {
  "preview-only": boolean;
}

/** `imported   vm   qn-db-01   /QN-DC1/vm/primary/db/qn-db-01   4201…`: one line per resource, VMs first. */
function importReport(outcomes: ImportOutcome[]): string {
  const vms = outcomes.filter((o) => o.kind === "vm");
  const rest = outcomes.filter((o) => o.kind !== "vm");
  const lines = [...vms, ...rest].map((o) => `${o.status.padEnd(16)} ${o.kind.padEnd(11)} ${o.name.padEnd(32)} ${o.label}${o.id && o.kind === "vm" ? `  ${o.id}` : ""}`);
  const count = (xs: ImportOutcome[]) => (["imported", "already in state", "not found"] as const).map((st) => `${xs.filter((o) => o.status === st).length} ${st}`).join(", ");
  const missing = outcomes.filter((o) => o.status === "not found").length;
  return (
    lines.join("\n") +
    `\n\n${vms.length} virtual machines: ${count(vms)}\n${rest.length} other resources: ${count(rest)}\n` +
    (missing ? `what was not found is created by the next dcctl infra up; run dcctl infra preview first\n` : "")
  );
}

const importCmd: CommandModule<object, StackArgs> = {
  command: "import",
  describe: "take the servers, folders, pools, port groups, tags and rules that already exist in vCenter into the stack's state (vCenter is not changed)",
  builder: (y) => stackOptions(y),
  handler: async (args) => {
    const { stack, backend, s } = await readyStack(args);
    await s.refuseHalfCreated(stack, args.stack, backend.dir);
    const { importSite } = await import("../stacks/import.js");
    const mode = args.mode ?? ((await stack.getAllConfig())["dr:mode"]?.value as DrMode | undefined) ?? "standby";
    const outcomes = await importSite(stack, loadSites()[args.stack], mode, { onOutput: out(args.json) });
    if (args.json) process.stdout.write(JSON.stringify({ stack: args.stack, mode, resources: outcomes }, null, 2) + "\n");
    else process.stdout.write(importReport(outcomes));
  },
};

/** One resource's drift, as a refresh found it: what vCenter holds that the state did not. */
interface Drift {
  urn: string;
  name: string;
  type: string;
  op: string;
  keys: string[];
}

const refresh: CommandModule<object, RefreshArgs> = {
  command: "refresh",
  describe: "read the stack's resources back from vCenter into the state, listing what was changed by hand (vCenter is not changed)",
  builder: (y) =>
    stackOptions(y).option("preview-only", { type: "boolean", default: false, describe: "only list the drift; leave the state as it is" }) as unknown as Argv<RefreshArgs>,
  handler: async (args) => {
    const { stack, s } = await readyStack(args);
    const drift: Drift[] = [];
    const result = await stack
      .refresh({
        previewOnly: args["preview-only"],
        onOutput: out(args.json),
        onEvent: (e) => {
          const m = e.resOutputsEvent?.metadata;
          if (!m || m.op === "same" || m.urn.includes("::pulumi:providers:") || m.type === "pulumi:pulumi:Stack") return;
          const keys = m.diffs ?? Object.keys(m.detailedDiff ?? {});
          if (m.op === "refresh" && keys.length === 0) return;
          drift.push({ urn: m.urn, name: m.urn.split("::").pop() ?? m.urn, type: m.type, op: m.op, keys });
        },
      })
      .catch((e: unknown) => {
        throw s.engineFailure(e, `pulumi refresh of stack ${args.stack}`);
      });
    if (args.json) {
      process.stdout.write(JSON.stringify({ result: result.summary.result, changes: result.summary.resourceChanges, drift }, null, 2) + "\n");
      return;
    }
    process.stdout.write(`\n${drift.length ? drift.map((d) => `drift ${d.name} (${d.type}): ${d.op} ${d.keys.join(", ")}`).join("\n") : "no drift"}\n`);
  },
};

function isHttpUrl(text: string): boolean {
  try {
    const u = new URL(text);
    return (u.protocol === "https:" || u.protocol === "http:") && u.hostname !== "";
  } catch {
    return false;
  }
}

const configure: CommandModule<object, ConfigureArgs> = {
  command: "configure",
  describe: "store the stack's vCenter address and credentials as vsphere provider config (the password as a Pulumi secret)",
  builder: (y) =>
    stackOptions(y)
      .option("url", { type: "string", demandOption: true, describe: "vCenter SDK URL, e.g. https://vcenter.example/sdk" })
      .option("user", { type: "string", demandOption: true })
      .option("password-file", { type: "string", demandOption: true, describe: "file holding the password (never pass it on the command line)" })
      .option("insecure", { type: "boolean", default: false, describe: "do not verify vCenter's TLS certificate" }) as unknown as Argv<ConfigureArgs>,
  handler: async (args) => {
    if (!isHttpUrl(args.url)) throw new DcctlError(`--url "${args.url}" is not an http(s) URL of a vCenter SDK (e.g. https://vcenter.example/sdk)`, ExitCode.badInput);
    const { siteStack, localBackend, vsphereServerOf } = await stacks();
    vsphereServerOf(args.url);
    let password: string;
    try {
      password = readSmallFile(args["password-file"], 64 * 1024).trim();
    } catch (e) {
      throw new DcctlError(`--password-file ${args["password-file"]}: ${(e as NodeJS.ErrnoException).code ?? errorMessage(e)}`, ExitCode.badInput);
    }
    await siteStack(args.stack, { backend: localBackend(args.state), mode: args.mode, vcenter: { url: args.url, user: args.user, password, insecure: args.insecure } });
    process.stdout.write(`stack ${args.stack}: vCenter ${args.url} as ${args.user} stored in ${args.state}\n`);
  },
};

export const infraCommands: CommandModule<object, object> = {
  // Its command and description are in ./commands.ts, which lists the groups without loading them.
  builder: (y) => y.command(plan).command(preview).command(up).command(destroy).command(configure).command(importCmd).command(refresh).demandCommand(1),
  handler: () => undefined,
};
