import { translator, type Lang, type Texts, type Translate } from "../util/i18n.js";

/**
 * What the CLI's confirmation prompts say will change (util/confirm.ts frames them), in English and Vietnamese. Each
 * entry is a whole phrase with {{placeholders}}; a runbook's list of changes is a list of such phrases.
 */
const en: Texts = {
  site: { primary: "primary", secondary: "secondary" },
  dr: {
    run: {
      drill: "drill at the {{to}} site with runbook {{runbook}}: {{changes}}",
      failover: "failover to the {{to}} site with runbook {{runbook}}: {{changes}}",
      failback: "failback to the {{to}} site with runbook {{runbook}}: {{changes}}",
    },
    fence: "stop writes on {{hosts}}",
    restore: "restore over databases on {{hosts}}",
    promote: "promote standbys on {{hosts}}",
    reprotect: "rebuild {{hosts}} as replicas (a former primary's writes past the fork are kept and refused unless --discard-diverged)",
    infra: "pulumi up stack {{site}} with dr:mode={{mode}}",
    dns: "switch DNS: {{records}}",
    dnsRecord: "point {{name}} at {{address}} (ttl {{ttl}})",
    command: "run {{step}} on {{hosts}}",
    commandRunner: "run {{step}} on the DR runner",
  },
  restore: {
    pathSnapshot: "overwrite the existing {{landing}} on {{target}} with {{path}} from snapshot {{snapshot}} of {{host}}",
    pathLatest: "overwrite the existing {{landing}} on {{target}} with {{path}} from the newest snapshot of {{host}}",
    database: "replace the existing database {{database}} on {{target}}",
  },
  infra: {
    apply: "apply these changes to stack {{stack}}",
    destroy: "destroy every VM, port group, folder and tag of stack {{stack}}",
  },
  backup: {
    unlock: "remove every lock of repository {{repository}}, live ones too ({{locks}})",
  },
};

const vi: Texts = {
  site: { primary: "trung tâm dữ liệu chính (primary)", secondary: "trung tâm dữ liệu dự phòng (secondary)" },
  dr: {
    run: {
      drill: "diễn tập tại {{to}} theo kịch bản {{runbook}}, gồm: {{changes}}",
      failover: "chuyển đổi dự phòng (failover) sang {{to}} theo kịch bản {{runbook}}, gồm: {{changes}}",
      failback: "chuyển về {{to}} (failback) theo kịch bản {{runbook}}, gồm: {{changes}}",
    },
    fence: "dừng ghi dữ liệu trên {{hosts}}",
    restore: "khôi phục đè lên cơ sở dữ liệu trên {{hosts}}",
    promote: "nâng máy chủ dự phòng {{hosts}} lên làm máy chủ chính",
    reprotect: "dựng lại {{hosts}} thành bản sao (dữ liệu máy chủ chính cũ ghi sau điểm rẽ nhánh được lưu giữ và bị từ chối nếu không có --discard-diverged)",
    infra: "chạy pulumi up cho stack {{site}} với dr:mode={{mode}}",
    dns: "chuyển bản ghi DNS: {{records}}",
    dnsRecord: "trỏ {{name}} tới {{address}} (ttl {{ttl}})",
    command: "chạy bước {{step}} trên {{hosts}}",
    commandRunner: "chạy bước {{step}} trên máy chạy DR",
  },
  restore: {
    pathSnapshot: "ghi đè nội dung đang có tại {{landing}} trên {{target}} bằng {{path}} từ snapshot {{snapshot}} của {{host}}",
    pathLatest: "ghi đè nội dung đang có tại {{landing}} trên {{target}} bằng {{path}} từ snapshot mới nhất của {{host}}",
    database: "thay thế cơ sở dữ liệu {{database}} đang có trên {{target}}",
  },
  infra: {
    apply: "áp dụng các thay đổi nêu trên vào stack {{stack}}",
    destroy: "xoá toàn bộ máy ảo, port group, thư mục và thẻ (tag) của stack {{stack}}",
  },
  backup: {
    unlock: "gỡ bỏ mọi khoá (lock) của kho sao lưu {{repository}}, kể cả khoá của tiến trình đang chạy ({{locks}})",
  },
};

export const CLI_CONFIRM_TEXTS: Record<Lang, Texts> = { en, vi };

export function confirmTexts(lang: Lang): Translate {
  return translator(lang, "cli-confirm", CLI_CONFIRM_TEXTS);
}
