import { runSmoke } from "../lab/smoke.js";

// The README's first command runs this until the two-site lab exists: the whole tool chain, end to end.
const result = await runSmoke((line) => process.stdout.write(line + "\n"));
process.stdout.write(
  `\nsmoke: folder ${result.folderAfterUp.trim() || "(empty)"}; VM ${result.vmAfterUp.name} ${result.vmAfterUp.powerState} at ${result.vmAfterUp.ipAddress}; ` +
    `after destroy: ${result.vmsAfterDestroy.trim() ? "VMs left!" : "no VMs left"}\n`,
);
