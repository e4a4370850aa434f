/** The site inventory: types, the loader/validator, and queries over loaded sites. */
export * from "./types.js";
export { loadSiteFile, loadSites, siteFilePath, sitesDir, siteSourceFile, sourceLocation, hostLocation } from "./load.js";
export { isRole, hostsByRole, allHosts, findHost, networkOf, drTierOf, standbyFor, drillNetwork, isDmzName } from "./query.js";
export type { DataPath } from "./yaml-source.js";
