import { PolicyPack } from "@pulumi/policy";
import { policies } from "./policies.js";

// The pack's entry point (PulumiPolicy.yaml, package.json's main): constructing the pack serves it to the engine, so
// the policies live in policies.ts, which tests import without starting a server.
new PolicyPack("dcctl", { policies });
