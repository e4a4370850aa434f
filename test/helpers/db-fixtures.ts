import type { Postgres } from "../../lab/postgres.js";
import type { Mariadb } from "../../lab/mariadb.js";

/** Row count and an order-independent-of-storage checksum of every row, per table. */
export type TableSums = Record<string, { rows: number; md5: string }>;

/** A small e-government database: Vietnamese names, NULLs, binary columns, a foreign key, a view and a function. */
export const PG_SEED = `
CREATE TABLE citizens (id int PRIMARY KEY, full_name text NOT NULL, note text, photo bytea, born date);
INSERT INTO citizens
  SELECT g,
         CASE g % 3 WHEN 0 THEN 'Nguyễn Văn A' WHEN 1 THEN 'Trần Thị Bích Ngọc' ELSE 'Lê Hoàng Phúc ' || g END,
         CASE WHEN g % 7 = 0 THEN NULL ELSE 'ghi chú số ' || g || ' — Quảng Ninh' END,
         CASE WHEN g % 5 = 0 THEN NULL ELSE decode(md5(g::text) || '00ff0a0d27', 'hex') END,
         date '1950-01-01' + g
  FROM generate_series(1, 4000) g;
CREATE TABLE dossiers (id serial PRIMARY KEY, citizen_id int REFERENCES citizens(id), title text, status text, amount numeric(12,2));
INSERT INTO dossiers (citizen_id, title, status, amount)
  SELECT 1 + g % 4000, 'Hồ sơ đăng ký kinh doanh ' || g, CASE WHEN g % 4 = 0 THEN NULL ELSE 'đã tiếp nhận' END, g * 1.25
  FROM generate_series(1, 3000) g;
CREATE VIEW open_dossiers AS SELECT * FROM dossiers WHERE status IS NOT NULL;
CREATE FUNCTION greet(name text) RETURNS text LANGUAGE sql AS $$ SELECT 'Xin chào ' || name $$;
`;

export const PG_TABLES = ["citizens", "dossiers"];

export async function pgSums(pg: Postgres, db: string, tables = PG_TABLES): Promise<TableSums> {
  const sums: TableSums = {};
  for (const t of tables) {
    const out = await pg.psql(`SELECT count(*) || ' ' || md5(coalesce(string_agg(x::text, ',' ORDER BY id), '')) FROM ${t} x;`, db);
    const [rows, md5] = out.trim().split(" ");
    sums[t] = { rows: Number(rows), md5: md5 ?? "" };
  }
  return sums;
}

export const MARIA_SEED = `
CREATE TABLE mailboxes (
  id INT PRIMARY KEY, owner VARCHAR(200) NOT NULL, quota_mb INT NULL, signature BLOB NULL, created DATETIME NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO mailboxes
  SELECT seq,
         CASE seq % 3 WHEN 0 THEN 'Nguyễn Văn A' WHEN 1 THEN 'Phạm Thị Hồng Nhung' ELSE CONCAT('Đỗ Đức Mạnh ', seq) END,
         IF(seq % 6 = 0, NULL, seq * 10),
         IF(seq % 4 = 0, NULL, UNHEX(CONCAT(MD5(seq), '00FF0A0D275C'))),
         TIMESTAMP('2024-01-01') + INTERVAL seq MINUTE
  FROM seq_1_to_4000;
CREATE TABLE messages (id INT AUTO_INCREMENT PRIMARY KEY, mailbox_id INT, subject VARCHAR(300), body TEXT NULL,
  FOREIGN KEY (mailbox_id) REFERENCES mailboxes(id)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO messages (mailbox_id, subject, body)
  SELECT 1 + seq % 4000, CONCAT('Công văn số ', seq, '/UBND'), IF(seq % 5 = 0, NULL, REPEAT('Kính gửi các sở, ban, ngành. ', 1 + seq % 4))
  FROM seq_1_to_2500;
CREATE TRIGGER messages_subject BEFORE INSERT ON messages FOR EACH ROW SET NEW.subject = TRIM(NEW.subject);
CREATE PROCEDURE count_mail(IN box INT) SELECT COUNT(*) FROM messages WHERE mailbox_id = box;
`;

export const MARIA_TABLES: Record<string, string> = {
  mailboxes: "CONCAT_WS('|', id, owner, IFNULL(quota_mb, 'NULL'), IFNULL(HEX(signature), 'NULL'), created)",
  messages: "CONCAT_WS('|', id, mailbox_id, subject, IFNULL(body, 'NULL'))",
};

export async function mariaSums(m: Mariadb, db: string): Promise<TableSums> {
  const sums: TableSums = {};
  for (const [t, row] of Object.entries(MARIA_TABLES)) {
    const out = await m.sql(`SET SESSION group_concat_max_len = 1073741824; SELECT COUNT(*), MD5(IFNULL(GROUP_CONCAT(${row} ORDER BY id SEPARATOR ','), '')) FROM ${t};`, db);
    const [rows, md5] = out.trim().split("\t");
    sums[t] = { rows: Number(rows), md5: md5 ?? "" };
  }
  return sums;
}
