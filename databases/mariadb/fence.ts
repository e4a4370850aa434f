/** A fence: the server refuses writes from clients without SUPER (replication and dcctl's admin login still write). */
export const MARIADB_READ_ONLY_SQL = "SET GLOBAL read_only = ON;\n";
