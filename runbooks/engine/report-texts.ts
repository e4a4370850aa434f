import { translator, type Lang, type Texts, type Translate } from "../../util/i18n.js";
import { formatDuration } from "./duration.js";
import type { Deviation } from "./report-model.js";

/**
 * The texts of the DR reports (report.md, report.html), English and Vietnamese. Every entry is a whole sentence or a
 * whole table label with {{placeholders}}; values are filled in, never sentences glued together. The Vietnamese is
 * the administrative register of a provincial Data Integration Centre's reports; technical terms that Vietnamese
 * practice keeps (RPO, RTO, DR, snapshot, replica, runbook, ISO/IEC 27001, host names) stay as they are. Timestamps
 * stay ISO 8601 in both languages.
 */

const en: Texts = {
  title: {
    drill: "DR drill {{runId}}: {{status}}",
    failover: "Failover {{runId}}: {{status}}",
    failback: "Failback {{runId}}: {{status}}",
    recover: "Recovery to before an attack {{runId}}: {{status}}",
  },
  status: { ok: "OK", failed: "FAILED", interrupted: "INTERRUPTED", missed: "TARGETS MISSED" },
  siteName: { primary: "primary", secondary: "secondary" },
  unit: { minutes: "{{value}} min" },
  summary: {
    drill: "Runbook **{{runbook}}** ({{file}}) tested recovery at the **{{to}}** site without moving any service.",
    move: "Runbook **{{runbook}}** ({{file}}) moved service to the **{{to}}** site.",
    recover: "Runbook **{{runbook}}** ({{file}}) brought the service's databases back from the point-in-time archive into scratch copies at the **{{to}}** site, beside production, which it did not change.",
    ended: "It was started by {{operator}} on {{host}} at {{startedAt}} and ended at {{endedAt}} ({{duration}}).",
    open: "It was started by {{operator}} on {{host}} at {{startedAt}} and has not ended (interrupted: resume it with `dcctl dr resume {{runId}}`).",
    confirmation: "Confirmation: {{confirmedBy}}. RPO is counted from {{failedAt}}.",
    confirmationOperator: "Confirmation: {{confirmedBy}}. RPO is counted from {{failedAt}}, the time of the failure as the operator gave it (`--failed-at`).",
    confirmationProbe: "Confirmation: {{confirmedBy}}. RPO is counted from {{failedAt}}, when {{host}} first did not answer a probe of this run (no `--failed-at` given; the failure may be earlier).",
    confirmationStart: "Confirmation: {{confirmedBy}}. RPO is counted from {{failedAt}}, the start of the run (no `--failed-at` given, and no probe of a primary host went unanswered).",
    confirmationBefore: "Confirmation: {{confirmedBy}}. The data is brought back to just before {{failedAt}} (`--before`); RPO is counted from it.",
    approved: "Four eyes: asked for by {{requestedBy}} at {{requestedAt}}, approved by {{approvedBy}} at {{approvedAt}} (approval {{code}}).",
  },
  outcome: "Outcome: {{message}}",
  outcomeMissed: "Outcome: every step ended well, but targets were missed: {{list}}.",
  planned: {
    stopped: "Planned switchover: writes stopped at {{at}} until service was verified again, {{duration}} later; every replica had applied all of them before it was promoted.",
    stoppedOnly: "Planned switchover: writes stopped at {{at}}.",
    noFence: "Planned switchover: writes stopped at — (no fence ended well).",
  },
  primary: {
    touched: "Primary site: steps {{steps}} addressed primary hosts.",
    untouched: "Primary site: untouched. No step of this drill addressed a primary host (precheck only read the repository about them).",
  },
  met: "met",
  missed: "missed",
  rpoRto: {
    heading: "RPO and RTO against the DR tiers",
    service: "service",
    tier: "tier",
    target: "target",
    result: "result",
    overall: "overall",
    overallInline: "overall",
    explain:
      "RPO: the failure (or drill) start minus the time the recovered data is complete up to (a restored snapshot's time; for a promoted replica, when it last had all of its primary's writes). RTO: the run's start until the last verify step that passed.",
  },
  recovered: {
    heading: "How each standby took over",
    standby: "standby",
    of: "of",
    engine: "engine",
    path: "path",
    asOf: "data complete up to",
    why: "why",
    promoted: "replica promoted",
    restored: "restored from the repository",
  },
  loss: {
    heading: "Measured data loss",
    writes: "writes lost",
    records: "records lost",
    rpo: "RPO computed above",
    explain: "Writes lost: the last record written at the lost site minus the newest one that reached the target (data-loss steps).",
  },
  discarded: {
    heading: "Writes discarded by the reprotect",
    writes: "writes discarded",
    from: "first written",
    to: "last written",
    kept: "kept copy",
    explain:
      "Writes a former primary held past the point where its new primary's history forked (after the failover, before it was fenced): rebuilding it as a replica discarded them, as the operator said (--discard-diverged). They are lost from the databases; the kept copy holds them (WAL or binary log, its decode, the rows).",
  },
  pitr: {
    heading: "Point-in-time recovery from the archive",
    server: "server recovered",
    serverText: "{{engine}} {{host}} ({{database}}) → {{target}}:{{port}}",
    asked: "point asked",
    reached: "last transaction recovered",
    gap: "gap",
    seconds: "{{value}} s",
    next: "first transaction not applied",
    allApplied: "none: every archived change applied",
    explain:
      "The server recovered from this site's point-in-time archive (base backup and the changes after it, not a snapshot) to a point shortly before the step, into a scratch server, checked, and removed after the drill. Gap: the point asked minus the last transaction recovered, the recovery point the archive reached, against the RPO of the source's tier. A first transaction not applied, committed after the point, shows that recovery stopped at the point asked and not where the archive ended.",
  },
  steps: {
    heading: "Steps",
    step: "step",
    type: "type",
    hosts: "hosts",
    status: "status",
    attempts: "attempts",
    took: "took",
    runner: "DR runner",
    notesQuoted: "The steps' notes, as the journal records them:",
    decision: "operator decision: {{decision}} ({{reason}}, by {{by}})",
    error: "error: {{message}}",
  },
  stepStatus: { ok: "ok", failed: "failed", skipped: "skipped", cutOff: "cut-off", notRun: "not run" },
  decision: { rerun: "rerun", skip: "skip" },
  restored: {
    heading: "Data restored",
    item: "{{database}} of {{sourceHost}} → {{targetDatabase}} on {{targetHost}}, snapshot {{snapshotId}} taken {{snapshotTime}}",
  },
  checks: { heading: "Data checks", step: "step", check: "check", expected: "expected", got: "got", result: "result", ok: "ok", failed: "FAILED" },
  cleanup: {
    heading: "Clean-up",
    ok: "ok",
    failed: "failed",
    item: "{{step}}: {{status}}",
    itemMessage: "{{step}}: {{status}} — {{message}}",
    itemNotes: "{{step}}: {{status}} ({{notes}})",
    itemMessageNotes: "{{step}}: {{status}} — {{message}} ({{notes}})",
  },
  deviations: {
    heading: "Deviations",
    none: "None: every step ended well at the first attempt and the targets were met.",
  },
  deviation: {
    failed: "step {{id}} failed: {{message}}",
    failedNoMessage: "step {{id}} failed: no message",
    cutOff: "step {{id}} was cut off (started, never ended)",
    skipped: "step {{id}} was skipped by an operator decision",
    attempts_one: "step {{id}} needed {{count}} attempt",
    attempts_other: "step {{id}} needed {{count}} attempts",
    stepNote: "step {{id}}: {{note}}",
    rpoMissed: "{{service}}: RPO {{value}} min exceeds the tier {{tier}} target of {{target}} min",
    rtoMissed: "{{service}}: RTO {{value}} min exceeds the tier {{tier}} target of {{target}} min",
    discarded_one: "{{service}}: {{count}} write held by a former primary past the fork was discarded (written {{from}} – {{to}}; see the kept copy)",
    discarded_other: "{{service}}: {{count}} writes held by a former primary past the fork were discarded (written {{from}} – {{to}}; see the kept copy)",
    rtoNotMeasured: "RTO not measured: no verify step passed",
    cleanupFailed: "clean-up after {{step}} failed: {{message}}",
    resumed_one: "the run was resumed {{count}} time (see the journal for why)",
    resumed_other: "the run was resumed {{count}} times (see the journal for why)",
    note: "{{message}}",
  },
  evidence: {
    heading: "Evidence for ISO/IEC 27001:2022",
    intro: 'What the journal of this run shows for each control an auditor asks about; "not shown by this run" where the run did not show it.',
    unavailable: "Not in this report: it was written before dcctl {{version}}, which adds the evidence section.",
    a530: "A.5.30 ICT readiness for business continuity",
    a813: "A.8.13 Information backup",
    a814: "A.8.14 Redundancy of information processing facilities",
  },
  continuity: {
    measured_one: "RPO and RTO were measured against the targets of the DR tiers: {{met}} of {{count}} target met.",
    measured_other: "RPO and RTO were measured against the targets of the DR tiers: {{met}} of {{count}} targets met.",
    missed: "Targets missed: {{list}}.",
    target: "{{service}} {{measure}}",
    notMeasured: "RPO and RTO against the tier targets: not shown by this run (nothing was measured against a target).",
    deviations_one: "Deviations from the plan: {{count}}, listed under Deviations.",
    deviations_other: "Deviations from the plan: {{count}}, listed under Deviations.",
    noDeviations: "Deviations from the plan: none.",
    started: "Started by {{operator}} on {{host}} at {{at}}; confirmed by: {{confirmedBy}}.",
    resumed: "Resumed by {{operator}} at {{at}}; confirmed by: {{confirmedBy}}.",
    approved: "Approved by {{approvedBy}} at {{approvedAt}}, at the request of {{requestedBy}} made at {{requestedAt}} (four eyes, approval {{code}}).",
    ended: "Ended at {{at}}; result: {{status}}.",
    notEnded: "The run has not ended (interrupted).",
  },
  backup: {
    restored: "Snapshot {{snapshotId}} of database {{database}} of {{sourceHost}}, taken {{snapshotTime}}, was restored from repository {{repository}} into {{targetDatabase}} on {{targetHost}} (step {{step}}, ended {{at}}).",
    noRestore: "Restore from a backup: not shown by this run (no snapshot was restored).",
    prechecked: "Repository {{repository}} answered the precheck at {{at}} (step {{step}}): the newest snapshot of each target was within its tier's RPO.",
    precheckedStale: "Repository {{repository}} answered the precheck at {{at}} (step {{step}}), with snapshots older than their tier's RPO (see Deviations).",
    bothSites: "Copies at two sites: this run read the repositories of both sites.",
    oneSite: "Copies at two sites: this run read only the repository at the {{site}} site; a copy at the {{other}} site is not shown by this run.",
    noSite: "Copies at two sites: not shown by this run.",
    restoreTestOk: "Restore test on {{at}}: passed; data checks: {{passed}} of {{count}} passed.",
    restoreTestFailed: "Restore test on {{at}}: failed; data checks: {{passed}} of {{count}} passed.",
  },
  redundancy: {
    promoted: "Standby {{host}} took over from {{primary}} ({{engine}}): its replica was promoted ({{reason}}).",
    promotedLag: "Standby {{host}} took over from {{primary}} ({{engine}}): its replica was promoted; replication lag measured before the promotion: {{lag}} s.",
    restoredInstead: "Standby {{host}} took over from {{primary}} ({{engine}}), restored from the repository instead of promoted: {{reason}}.",
    noPromoteDrill: "Promotion of a standby: not shown by this run (a drill leaves the standbys replicating).",
    noPromote: "Promotion of a standby: not shown by this run.",
    served_one: "The {{site}} site ran the service: {{count}} check of {{steps}} passed on {{hosts}}, the last at {{at}}.",
    served_other: "The {{site}} site ran the service: {{count}} checks of {{steps}} passed on {{hosts}}, the last at {{at}}.",
    servedDrill_one: "The {{site}} site served the restored data: {{count}} check of {{steps}} passed on {{hosts}}, the last at {{at}}; no production service moved.",
    servedDrill_other: "The {{site}} site served the restored data: {{count}} checks of {{steps}} passed on {{hosts}}, the last at {{at}}; no production service moved.",
    notServed: "Service running at the {{site}} site: not shown by this run (no check passed there).",
  },
  confirm: {
    drill: "not needed (drill: non-disruptive)",
    recover: "not needed (recover: scratch copies beside production)",
    yes: "--yes given by {{who}}",
    typed: '{{who}} typed "{{word}}" at a terminal',
  },
  footer: {
    chained_one: "Journal: {{path}}, {{count}} record, chain head sha256:{{hash}}",
    chained_other: "Journal: {{path}}, {{count}} records, chain head sha256:{{hash}}",
    unchained_one: "Journal: {{path}}, {{count}} record, not chained (written before dcctl {{version}})",
    unchained_other: "Journal: {{path}}, {{count}} records, not chained (written before dcctl {{version}})",
    digests: "Runbook copy sha256:{{runbook}}; inventory sha256:{{inventory}}.",
    digestRunbook: "Runbook copy sha256:{{runbook}}.",
  },
  html: { generated: "Written by dcctl from the run's journal; `dcctl dr verify-report {{runId}}` checks it against the journal." },
};

const vi: Texts = {
  title: {
    drill: "Báo cáo diễn tập khôi phục thảm họa {{runId}}: {{status}}",
    failover: "Báo cáo chuyển đổi dự phòng (failover) {{runId}}: {{status}}",
    failback: "Báo cáo chuyển về hệ thống chính (failback) {{runId}}: {{status}}",
    recover: "Báo cáo khôi phục về thời điểm trước sự cố tấn công {{runId}}: {{status}}",
  },
  // A run that completed may still have missed a target: "Đạt" is kept for targets and checks.
  status: { ok: "HOÀN THÀNH", failed: "THẤT BẠI", interrupted: "BỊ GIÁN ĐOẠN", missed: "KHÔNG ĐẠT MỤC TIÊU RPO/RTO" },
  siteName: { primary: "trung tâm dữ liệu chính (primary)", secondary: "trung tâm dữ liệu dự phòng (secondary)" },
  unit: { minutes: "{{value}} phút" },
  summary: {
    drill: "Kịch bản **{{runbook}}** ({{file}}) đã kiểm tra khả năng khôi phục tại **{{to}}** mà không chuyển bất kỳ dịch vụ nào.",
    move: "Kịch bản **{{runbook}}** ({{file}}) đã chuyển dịch vụ sang **{{to}}**.",
    recover: "Kịch bản **{{runbook}}** ({{file}}) đã khôi phục cơ sở dữ liệu của dịch vụ từ kho lưu trữ theo thời điểm vào bản sao tạm tại **{{to}}**, bên cạnh hệ thống đang vận hành, không thay đổi hệ thống này.",
    ended: "Người thực hiện {{operator}} khởi động lần chạy trên máy {{host}} lúc {{startedAt}}; lần chạy kết thúc lúc {{endedAt}} (thời gian thực hiện {{duration}}).",
    open: "Người thực hiện {{operator}} khởi động lần chạy trên máy {{host}} lúc {{startedAt}}; lần chạy chưa kết thúc (bị gián đoạn, tiếp tục bằng lệnh `dcctl dr resume {{runId}}`).",
    confirmation: "Xác nhận bởi: {{confirmedBy}}. RPO được tính từ thời điểm {{failedAt}}.",
    confirmationOperator: "Xác nhận bởi: {{confirmedBy}}. RPO được tính từ thời điểm {{failedAt}}, thời điểm xảy ra sự cố do người thực hiện cung cấp (`--failed-at`).",
    confirmationProbe: "Xác nhận bởi: {{confirmedBy}}. RPO được tính từ thời điểm {{failedAt}}, lúc máy chủ {{host}} lần đầu không phản hồi lần kiểm tra của lần chạy này (không có `--failed-at`; sự cố có thể xảy ra sớm hơn).",
    confirmationStart: "Xác nhận bởi: {{confirmedBy}}. RPO được tính từ thời điểm {{failedAt}}, lúc bắt đầu lần chạy (không có `--failed-at` và mọi máy chủ chính được kiểm tra đều phản hồi).",
    confirmationBefore: "Xác nhận bởi: {{confirmedBy}}. Dữ liệu được khôi phục về ngay trước thời điểm {{failedAt}} (`--before`); RPO được tính từ thời điểm này.",
    approved: "Nguyên tắc bốn mắt: {{requestedBy}} đề nghị lúc {{requestedAt}}, {{approvedBy}} phê duyệt lúc {{approvedAt}} (mã phê duyệt {{code}}).",
  },
  outcome: "Kết quả: {{message}}",
  outcomeMissed: "Kết quả: mọi bước đều hoàn thành nhưng không đạt mục tiêu: {{list}}.",
  planned: {
    stopped: "Chuyển đổi có kế hoạch: việc ghi dữ liệu được dừng lúc {{at}} cho đến khi dịch vụ được kiểm tra lại, sau {{duration}}; mọi bản sao (replica) đã nhận đủ các thay đổi trước khi được nâng lên làm máy chủ chính.",
    stoppedOnly: "Chuyển đổi có kế hoạch: việc ghi dữ liệu được dừng lúc {{at}}.",
    noFence: "Chuyển đổi có kế hoạch: không xác định được thời điểm dừng ghi dữ liệu (không có bước fence nào hoàn thành).",
  },
  primary: {
    touched: "Trung tâm dữ liệu chính: các bước {{steps}} có tác động tới máy chủ của trung tâm chính.",
    untouched: "Trung tâm dữ liệu chính: không bị tác động. Không bước nào của lần diễn tập này tác động tới máy chủ của trung tâm chính (bước precheck chỉ đọc thông tin về các máy chủ đó từ kho sao lưu).",
  },
  met: "Đạt",
  missed: "Không đạt",
  rpoRto: {
    heading: "RPO và RTO so với mục tiêu theo cấp DR",
    service: "Dịch vụ",
    tier: "Cấp DR",
    target: "Mục tiêu",
    result: "Kết quả",
    overall: "Toàn hệ thống",
    overallInline: "toàn hệ thống",
    explain:
      "RPO: thời điểm xảy ra sự cố (hoặc bắt đầu diễn tập) trừ đi thời điểm mà dữ liệu được khôi phục còn đầy đủ (thời điểm tạo snapshot đã khôi phục; với bản sao được nâng lên làm chính, thời điểm cuối cùng bản sao có đủ mọi thay đổi của máy chủ chính). RTO: từ khi bắt đầu lần chạy đến khi bước kiểm tra (verify) cuối cùng đạt yêu cầu.",
  },
  recovered: {
    heading: "Cách thức tiếp quản của từng máy chủ dự phòng",
    standby: "Máy chủ dự phòng",
    of: "Thay cho",
    engine: "Hệ quản trị CSDL",
    path: "Cách thức",
    asOf: "Dữ liệu đầy đủ đến",
    why: "Lý do",
    promoted: "nâng bản sao (replica) lên làm chính",
    restored: "khôi phục từ kho sao lưu",
  },
  loss: {
    heading: "Lượng dữ liệu bị mất đo được",
    writes: "Khoảng thời gian ghi bị mất",
    records: "Số bản ghi bị mất",
    rpo: "RPO tính ở trên",
    explain: "Khoảng thời gian ghi bị mất: thời điểm của bản ghi cuối cùng được ghi tại nơi bị sự cố trừ đi thời điểm của bản ghi mới nhất đã có tại nơi tiếp nhận (các bước data-loss).",
  },
  discarded: {
    heading: "Dữ liệu ghi bị loại bỏ khi dựng lại bản sao (reprotect)",
    writes: "Số giao dịch ghi bị loại bỏ",
    from: "Ghi đầu tiên lúc",
    to: "Ghi cuối cùng lúc",
    kept: "Bản lưu giữ",
    explain:
      "Các giao dịch ghi mà máy chủ chính cũ còn giữ sau điểm rẽ nhánh lịch sử của máy chủ chính mới (sau khi chuyển đổi dự phòng, trước khi bị chặn ghi): khi dựng lại nó thành bản sao, các giao dịch này bị loại bỏ theo chỉ định của người vận hành (--discard-diverged). Chúng không còn trong cơ sở dữ liệu; bản lưu giữ chứa chúng (WAL hoặc binary log, bản giải mã, các dòng dữ liệu).",
  },
  pitr: {
    heading: "Khôi phục về một thời điểm từ kho lưu trữ liên tục",
    server: "Máy chủ được khôi phục",
    serverText: "{{engine}} {{host}} ({{database}}) → {{target}}:{{port}}",
    asked: "Thời điểm yêu cầu",
    reached: "Giao dịch cuối cùng được khôi phục",
    gap: "Độ chênh",
    seconds: "{{value}} giây",
    next: "Giao dịch đầu tiên không áp dụng",
    allApplied: "không có: mọi thay đổi đã lưu trữ đều được áp dụng",
    explain:
      "Máy chủ được khôi phục từ kho lưu trữ liên tục của site này (bản sao lưu nền và các thay đổi sau đó, không phải snapshot) về một thời điểm ngay trước bước này, vào một máy chủ tạm, được kiểm tra và xoá sau diễn tập. Độ chênh: thời điểm yêu cầu trừ đi thời điểm của giao dịch cuối cùng được khôi phục, tức điểm khôi phục mà kho lưu trữ đạt được, so với RPO theo cấp DR của máy chủ nguồn. Giao dịch đầu tiên không được áp dụng, xác nhận sau thời điểm yêu cầu, cho thấy quá trình khôi phục dừng đúng tại thời điểm yêu cầu chứ không phải tại chỗ kho lưu trữ kết thúc.",
  },
  steps: {
    heading: "Các bước thực hiện",
    step: "Bước",
    type: "Loại",
    hosts: "Máy chủ",
    status: "Trạng thái",
    attempts: "Số lần chạy",
    took: "Thời gian",
    runner: "máy chạy DR",
    notesQuoted: "Ghi chép của từng bước, trích nguyên văn từ nhật ký:",
    decision: "quyết định của người vận hành: {{decision}} ({{reason}}, bởi {{by}})",
    error: "lỗi: {{message}}",
  },
  stepStatus: { ok: "hoàn thành", failed: "thất bại", skipped: "bỏ qua", cutOff: "bị ngắt giữa chừng", notRun: "chưa chạy" },
  decision: { rerun: "chạy lại", skip: "bỏ qua" },
  restored: {
    heading: "Dữ liệu đã khôi phục",
    item: "CSDL {{database}} của {{sourceHost}} → {{targetDatabase}} trên {{targetHost}}, snapshot {{snapshotId}} tạo lúc {{snapshotTime}}",
  },
  checks: { heading: "Kiểm tra dữ liệu", step: "Bước", check: "Nội dung kiểm tra", expected: "Kết quả mong đợi", got: "Kết quả thực tế", result: "Đánh giá", ok: "Đạt", failed: "Không đạt" },
  cleanup: {
    heading: "Dọn dẹp sau diễn tập",
    ok: "hoàn thành",
    failed: "thất bại",
    item: "{{step}}: {{status}}",
    itemMessage: "{{step}}: {{status}} — {{message}}",
    itemNotes: "{{step}}: {{status}} ({{notes}})",
    itemMessageNotes: "{{step}}: {{status}} — {{message}} ({{notes}})",
  },
  deviations: {
    heading: "Sai lệch so với kế hoạch",
    none: "Không có: mọi bước đều hoàn thành ngay lần chạy đầu tiên và đạt các mục tiêu đề ra.",
  },
  deviation: {
    failed: "bước {{id}} thất bại: {{message}}",
    failedNoMessage: "bước {{id}} thất bại (không có thông báo lỗi)",
    cutOff: "bước {{id}} bị ngắt giữa chừng (đã bắt đầu nhưng không kết thúc)",
    skipped: "bước {{id}} được bỏ qua theo quyết định của người vận hành",
    attempts_other: "bước {{id}} phải chạy {{count}} lần",
    stepNote: "bước {{id}}: {{note}}",
    rpoMissed: "{{service}}: RPO {{value}} phút, vượt mục tiêu {{target}} phút của cấp DR {{tier}}",
    rtoMissed: "{{service}}: RTO {{value}} phút, vượt mục tiêu {{target}} phút của cấp DR {{tier}}",
    discarded_other: "{{service}}: {{count}} giao dịch ghi của máy chủ chính cũ sau điểm rẽ nhánh đã bị loại bỏ (ghi từ {{from}} đến {{to}}; xem bản lưu giữ)",
    rtoNotMeasured: "chưa đo được RTO: không có bước kiểm tra (verify) nào đạt",
    cleanupFailed: "dọn dẹp sau bước {{step}} thất bại: {{message}}",
    resumed_other: "lần chạy đã được tiếp tục {{count}} lần (lý do xem trong nhật ký)",
    note: "ghi nhận của dcctl: {{message}}",
  },
  evidence: {
    heading: "Bằng chứng phục vụ đánh giá theo ISO/IEC 27001:2022",
    intro: "Những nội dung nhật ký của lần chạy này chứng minh được đối với từng biện pháp kiểm soát; nội dung nào lần chạy không chứng minh được thì ghi “không được thể hiện qua lần chạy này”.",
    unavailable: "Báo cáo này không có mục bằng chứng: báo cáo được lập bởi phiên bản dcctl trước {{version}}, là phiên bản bổ sung mục này.",
    a530: "A.5.30 Sự sẵn sàng của công nghệ thông tin và truyền thông (ICT) cho tính liên tục của hoạt động",
    a813: "A.8.13 Sao lưu thông tin",
    a814: "A.8.14 Dự phòng các phương tiện xử lý thông tin",
  },
  continuity: {
    measured_other: "RPO và RTO đã được đo và so sánh với mục tiêu theo cấp DR: đạt {{met}}/{{count}} mục tiêu.",
    missed: "Các mục tiêu không đạt: {{list}}.",
    target: "{{measure}} của {{service}}",
    notMeasured: "Đo RPO và RTO so với mục tiêu: không được thể hiện qua lần chạy này (không có giá trị nào được đo để so sánh với mục tiêu).",
    deviations_other: "Sai lệch so với kế hoạch: {{count}}, chi tiết tại mục Sai lệch so với kế hoạch.",
    noDeviations: "Sai lệch so với kế hoạch: không có.",
    started: "Người thực hiện: {{operator}}, khởi động trên máy {{host}} lúc {{at}}; xác nhận bởi: {{confirmedBy}}.",
    resumed: "Người tiếp tục lần chạy: {{operator}}, lúc {{at}}; xác nhận bởi: {{confirmedBy}}.",
    approved: "Người phê duyệt: {{approvedBy}}, lúc {{approvedAt}}, theo đề nghị của {{requestedBy}} lúc {{requestedAt}} (nguyên tắc bốn mắt, mã phê duyệt {{code}}).",
    ended: "Kết thúc lúc {{at}}; kết quả: {{status}}.",
    notEnded: "Lần chạy chưa kết thúc (bị gián đoạn).",
  },
  backup: {
    restored: "Snapshot {{snapshotId}} của CSDL {{database}} trên {{sourceHost}}, tạo lúc {{snapshotTime}}, đã được khôi phục từ kho sao lưu {{repository}} vào {{targetDatabase}} trên {{targetHost}} (bước {{step}}, hoàn thành lúc {{at}}).",
    noRestore: "Khôi phục từ bản sao lưu: không được thể hiện qua lần chạy này (không có snapshot nào được khôi phục).",
    prechecked: "Kho sao lưu {{repository}} đã phản hồi bước kiểm tra trước (precheck) lúc {{at}} (bước {{step}}): snapshot mới nhất của từng máy chủ đều nằm trong RPO của cấp DR tương ứng.",
    precheckedStale: "Kho sao lưu {{repository}} đã phản hồi bước kiểm tra trước (precheck) lúc {{at}} (bước {{step}}), nhưng có snapshot cũ hơn RPO của cấp DR (xem mục Sai lệch so với kế hoạch).",
    bothSites: "Bản sao lưu tại hai địa điểm: lần chạy này đã sử dụng kho sao lưu của cả trung tâm dữ liệu chính và trung tâm dữ liệu dự phòng.",
    oneSite: "Bản sao lưu tại hai địa điểm: lần chạy này chỉ sử dụng kho sao lưu tại {{site}}; bản sao lưu tại {{other}} không được thể hiện qua lần chạy này.",
    noSite: "Bản sao lưu tại hai địa điểm: không được thể hiện qua lần chạy này.",
    restoreTestOk: "Kiểm thử khôi phục lúc {{at}}: Đạt; kiểm tra dữ liệu: {{passed}}/{{count}} nội dung đạt.",
    restoreTestFailed: "Kiểm thử khôi phục lúc {{at}}: Không đạt; kiểm tra dữ liệu: {{passed}}/{{count}} nội dung đạt.",
  },
  redundancy: {
    promoted: "Máy chủ dự phòng {{host}} đã tiếp quản thay cho {{primary}} ({{engine}}): bản sao (replica) được nâng lên làm chính ({{reason}}).",
    promotedLag: "Máy chủ dự phòng {{host}} đã tiếp quản thay cho {{primary}} ({{engine}}): bản sao (replica) được nâng lên làm chính; độ trễ sao chép đo được trước khi nâng: {{lag}} giây.",
    restoredInstead: "Máy chủ dự phòng {{host}} đã tiếp quản thay cho {{primary}} ({{engine}}) bằng cách khôi phục từ kho sao lưu thay vì nâng bản sao: {{reason}}.",
    noPromoteDrill: "Nâng máy chủ dự phòng lên làm chính: không được thể hiện qua lần chạy này (diễn tập giữ nguyên các máy chủ dự phòng ở chế độ sao chép).",
    noPromote: "Nâng máy chủ dự phòng lên làm chính: không được thể hiện qua lần chạy này.",
    served_other: "Dịch vụ đã vận hành tại {{site}}: {{count}} nội dung kiểm tra của bước {{steps}} đạt trên {{hosts}}, lần cuối lúc {{at}}.",
    servedDrill_other: "Dữ liệu khôi phục đã được phục vụ tại {{site}}: {{count}} nội dung kiểm tra của bước {{steps}} đạt trên {{hosts}}, lần cuối lúc {{at}}; không dịch vụ đang vận hành nào bị chuyển đi.",
    notServed: "Dịch vụ vận hành tại {{site}}: không được thể hiện qua lần chạy này (không có nội dung kiểm tra nào đạt tại đó).",
  },
  confirm: {
    drill: "không cần xác nhận (diễn tập, không gây gián đoạn dịch vụ)",
    recover: "không cần xác nhận (khôi phục vào bản sao tạm, không thay đổi hệ thống đang vận hành)",
    yes: "{{who}} dùng tuỳ chọn --yes",
    typed: "{{who}} đã gõ “{{word}}” tại terminal",
  },
  footer: {
    chained_other: "Nhật ký: {{path}}, {{count}} bản ghi, mã băm cuối chuỗi sha256:{{hash}}",
    unchained_other: "Nhật ký: {{path}}, {{count}} bản ghi, chưa liên kết chuỗi băm (ghi bởi phiên bản dcctl trước {{version}})",
    digests: "Bản sao kịch bản (runbook.yaml) sha256:{{runbook}}; danh mục hạ tầng (inventory) sha256:{{inventory}}.",
    digestRunbook: "Bản sao kịch bản (runbook.yaml) sha256:{{runbook}}.",
  },
  html: { generated: "Báo cáo do dcctl lập từ nhật ký của lần chạy; lệnh `dcctl dr verify-report {{runId}}` đối chiếu báo cáo với nhật ký." },
};

export const REPORT_TEXTS: Record<Lang, Texts> = { en, vi };

export function reportTranslator(lang: Lang): Translate {
  return translator(lang, "report", REPORT_TEXTS);
}

/** Numbers as each language writes them: 0.35 in English, 0,35 in Vietnamese. */
export function fmtNumber(lang: Lang, n: number): string {
  return lang === "vi" ? String(n).replace(".", ",") : String(n);
}

/** Like formatDuration, in the report's language. */
export function fmtDuration(lang: Lang, ms: number): string {
  if (lang === "en") return formatDuration(ms);
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1).replace(".", ",")} giây`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m} phút ${Math.round(s % 60)} giây` : `${Math.floor(m / 60)} giờ ${m % 60} phút`;
}

/** A site named in a sentence: its inventory name in English, a noun with the name in Vietnamese. */
export function siteName(lang: Lang, site: string): string {
  return site === "primary" || site === "secondary" ? reportTranslator(lang)(`siteName.${site}`) : site;
}

export function renderDeviation(lang: Lang, d: Deviation): string {
  const t = reportTranslator(lang);
  const vars: Record<string, string | number> = {};
  for (const [k, v] of Object.entries(d.vars)) vars[k] = typeof v === "number" && k !== "count" ? fmtNumber(lang, v) : v;
  if (d.vars.service === "overall") vars.service = t("rpoRto.overall");
  return t(`deviation.${d.key}`, vars);
}

/**
 * How a run was confirmed, in the report's language. The journal keeps what cli/dr.ts wrote, in English; its three
 * forms are said again in Vietnamese, anything else is quoted as recorded.
 */
export function confirmationText(lang: Lang, recorded: string): string {
  if (lang === "en") return recorded;
  const t = reportTranslator(lang);
  if (recorded.startsWith("not needed (drill")) return t("confirm.drill");
  if (recorded.startsWith("not needed (recover")) return t("confirm.recover");
  const yes = /^--yes given by (.+)$/.exec(recorded);
  if (yes?.[1]) return t("confirm.yes", { who: yes[1] });
  const typed = /^(.+) typed "(.+)" at a terminal$/.exec(recorded);
  if (typed?.[1] && typed[2]) return t("confirm.typed", { who: typed[1], word: typed[2] });
  return recorded;
}
