/**
 * A fence: the server refuses writes while its data stays readable. ALTER SYSTEM keeps it across restarts (in the data
 * directory, which is why a copy or a promotion lifts it: replication.ts).
 */
export const PG_READ_ONLY_SQL = "ALTER SYSTEM SET default_transaction_read_only = on;\nSELECT pg_reload_conf();\n";
