import type { ConfigMap, Stack } from "@pulumi/pulumi/automation/index.js";
import { runOk } from "../util/process.js";
import { toolEnv } from "../util/tools.js";

/**
 * Sets a stack's config with no secret value on any command line. The Automation API's setAllConfig and setConfig
 * pass every value as an argument of `pulumi config set-all|set`, and /proc/<pid>/cmdline is readable by every user
 * of the machine (`ps`). So the plain values go through setAllConfig, and each secret through its own
 * `pulumi config set --secret KEY` with the value on that process's stdin, which pulumi reads when the value is
 * omitted and stdin is not a terminal. `--raw` keeps the value byte for byte (no trailing newline is stripped).
 */
export async function setStackConfig(stack: Stack, config: ConfigMap): Promise<void> {
  const entries = Object.entries(config);
  const plain = Object.fromEntries(entries.filter(([, v]) => !v.secret));
  if (Object.keys(plain).length > 0) await stack.setAllConfig(plain);
  const ws = stack.workspace;
  // The same program, folder and environment as the workspace's own commands: its backend, passphrase file and home.
  const env = toolEnv({ ...(ws.pulumiHome ? { PULUMI_HOME: ws.pulumiHome } : {}), ...ws.envVars, PULUMI_AUTOMATION_API: "true" });
  for (const [key, value] of entries) {
    if (!value.secret) continue;
    await runOk(ws.pulumiCommand.command, ["config", "set", "--secret", "--raw", "--non-interactive", "--stack", stack.name, "--", key], {
      cwd: ws.workDir,
      env,
      input: value.value,
    });
  }
}
