import { translator, type Lang, type Texts, type Translate } from "../util/i18n.js";

/**
 * What the CLI's confirmation prompts say will change (util/confirm.ts frames them), in English and Vietnamese. Each
 * entry is a whole phrase with {{placeholders}}. A DR run's are the runbook steps' own (runbooks/engine/confirm.ts).
 */
const en: Texts = {
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
    accept: "trust snapshot {{snapshot}} of repository {{repository}} from now on, which this site judged {{overruled}}: it counts as a good backup, takes a place in retention and can be restored as the newest",
    pruneMinAge: "prune repository {{repository}} with a minAge shorter than the default {{default}} ({{policies}}): what arrived since then can be removed by retention",
  },
};

const vi: Texts = {
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
    accept: "tin cậy snapshot {{snapshot}} của kho sao lưu {{repository}} từ nay, dù site này đã đánh giá nó {{overruled}}: nó được tính là bản sao lưu tốt, có chỗ trong chính sách lưu giữ và có thể được khôi phục như bản mới nhất",
    pruneMinAge: "dọn (prune) kho sao lưu {{repository}} với minAge ngắn hơn mặc định {{default}} ({{policies}}): những gì đến trong khoảng đó có thể bị xoá theo chính sách lưu giữ",
  },
};

export const CLI_CONFIRM_TEXTS: Record<Lang, Texts> = { en, vi };

export function confirmTexts(lang: Lang): Translate {
  return translator(lang, "cli-confirm", CLI_CONFIRM_TEXTS);
}
