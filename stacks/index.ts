import { siteProgram } from "./program.js";

// The entry point for `pulumi preview|up` run with Pulumi.yaml: Pulumi calls the default export, which reads the
// stack config and the inventory and declares the site.
export default siteProgram();
