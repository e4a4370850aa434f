import * as pulumi from "@pulumi/pulumi";
import { getMonitor } from "@pulumi/pulumi/runtime/settings.js";
import { unknownCheckingProxy, type PolicyResource, type StackValidationPolicy } from "@pulumi/policy";
import { mockLookup, vsphereMocks, type PlannedResource } from "../../stacks/plan.js";

/** A resource as the mock runtime registered it, with the dependencies the engine would record for it. */
export interface Registered extends PlannedResource {
  urn: string;
  /** Property → URNs of the resources its value came from (the engine's property dependencies). */
  propertyDependencies: Record<string, string[]>;
  dependencies: string[];
}

export interface Invoked {
  token: string;
  inputs: Record<string, unknown>;
}

/** The parts of the gRPC RegisterResourceRequest/Response that the recorder reads (the mock monitor types them any). */
interface RegisterRequest {
  getType(): string;
  getName(): string;
  getDependenciesList(): string[];
  getPropertydependenciesMap(): { forEach(cb: (deps: { getUrnsList(): string[] }, key: string) => void): void };
}
type Callback = (err: unknown, response: { getUrn(): string } | undefined) => void;
interface RecordingTarget {
  registerResource(req: RegisterRequest, callback: Callback): Promise<void>;
}

/**
 * Sets Pulumi's mocks to answer as the real vSphere provider (stacks/plan.ts: get* look-ups, realistic IDs) and records
 * every resource with its property dependencies, which the mocks' own callbacks never see, and every look-up.
 */
export async function recordVsphere(stack: string, preview = true): Promise<{ registered: Registered[]; invoked: Invoked[] }> {
  const planned = new Map<string, PlannedResource>();
  const registered: Registered[] = [];
  const invoked: Invoked[] = [];
  const mocks = vsphereMocks((r) => planned.set(`${r.type}::${r.name}`, r));
  await pulumi.runtime.setMocks(
    {
      newResource: mocks.newResource,
      call: (args) => {
        invoked.push({ token: args.token, inputs: args.inputs as Record<string, unknown> });
        return mockLookup(args.token, args.inputs as Record<string, unknown>);
      },
    },
    "dcctl",
    stack,
    preview,
  );
  const monitor = getMonitor() as unknown as RecordingTarget;
  const register = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req, callback) =>
    register(req, (err, response) => {
      const done = response && planned.get(`${req.getType()}::${req.getName()}`);
      if (done) {
        const propertyDependencies: Record<string, string[]> = {};
        req.getPropertydependenciesMap().forEach((deps, key) => (propertyDependencies[key] = deps.getUrnsList()));
        registered.push({ ...done, urn: response.getUrn(), propertyDependencies, dependencies: req.getDependenciesList() });
      }
      callback(err, response);
    });
  return { registered, invoked };
}

/** Waits until every resource has registered. */
export const settled = (resources: pulumi.Resource[]) => new Promise<void>((resolve) => pulumi.all(resources.map((r) => r.urn)).apply(() => resolve()));

/** How the engine sends a string it cannot know yet in a preview (an ID of something not yet created). */
export const UNKNOWN_STRING = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

/** Every value that is one of the given IDs, replaced by the unknown sentinel: a first preview, where no ID is known. */
export function unknownIds(value: unknown, ids: Set<string>): unknown {
  if (typeof value === "string") return ids.has(value) ? UNKNOWN_STRING : value;
  if (Array.isArray(value)) return value.map((v) => unknownIds(v, ids));
  if (value !== null && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, unknownIds(v, ids)]));
  return value;
}

/**
 * The registered resources as @pulumi/policy hands them to a stack policy: props behind its unknown-checking proxy,
 * dependencies and property dependencies as resource objects.
 */
export function policyResources(registered: Registered[], props: (r: Registered) => Record<string, unknown> = (r) => r.inputs): PolicyResource[] {
  const byUrn = new Map<string, PolicyResource>();
  const resources = registered.map((r) => {
    const pr: PolicyResource = {
      type: r.type,
      props: unknownCheckingProxy(props(r)),
      urn: r.urn,
      name: r.name,
      opts: { protect: false, ignoreChanges: [], aliases: [], customTimeouts: { createSeconds: 0, updateSeconds: 0, deleteSeconds: 0 }, additionalSecretOutputs: [] },
      dependencies: [],
      propertyDependencies: {},
      isType: (cls) => (cls as unknown as { __pulumiType?: string }).__pulumiType === r.type,
      asType: () => undefined,
    };
    byUrn.set(r.urn, pr);
    return pr;
  });
  for (const [i, r] of registered.entries()) {
    const pr = resources[i];
    if (!pr) continue;
    pr.dependencies = r.dependencies.flatMap((u) => byUrn.get(u) ?? []);
    for (const [key, urns] of Object.entries(r.propertyDependencies)) pr.propertyDependencies[key] = urns.flatMap((u) => byUrn.get(u) ?? []);
  }
  return resources;
}

/** Runs stack policies over resources as the engine would; the violations per policy name. */
export async function runPolicies(policies: StackValidationPolicy[], resources: PolicyResource[]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  for (const p of policies) {
    const seen: string[] = [];
    await p.validateStack(
      {
        resources,
        stackTags: new Map(),
        getConfig: <T extends object>() => ({}) as T,
        notApplicable: (reason?: string) => {
          throw new Error(`policy ${p.name} called notApplicable: ${reason ?? ""}`);
        },
      },
      (message) => seen.push(message),
    );
    out.set(p.name, seen);
  }
  return out;
}
