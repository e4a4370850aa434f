/** JSON-schema pieces the engines' parts of the repositories file share (backup/repositories.ts assembles them). */
export const text = { type: "string", minLength: 1 } as const;
export const port = { type: "integer", minimum: 1, maximum: 65535 } as const;
export const argvSchema = { type: "array", minItems: 1, items: text } as const;
const dbList = { type: "array", items: text } as const;
/** Which databases a dump source takes: "all" or a list, less `exclude`. */
export const selection = { databases: { anyOf: [{ const: "all" }, dbList] }, exclude: dbList } as const;
