//! Every word the dashboard shows, in English and Simplified Chinese side by side.
//!
//! The catalogue is one macro call: each entry names a message and gives both
//! languages, so leaving one out does not compile. Messages with placeholders are
//! whole sentences formatted with named arguments (`{key}`), never sentences glued
//! from pieces, because word order differs between the languages; `format!`
//! refuses a placeholder that one language uses and the other does not. Templates
//! call the messages on the page's [`Text`] (`{{ t.sign_out() }}`).
//!
//! Texts that come from the domain in English (validation problems, refusals) are
//! translated by [`Text::domain`] from a table of their English patterns.

use super::lang::Lang;
use crate::domain::audit::AuditAction;
use crate::domain::experiment::{FrozenField, GuardrailAction};
use crate::domain::webhook::WebhookFormat;
use crate::domain::{MetricKind, Role, Status};
use crate::report::GuardStatus;

/// The messages of one language, as a page's templates and view models ask for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Text {
    pub(crate) lang: Lang,
}

/// One entry of the catalogue, for the checks that every page is translated.
#[derive(Debug, Clone, Copy)]
pub struct Message {
    pub name: &'static str,
    pub en: &'static str,
    pub zh: &'static str,
}

macro_rules! catalogue {
    (@method $name:ident $en:literal $zh:literal) => {
        pub(crate) fn $name(self) -> &'static str {
            match self.lang {
                Lang::En => $en,
                Lang::ZhCn => $zh,
            }
        }
    };
    (@method $name:ident ($($arg:ident),+) $en:literal $zh:literal) => {
        // One argument per placeholder: evidence sentences carry many numbers.
        #[allow(clippy::too_many_arguments)]
        pub(crate) fn $name(self, $($arg: impl std::fmt::Display),+) -> String {
            match self.lang {
                Lang::En => format!($en, $($arg = $arg),+),
                Lang::ZhCn => format!($zh, $($arg = $arg),+),
            }
        }
    };
    ($($name:ident $(($($arg:ident),+))? => $en:literal, $zh:literal;)*) => {
        impl Text {
            $(catalogue!(@method $name $(($($arg),+))? $en $zh);)*
        }

        /// Every message of the dashboard in both languages.
        pub const MESSAGES: &[Message] = &[$(Message { name: stringify!($name), en: $en, zh: $zh }),*];
    };
}

catalogue! {
    // The frame of every page.
    brand => "Sluice", "Sluice";
    skip_to_content => "Skip to content", "跳到正文";
    main_navigation => "Main", "主导航";
    nav_experiments => "Experiments", "实验";
    nav_overview => "Overview", "总览";
    nav_new_experiment => "New experiment", "新建实验";
    nav_metrics => "Metrics", "指标";
    nav_planning => "Planning", "规划";
    nav_webhooks => "Webhooks", "Webhook 通知";
    nav_keys => "Keys", "密钥";
    sign_out => "Sign out", "退出登录";
    switch_language => "Language", "语言";
    page_title(page) => "{page} · Sluice", "{page} · Sluice";
    cancel => "Cancel", "取消";
    none => "None", "无";
    empty_value => "none", "无";
    problems_summary(count) => "{count} problem(s); each is also shown beside its field.",
        "共 {count} 个问题，每个问题也显示在对应字段旁。";

    // Statuses, health, roles and other values the API names in English.
    status_draft => "draft", "草稿";
    status_running => "running", "运行中";
    status_paused => "paused", "已暂停";
    status_rolled_back => "rolled back", "已回滚";
    status_shipped => "shipped", "已全量发布";
    status_stopped => "stopped", "已停止";
    health_green => "green", "正常";
    health_yellow => "yellow", "警告";
    health_red => "red", "危险";
    health => "health", "健康状况";
    role_admin => "admin", "管理员";
    role_editor => "editor", "编辑者";
    role_analyst => "analyst", "分析师";
    role_sdk => "sdk", "SDK";
    kind_conversion => "conversion", "转化";
    kind_mean => "mean", "均值";
    kind_count => "count", "次数";
    kind_ratio => "ratio", "比率";
    action_alert => "alert", "告警";
    action_pause => "pause", "暂停放量";
    action_adjust => "adjust", "回退一个阶段";
    action_rollback => "roll back", "回滚";
    audit_create => "create", "创建";
    audit_update => "update", "修改";
    audit_start => "start", "启动";
    audit_pause => "pause", "暂停";
    audit_resume => "resume", "恢复";
    audit_rollback => "roll back", "回滚";
    audit_ship => "ship", "全量发布";
    audit_stop => "stop", "停止";
    audit_advance => "advance", "进入下一阶段";
    audit_guard_rollback => "guard: roll back", "熔断：回滚";
    audit_guard_adjust => "guard: back one stage", "熔断：回退一个阶段";
    audit_guard_pause => "guard: ramp paused", "熔断：暂停放量";
    audit_guard_alert => "guard: alert", "熔断：告警";
    audit_guard_warn => "guard: warning", "熔断：警告";
    audit_guard_freeze => "guard: ramp frozen", "熔断：冻结放量";
    audit_guard_clear => "guard: clear", "熔断：恢复正常";
    audit_guard_unfreeze => "guard: ramp unfrozen", "熔断：解除冻结";
    audit_report_ready => "report ready", "报告已就绪";
    audit_key_create => "key created", "创建密钥";
    audit_key_revoke => "key revoked", "吊销密钥";
    audit_webhook_create => "webhook added", "添加 Webhook";
    audit_webhook_delete => "webhook removed", "删除 Webhook";
    audit_environment_create => "environment added", "添加环境";
    audit_user_erase => "user erased", "删除用户数据";
    all_events => "every event", "全部事件";
    delivery_pending => "pending", "等待中";
    delivery_delivered => "delivered", "已送达";
    delivery_failed => "failed", "已放弃";
    format_json => "JSON (signed)", "JSON（签名）";
    format_slack => "Slack", "Slack";
    format_feishu => "Feishu", "飞书";
    format_dingtalk => "DingTalk", "钉钉";
    format_wecom => "WeCom", "企业微信";

    // Sign-in.
    sign_in_title => "Sign in", "登录";
    sign_in_heading => "Sign in to Sluice", "登录 Sluice";
    sign_in_help => "Use an admin, editor or analyst API key (sluice key create --role editor). Your role decides what you may change.",
        "请使用管理员、编辑者或分析师的 API 密钥（sluice key create --role editor）。角色决定你能修改什么。";
    api_key => "API key", "API 密钥";
    sign_in => "Sign in", "登录";
    sdk_keys_cannot_sign_in => "SDK keys cannot sign in to the dashboard; use an admin, editor or analyst key.",
        "SDK 密钥不能登录控制台，请使用管理员、编辑者或分析师密钥。";
    unknown_key => "That key is not known. Check it and try again.", "无法识别该密钥，请检查后重试。";

    // Error pages.
    back_to_experiments => "Back to the experiments", "返回实验列表";
    status_400 => "Bad request", "请求有误";
    status_401 => "Not signed in", "未登录";
    status_403 => "Forbidden", "无权访问";
    status_404 => "Not found", "未找到";
    status_409 => "Conflict", "冲突";
    status_413 => "Too large", "内容过大";
    status_500 => "Server error", "服务器错误";
    status_503 => "Unavailable", "暂不可用";
    error_internal => "Something went wrong on the server; its log has the details.", "服务器出错了，详情请查看服务器日志。";
    error_database => "The database is unreachable; try again in a moment.", "无法连接数据库，请稍后重试。";
    error_shutting_down => "The server is shutting down; try again in a moment.", "服务器正在关闭，请稍后重试。";
    error_bad_csrf => "This form has expired or did not come from this dashboard. Reload the page and try again.",
        "此表单已过期，或并非来自本控制台。请刷新页面后重试。";
    error_unreadable_form => "The form could not be read.", "无法读取表单。";
    error_form_too_large => "The form is too large or cut short.", "表单过大或不完整。";
    error_no_such_action => "There is no such lifecycle action.", "没有这种生命周期操作。";
    error_no_such_role => "The role must be admin, editor, analyst or sdk.", "角色必须是管理员、编辑者、分析师或 SDK。";
    error_unknown_language => "The dashboard speaks English (en) and Simplified Chinese (zh-CN).", "控制台支持英语（en）和简体中文（zh-CN）。";
    error_role_refused(have, need) => "A {have} key cannot do this; it needs the {need} role.", "{have}密钥不能执行此操作，需要{need}角色。";
    error_invalid(problems) => "The input is not valid: {problems}", "输入无效：{problems}";
    error_not_found(what) => "{what} was not found.", "找不到{what}。";
    error_already_exists => "Something with this key already exists.", "已存在使用该标识的对象。";
    error_concurrent_change => "Someone else changed this at the same time; reload the page and try again.", "有人同时修改了它，请刷新页面后重试。";
    error_illegal_move(action, from) => "An experiment that is {from} cannot {action}.", "{from}的实验不能{action}。";
    error_frozen(fields) => "{fields} cannot change once the experiment has started.", "实验启动后不能再修改 {fields}。";
    error_status_via_patch => "The status changes only through the lifecycle buttons.", "状态只能通过生命周期按钮改变。";

    // The experiments page.
    experiments_title => "Experiments", "实验";
    search_by_key => "Search by key", "按标识搜索";
    status => "Status", "状态";
    all_statuses => "All statuses", "全部状态";
    filter => "Filter", "筛选";
    no_experiments => "No experiments yet.", "还没有实验。";
    no_match => "No experiment matches this filter.", "没有符合筛选条件的实验。";
    column_experiment => "Experiment", "实验";
    column_coverage => "Coverage", "覆盖率";
    column_health => "Health", "健康状况";
    column_primary_lift => "Primary lift", "主要指标提升";
    exposure_stage(coverage, stage, stages) => "{coverage} · stage {stage} of {stages}", "{coverage} · 第 {stage} 阶段，共 {stages} 阶段";
    lift_of(variant, lift) => "{variant} {lift}", "{variant} {lift}";
    pagination => "Pages", "分页";
    rows_shown(first, last, total) => "{first}–{last} of {total}", "第 {first}–{last} 个，共 {total} 个";
    previous_page => "Previous", "上一页";
    next_page => "Next", "下一页";
    page_of(number, pages) => "Page {number} of {pages}", "第 {number} 页，共 {pages} 页";
    list_separator => ", ", "、";

    // The KPI overview.
    overview_title => "KPI overview", "关键指标总览";
    overview_lead => "Every experiment that matches the filters, red first, then yellow, then green.",
        "符合筛选条件的所有实验：危险在前，其次是警告，最后是正常。";
    refreshes_itself => "Refreshes itself every 30 seconds.", "每 30 秒自动刷新。";
    all_environments => "All environments", "全部环境";
    column_stage => "Stage and coverage", "阶段与覆盖率";
    srm_flag(p) => "Sample ratio mismatch (p = {p})", "样本比例不匹配（p = {p}）";
    updated(at) => "Numbers as of {at}", "数据截至 {at}";
    cohort_applied(filters) => "Counting only users {filters}. An experiment that does not keep a segment's dimension counts nobody.",
        "仅统计{filters}的用户。未保留该维度的实验不计入任何用户。";
    overview_segment => "Kept dimension value", "保留维度取值";
    overview_segment_hint => "As DIMENSION:VALUE, for example channel:ads.", "格式为 维度:取值。";
    cohort_from(at) => "first exposed at or after {at}", "首次曝光不早于 {at}";
    cohort_to(at) => "first exposed before {at}", "首次曝光早于 {at}";
    cohort_segment(dimension, value) => "{dimension} = {value}", "{dimension} = {value}";

    // One experiment.
    lifecycle => "Lifecycle", "生命周期";
    edit => "Edit", "编辑";
    export_csv => "Export CSV", "导出 CSV";
    shipped_to(variant) => "Shipped: everyone gets {variant}.", "已全量发布：所有人都得到 {variant}。";
    definition => "Definition", "定义";
    variants => "Variants", "变体";
    column_variant => "Variant", "变体";
    column_weight => "Weight", "权重";
    column_payload => "Payload", "取值";
    control_label => "control", "对照组";
    coverage => "Coverage", "覆盖率";
    condition => "Condition", "条件";
    everyone => "everyone", "所有人";
    namespace => "Namespace", "命名空间";
    namespace_range(name, start, end) => "{name} [{start}, {end})", "{name} [{start}, {end})";
    environments => "Environments", "环境";
    every_environment => "every environment", "所有环境";
    hashed_on => "Hashed on", "哈希属性";
    seed => "seed", "哈希种子";
    hash_version => "hash version", "哈希版本";
    stages => "Stages", "阶段";
    stage_of(coverage, hold) => "{coverage}, {hold}", "{coverage}，{hold}";
    until_shipped => "until shipped", "直到全量发布";
    hold_days(count) => "at least {count} days", "至少 {count} 天";
    hold_hours(count) => "at least {count} hours", "至少 {count} 小时";
    hold_seconds(count) => "at least {count} seconds", "至少 {count} 秒";
    next_stage(at) => "The next stage begins no earlier than {at}, and only when every guardrail is green.",
        "下一阶段最早于 {at} 开始，且要求所有护栏指标均为正常。";
    guardrails => "Guardrails", "护栏指标";
    no_guardrails => "No guardrails.", "没有护栏指标。";
    guardrail_rule(metric, drop, users, action) => "{metric}: a drop of {drop} or more, once every variant has {users} users, triggers {action}",
        "{metric}：每个变体都达到 {users} 名用户后，下降 {drop} 或更多将触发“{action}”";
    status_and_evidence => "Status and evidence", "状态与证据";
    evidence(variant, metric, change, drop, p, alpha, control, treatment, users) =>
        "{variant}: {metric} {change} (max drop {drop}), always-valid one-sided p = {p} (alpha {alpha}), users {control}/{treatment} (min {users})",
        "{variant}：{metric} {change}（最大允许下降 {drop}），始终有效的单侧 p = {p}（α = {alpha}），用户数 {control}/{treatment}（最少 {users}）";
    change_vs_control(change) => "{change} vs control", "相对对照组 {change}";
    change_undefined => "change undefined", "变化无法计算";
    with_srm(evidence) => "{evidence}; sample ratio mismatch", "{evidence}；样本比例不匹配";
    srm_warning(users, p) => "Sample ratio mismatch: the users per variant ({users}) do not match the configured weights (p = {p}). Assignment or logging is broken somewhere; do not trust the results until it is found.",
        "样本比例不匹配：各变体的用户数（{users}）与配置的权重不符（p = {p}）。分组或日志记录某处有问题，找到原因之前请勿相信结果。";
    variant_users(variant, users) => "{variant} {users}", "{variant} {users}";
    results => "Results", "结果";
    backfill_note(metrics, done, total) => "Rebuilding {metrics} from the stored events: {done} of {total} users so far. Until it is done their figures count only those users, and the guard waits for them.", "正在根据已存储的事件重建 {metrics}：已完成 {done} / {total} 位用户。完成前这些指标只计入已重建的用户，熔断器暂不依据它们行动。";
    cuped_badge(days) => "CUPED · {days}-day lookback", "CUPED · 回看 {days} 天";
    cuped_explained(days) => "Each metric is adjusted by its value over the {days} days before each user's first exposure; the lift, interval and p-value are the adjusted ones.", "每个指标都用每位用户首次曝光前 {days} 天内的值进行调整；提升、区间和 p 值均为调整后的结果。";
    variance_change(change) => "variance {change}", "方差 {change}";
    cuped_theta(theta) => "CUPED θ = {theta}", "CUPED 系数 θ = {theta}";
    cuped_not_adjusted => "not CUPED-adjusted", "未经 CUPED 调整";
    cuped_not_adjusted_why => "The values before exposure could not adjust this comparison (too few users, or no variance before exposure); its figures are unadjusted.", "曝光前的值无法用于调整此比较（用户太少，或曝光前没有方差）；其数字未经调整。";
    users_pending(users) => "{users} users still in their window", "{users} 名用户仍在时间窗口内";
    no_metrics_measured => "This experiment measures no metric.", "该实验没有衡量任何指标。";
    chart_caption(title) => "Cumulative relative effect by day, {title}", "按天累计的相对效果：{title}";
    chart_title(metric, variant, baseline) => "{metric}: {variant} vs {baseline}", "{metric}：{variant} 对比 {baseline}";
    chart_summary(variant, baseline, metric, effect, day, low, high, days) =>
        "{variant} against {baseline} on {metric}: {effect} on {day} (95% interval {low} to {high}), over {days} days",
        "{metric} 上 {variant} 对比 {baseline}：{day} 为 {effect}（95% 区间 {low} 至 {high}），共 {days} 天";
    breakdown => "Breakdown", "细分";
    no_dimensions => "This experiment keeps no dimension to break results down by.", "该实验没有保留可用于细分结果的维度。";
    segment_users(users) => "{users} users", "{users} 名用户";
    audit_timeline => "Audit timeline", "审计记录";
    audit_line(action, actor) => "{action} by {actor}", "{actor} 执行了{action}";
    evidence_details => "Evidence", "证据";
    created_as(status) => "created as {status}", "创建为{status}";
    status_change(before, after) => "{before} → {after}", "{before} → {after}";
    coverage_change(before, after) => "coverage {before} → {after}", "覆盖率 {before} → {after}";
    definition_changed => "definition changed", "定义已修改";

    // The significance table.
    column_users => "Users", "用户数";
    column_mean => "Mean", "均值";
    column_lift => "Lift", "提升";
    column_ci => "CI", "置信区间";
    column_p_value => "p-value", "p 值";
    column_chance_to_win => "Chance to win", "胜出概率";
    column_significant => "Significant", "显著";
    yes => "yes", "是";
    no => "no", "否";
    baseline => "baseline", "基准";

    // Lifecycle.
    start => "Start", "启动";
    pause => "Pause", "暂停";
    resume => "Resume", "恢复";
    roll_back => "Roll back", "回滚";
    ship(variant) => "Ship {variant}", "全量发布 {variant}";
    stop => "Stop", "停止";
    confirm_title(action, key) => "{action} {key}?", "确定要对 {key} 执行“{action}”吗？";
    confirm_yes(action) => "Yes, {action}", "确定{action}";
    consequence_start(coverage) => "Users who match the condition start being split between the variants: {coverage} of them enter the experiment, and their exposures are logged. Connected apps see the change within a second.",
        "符合条件的用户开始被分配到各个变体：其中 {coverage} 进入实验，并记录他们的曝光。已连接的应用会在一秒内看到变化。";
    consequence_pause(control) => "Everyone gets {control} and no exposures are logged. Resuming later brings back the very same assignments.",
        "所有人都得到 {control}，不再记录曝光。之后恢复时，每个用户会回到原来的分组。";
    consequence_resume(coverage) => "Users get their variants again — the same ones as before the pause — and exposures are logged again, at {coverage} coverage.",
        "用户重新得到各自的变体（与暂停前相同），并以 {coverage} 的覆盖率重新记录曝光。";
    consequence_rollback(control) => "Everyone gets {control} from now on and exposures stop. This cannot be undone: a rolled-back experiment does not run again.",
        "从现在起所有人都得到 {control}，曝光停止。此操作无法撤销：回滚后的实验不能再次运行。";
    consequence_ship(variant) => "Everyone gets {variant}, including users who were in other variants, and the experiment ends.",
        "所有人都得到 {variant}（包括原先在其他变体中的用户），实验结束。";
    consequence_stop(control) => "Everyone gets {control} and the analysis is frozen at its current data.",
        "所有人都得到 {control}，分析结果冻结在当前数据。";
    affected_switch(users, variants, to) => "{users} users seen so far in {variants} will get {to}.",
        "目前在 {variants} 中的 {users} 名用户将得到 {to}。";
    affected_return(users) => "The {users} users seen so far get their variants back.",
        "目前已曝光的 {users} 名用户将回到各自的变体。";
    affected_nobody => "Nobody has been exposed yet, so no user changes variant.",
        "还没有用户曝光，因此没有用户会更换变体。";
    affected_none_move(to) => "Every user seen so far is in {to} already: nobody changes variant.",
        "目前已曝光的用户都在 {to} 中：没有用户会更换变体。";

    // The experiment form.
    new_experiment => "New experiment", "新建实验";
    edit_experiment(key) => "Edit {key}", "编辑 {key}";
    about => "About", "基本信息";
    key => "Key", "标识";
    key_hint => "Letters, digits, '-', '_' or '.'; used in URLs and by the SDK.", "字母、数字、“-”、“_”或“.”；用于网址和 SDK。";
    name => "Name", "名称";
    hypothesis => "Hypothesis", "假设";
    variants_legend => "the first is the control; weights sum to 1", "第一个为对照组；权重之和为 1";
    variant_key(number) => "Variant {number} key", "变体 {number} 标识";
    weight => "Weight", "权重";
    payload_json => "Payload (JSON)", "取值（JSON）";
    who_enters => "Who enters", "谁会进入实验";
    coverage_hint => "Share of matching users who enter, from 0 to 1.", "符合条件的用户中进入实验的比例，0 到 1。";
    condition_json => "Condition (JSON)", "条件（JSON）";
    condition_hint => "Who may enter, e.g. {\"country\": {\"$in\": [\"US\"]}}; empty for everyone.", "谁可以进入，例如 {\"country\": {\"$in\": [\"CN\"]}}；留空表示所有人。";
    hash_attribute => "Hash attribute", "哈希属性";
    hash_attribute_hint => "The user attribute that buckets users.", "用于给用户分桶的用户属性。";
    namespace_hint => "Experiments in one namespace with disjoint ranges never share users.", "同一命名空间中范围不重叠的实验不会共享用户。";
    range_start => "Range start", "范围起点";
    range_end => "Range end", "范围终点";
    environments_legend => "none ticked: served in every environment", "都不勾选：在所有环境中提供";
    metrics_legend => "Metrics", "指标";
    primary_metric => "Primary metric", "主要指标";
    primary_metric_hint => "The metric that decides the experiment.", "决定实验结论的指标。";
    secondary_metrics => "Secondary metrics", "次要指标";
    no_metric_yet => "No metric is defined yet;", "还没有定义指标；";
    define_one => "define one", "去定义一个";
    significance_level => "Significance level", "显著性水平";
    alpha_hint => "Reports and guardrails use it; 0.05 is usual.", "报告和护栏指标都使用它；通常为 0.05。";
    report_after => "Report after (hours)", "多少小时后发送报告";
    cuped_lookback => "CUPED lookback (days)", "CUPED 回看天数";
    cuped_lookback_hint => "Adjusts each metric by its value over this many days before each user's first exposure, for tighter intervals; empty for none.", "用每位用户首次曝光前这么多天内的指标值来调整各指标，使区间更窄；留空表示不使用。";
    shaped_change_rebuilds => "Users have been exposed: changing CUPED's lookback, or adding a windowed, capped or ratio metric, rebuilds every user's values from the stored events. The report shows the progress, and the guard waits for those metrics until it is done.", "已有用户曝光：修改 CUPED 回看天数，或添加带窗口、封顶或比率的指标，会根据已存储的事件重建每位用户的值。报告会显示进度，重建完成前熔断器不会依据这些指标行动。";
    report_after_hint => "Webhooks get the headline results once, this long after the start; empty for none.", "启动这么久之后，Webhook 会收到一次主要结果；留空表示不发送。";
    dimensions => "Dimensions", "维度";
    dimensions_hint => "User attributes kept at exposure for breakdowns, separated by commas.", "曝光时保留、用于细分的用户属性，用逗号分隔。";
    guardrails_legend => "what the circuit breakers protect", "熔断机制保护的指标";
    guardrail_metric(number) => "Guardrail {number} metric", "护栏指标 {number}";
    largest_drop => "Largest tolerated drop", "可容忍的最大下降";
    min_users => "Minimum users per variant", "每个变体的最少用户数";
    action => "Action", "动作";
    staged_rollout => "Staged rollout", "分阶段放量";
    staged_rollout_legend => "optional; coverage never decreases", "可选；覆盖率不能下降";
    stage_coverage(number) => "Stage {number} coverage", "阶段 {number} 覆盖率";
    min_hold => "Minimum hold (seconds)", "最短停留（秒）";
    frozen_note(fields) => "Once the experiment has started, {fields} cannot change: they decide which variant each user gets, and changing them would move users between variants. Everything else may still change.",
        "实验启动后，{fields}不能再修改：它们决定每个用户得到哪个变体，修改会让用户换到别的变体。其余内容仍可修改。";
    frozen_variants => "the variants' keys and weights", "变体的标识和权重";
    frozen_hash_attribute => "the hash attribute", "哈希属性";
    frozen_seed => "the seed", "哈希种子";
    frozen_hash_version => "the hash version", "哈希版本";
    frozen_namespace => "the namespace", "命名空间";
    save_changes => "Save changes", "保存修改";
    create_draft => "Create draft", "创建草稿";
    metric_choice(key, name) => "{key} ({name})", "{key}（{name}）";
    environment_choice(name, key) => "{name} ({key})", "{name}（{key}）";
    not_valid_json(line, column) => "is not valid JSON (line {line}, column {column})", "不是有效的 JSON（第 {line} 行第 {column} 列）";

    // Metrics.
    metrics_title => "Metrics", "指标";
    no_metric_defined => "No metric is defined yet.", "还没有定义指标。";
    kind => "Kind", "类型";
    kind_hint => "conversion: did the user do it; mean: sum of values per user; count: events per user; ratio: one metric's total over another's (revenue per order).", "转化：用户是否做了这件事；均值：每个用户的数值之和；次数：每个用户的事件数；比率：一个指标的总和除以另一个指标的总和（如每笔订单的收入）。";
    measures => "Measures", "衡量对象";
    ratio_of(numerator, denominator) => "{numerator} ÷ {denominator}", "{numerator} ÷ {denominator}";
    window => "Window", "时间窗口";
    window_first(hours) => "the first {hours} h after exposure", "曝光后 {hours} 小时内";
    window_day(day, hours) => "day {day} after exposure, for {hours} h", "曝光后第 {day} 天起，持续 {hours} 小时";
    window_after(delay, hours) => "from {delay} h after exposure, for {hours} h", "曝光 {delay} 小时后起，持续 {hours} 小时";
    cap => "Cap", "封顶";
    capped_at(cap) => "at most {cap} per user", "每位用户最多 {cap}";
    ratio_parts => "Ratio", "比率";
    ratio_parts_legend => "for kind ratio only: two metrics that are not ratios; leave the event empty", "仅用于比率类型：两个非比率指标；事件留空";
    numerator => "Numerator", "分子";
    denominator => "Denominator", "分母";
    ratio_part_hint => "Σ numerator ÷ Σ denominator over each variant's users.", "每个变体用户的分子总和 ÷ 分母总和。";
    window_legend => "optional; conversion, mean and count: only events in this window after first exposure count", "可选；转化、均值和次数指标：只统计首次曝光后该窗口内的事件";
    window_delay => "Starts after (hours)", "开始于曝光后（小时）";
    window_hint => "168 with a length of 24 is D7 retention; empty means 0.", "168 加上长度 24 即第 7 日留存；留空表示 0。";
    window_hours => "Length (hours)", "长度（小时）";
    cap_hint => "Optional; mean and count: each user's value is capped here.", "可选；均值和次数指标：每位用户的值最多计到这里。";
    event => "Event", "事件";
    event_hint => "The track event's name, as the app sends it.", "应用发送的 track 事件名称。";
    better_when => "Better when", "越……越好";
    higher => "higher", "越高越好";
    lower => "lower", "越低越好";
    define_a_metric => "Define a metric", "定义指标";
    define_metric => "Define metric", "定义指标";

    // Webhooks.
    webhooks_title => "Webhooks", "Webhook 通知";
    no_webhook => "No webhook yet.", "还没有 Webhook。";
    url => "URL", "网址";
    url_hint => "Where the POST requests go.", "POST 请求发送到的地址。";
    format => "Format", "格式";
    format_hint => "JSON: Sluice's own signed JSON. Slack, Feishu, DingTalk, WeCom: a readable message for that service's incoming webhook (Feishu, DingTalk and WeCom in Chinese).",
        "JSON：Sluice 自己的签名 JSON。Slack、飞书、钉钉、企业微信：发给该服务入站 Webhook 的可读消息（飞书、钉钉和企业微信为中文）。";
    signing_secret => "Signing secret", "签名密钥";
    secret_hint => "16 to 256 characters. JSON: required, requests carry an HMAC-SHA256 signature made with it. Feishu, DingTalk: the bot's signing secret, if its \"sign\" security is on. Slack, WeCom: leave empty.",
        "16 到 256 个字符。JSON：必填，请求带有用它生成的 HMAC-SHA256 签名。飞书、钉钉：若机器人开启了“加签”，填写其签名密钥。Slack、企业微信：留空。";
    events => "Events", "事件";
    deliveries => "Deliveries", "投递";
    delivery_log => "Delivery log", "投递记录";
    remove => "Remove", "删除";
    add_a_webhook => "Add a webhook", "添加 Webhook";
    add_webhook => "Add webhook", "添加 Webhook";
    deliveries_title => "Webhook deliveries", "Webhook 投递记录";
    deliveries_to => "Deliveries to", "投递目标";
    nothing_sent => "Nothing has been sent to this webhook yet.", "还没有向该 Webhook 发送过任何内容。";
    queued => "Queued", "排队时间";
    attempts => "Attempts", "尝试次数";
    last_error => "Last error", "最近的错误";

    // Keys and environments.
    keys_title => "API keys", "API 密钥";
    minted(role, name) => "New {role} key {name}. Copy it now: it is shown only this once.", "新的{role}密钥“{name}”。请立即复制：它只显示这一次。";
    keys_help => "Keys are stored only as hashes, so existing keys cannot be shown again. A revoked key stops working at once on this server and within a minute on the others.",
        "密钥只以哈希形式保存，已有的密钥无法再次显示。吊销的密钥在本服务器上立即失效，在其他服务器上一分钟内失效。";
    role => "Role", "角色";
    environment => "Environment", "环境";
    created => "Created", "创建时间";
    revoked_at(at) => "revoked {at}", "已于 {at} 吊销";
    revoke => "Revoke", "吊销";
    revoke_key(name) => "Revoke {name}", "吊销 {name}";
    environment_hint => "For SDK keys: they are served only the experiments of their environment.", "用于 SDK 密钥：只向它提供其所在环境的实验。";
    create_key => "Create key", "创建密钥";
    environments_help => "An experiment is served in the environments it lists, or in all of them when it lists none.", "实验在它列出的环境中提供；一个都没列出时在所有环境中提供。";
    add_environment => "Add environment", "添加环境";

    // Planning.
    planning_title => "Planning", "规划";
    planning_heading => "Planning calculator", "样本量计算器";
    planning_help => "How many users an experiment needs to detect an effect, or the smallest effect a number of users can detect (two-sided test).",
        "实验需要多少用户才能检测到某个效果，或者一定数量的用户能检测到的最小效果（双侧检验）。";
    baseline_field => "Baseline", "基准值";
    baseline_hint => "The control's conversion rate (0.1 for 10%), or its mean when you give a variance.", "对照组的转化率（0.1 表示 10%），给出方差时则为其均值。";
    variance => "Variance", "方差";
    variance_hint => "Only for mean metrics: the per-user variance.", "仅用于均值指标：每个用户的方差。";
    effect_to_detect => "Relative effect to detect", "要检测的相对效果";
    effect_hint => "e.g. 0.05 for 5%; leave empty to compute it from users.", "例如 0.05 表示 5%；留空则根据用户数计算。";
    users_per_variant => "Users per variant", "每个变体的用户数";
    users_hint => "Leave empty to compute it from the effect.", "留空则根据效果计算。";
    power => "Power", "统计功效";
    variants_field => "Variants", "变体数";
    variants_hint => "Including the control.", "包括对照组。";
    calculate => "Calculate", "计算";
    must_be_a_number => "must be a number", "必须是数字";
    sample_size(users, total, mde, power, alpha) => "{users} users per variant ({total} in all) detect a relative effect of {mde} with power {power} at significance level {alpha}.",
        "每个变体 {users} 名用户（共 {total} 名），能在显著性水平 {alpha} 下以 {power} 的统计功效检测到 {mde} 的相对效果。";
    detectable_effect(users, power, alpha, mde) => "With {users} users per variant, the smallest relative effect detected with power {power} at significance level {alpha} is {mde}.",
        "每个变体 {users} 名用户时，在显著性水平 {alpha} 下以 {power} 的统计功效能检测到的最小相对效果为 {mde}。";

    // The experiment page's filters: whom the report counts and its breakdown.
    report_view => "Users counted", "统计的用户";
    first_exposed_from => "First exposed from", "首次曝光不早于";
    first_exposed_before => "First exposed before", "首次曝光早于";
    segment_of(dimension) => "{dimension} (any of)", "{dimension}（任一）";
    segment_hint => "None picked: every value. Several: users with any of them.", "都不选：所有取值。选多个：具有其中任一取值的用户。";
    no_values_yet => "No user has shown a value yet.", "还没有用户出现过取值。";
    break_down_by => "Break down by", "细分维度";
    and_by => "and by", "再按";
    no_breakdown => "no breakdown", "不细分";
    apply_filter => "Apply", "应用";
    filter_active(conditions) => "Showing users {conditions}.", "仅显示{conditions}的用户。";
    exposed_between(from, to) => "first exposed from {from}, before {to}", "在 {from} 起、{to} 之前首次曝光";
    exposed_from(from) => "first exposed from {from}", "在 {from} 起首次曝光";
    exposed_before(to) => "first exposed before {to}", "在 {to} 之前首次曝光";
    segment_condition(dimension, values) => "with {dimension} {values}", "{dimension} 为 {values}";
    or_values => " or ", " 或 ";
    condition_separator => ", ", "，";
    clear_filter => "Clear the filter", "清除筛选";
    filter_not_applied => "The filter was not applied, so the results count every user:", "筛选未生效，以下结果统计的是所有用户：";
    choose_breakdown => "Choose a dimension above to break the results down.", "在上方选择维度以细分结果。";
}

/// Problems and refusals the domain words in English, as patterns (`{}` stands
/// for a part that is carried over) with their Chinese.
pub const DOMAIN_TEXTS: &[(&str, &str)] = &[
    ("must be 1 to 64 characters of ASCII letters, digits, '-', '_' or '.', starting with a letter or digit",
        "必须是 1 到 64 个 ASCII 字母、数字、“-”、“_”或“.”，并以字母或数字开头"),
    ("must be a number from 0 to 1", "必须是 0 到 1 之间的数"),
    ("weights must sum to 1 (they sum to {})", "权重之和必须为 1（现为 {}）"),
    ("must have 2 to {} variants (the first is the control)", "必须有 2 到 {} 个变体（第一个为对照组）"),
    ("duplicates another variant's key", "与另一个变体的标识重复"),
    ("must be 1 to {} characters", "必须是 1 到 {} 个字符"),
    ("must be at most {} characters", "最多 {} 个字符"),
    ("must not be empty", "不能为空"),
    ("must be 1 or 2", "必须是 1 或 2"),
    ("must be in (0, 0.5]", "必须在 (0, 0.5] 之内"),
    ("must be in (0, 1]", "必须在 (0, 1] 之内"),
    ("must be a number of users, at least 1", "必须是用户数，至少为 1"),
    ("must be a number of hours above 0, at most {}", "必须是大于 0 的小时数，最多 {}"),
    ("must be a JSON object", "必须是 JSON 对象"),
    ("must be [start, end] with 0 <= start < end <= 1", "必须是 [起点, 终点]，且 0 <= 起点 < 终点 <= 1"),
    ("is not a defined environment (POST /api/v1/environments)", "不是已定义的环境"),
    ("is listed twice", "重复列出"),
    ("is not a defined metric", "不是已定义的指标"),
    ("must name at most {} attributes", "最多列出 {} 个属性"),
    ("must be 1 to 64 ASCII letters, digits or '_'", "必须是 1 到 64 个 ASCII 字母、数字或“_”"),
    ("must have at most {} stages", "最多 {} 个阶段"),
    ("stages must not decrease coverage", "各阶段的覆盖率不能下降"),
    ("must be 16 to 256 characters", "必须是 16 到 256 个字符"),
    ("must be an http:// or https:// URL", "必须是 http:// 或 https:// 网址"),
    ("must name at least one event type", "至少选择一种事件"),
    ("is required for {} webhooks: every request is signed with it", "{} 格式的 Webhook 必须填写：每个请求都用它签名"),
    ("must be left out: {} incoming webhooks are not signed (the URL is the secret)", "必须留空：{} 入站 Webhook 不签名（网址本身就是密钥）"),
    ("must be one of {}", "必须是以下之一：{}"),
    ("is not a field here (a typo?)", "不是这里的字段（拼写错误？）"),
    ("must not contain the NUL character (U+0000)", "不能包含 NUL 字符（U+0000）"),
    ("give exactly one of mde or users", "相对效果和用户数只能填写其中一个"),
    ("invalid type: {}, expected {}", "类型不对：收到 {}，应为 {}"),
    ("experiment {}", "实验 {}"),
    ("metric {}", "指标 {}"),
    ("webhook {}", "Webhook {}"),
    ("API key {}", "API 密钥 {}"),
    ("no environment {} (create it: POST /api/v1/environments)", "没有环境 {}"),
    ("must be a whole number, at least 1", "必须是至少为 1 的整数"),
    // Report filters and breakdowns.
    ("must be a date (2026-12-01) or an RFC 3339 time (2026-12-01T08:00:00Z)",
        "必须是日期（2026-12-01）或 RFC 3339 时间（2026-12-01T08:00:00Z）"),
    ("must be after from", "必须晚于起始时间"),
    ("must be DIMENSION:VALUE, e.g. country:CN", "必须是“维度:取值”，例如 country:CN"),
    ("{} is not kept by this experiment (its dimensions: [{}])", "{} 不是该实验保留的维度（它保留的维度：[{}]）"),
    ("names at most {} dimensions", "最多指定 {} 个维度"),
    ("names {} twice", "重复指定了 {}"),
    ("is given more than once", "重复给出"),
    ("must be holm or bh", "必须是 holm 或 bh"),
    ("must be daily", "必须是 daily"),
    // Shaped metrics and CUPED.
    ("is required for a ratio metric", "比率指标必须填写"),
    ("must be left out of a ratio metric: its numerator and denominator name theirs", "比率指标不填事件：其分子和分母各自指定事件"),
    ("belongs on the numerator and denominator metrics, not on the ratio", "应设在分子和分母指标上，而不是比率上"),
    ("is only for ratio metrics", "仅用于比率指标"),
    ("must be 0 to {}", "必须是 0 到 {}"),
    ("must be more than 0 and at most {}", "必须大于 0 且最多为 {}"),
    ("must end within a year ({} hours) of first exposure", "必须在首次曝光后一年（{} 小时）内结束"),
    ("applies to mean and count metrics (a conversion is 0 or 1)", "仅适用于均值和次数指标（转化只有 0 或 1）"),
    ("must be a number above 0", "必须是大于 0 的数"),
    ("names no metric ({})", "没有这个指标（{}）"),
    ("must not be a ratio metric itself", "本身不能是比率指标"),
    ("must be 1 to {} days", "必须是 1 到 {} 天"),
];

impl Text {
    pub(crate) fn status_of(self, status: Status) -> &'static str {
        match status {
            Status::Draft => self.status_draft(),
            Status::Running => self.status_running(),
            Status::Paused => self.status_paused(),
            Status::RolledBack => self.status_rolled_back(),
            Status::Shipped => self.status_shipped(),
            Status::Stopped => self.status_stopped(),
        }
    }

    /// A status as the API names it, e.g. in an audit entry's before and after.
    pub(crate) fn status_named(self, name: &str) -> String {
        use serde::Deserialize;
        Status::deserialize(serde_json::Value::from(name))
            .map_or_else(|_| name.to_owned(), |s| self.status_of(s).to_owned())
    }

    pub(crate) fn health_of(self, status: GuardStatus) -> &'static str {
        match status {
            GuardStatus::Green => self.health_green(),
            GuardStatus::Yellow => self.health_yellow(),
            GuardStatus::Red => self.health_red(),
        }
    }

    pub(crate) fn role_of(self, role: Role) -> &'static str {
        match role {
            Role::Admin => self.role_admin(),
            Role::Editor => self.role_editor(),
            Role::Analyst => self.role_analyst(),
            Role::Sdk => self.role_sdk(),
        }
    }

    pub(crate) fn metric_kind(self, kind: MetricKind) -> &'static str {
        match kind {
            MetricKind::Conversion => self.kind_conversion(),
            MetricKind::Mean => self.kind_mean(),
            MetricKind::Count => self.kind_count(),
            MetricKind::Ratio => self.kind_ratio(),
        }
    }

    pub(crate) fn guardrail_action(self, action: GuardrailAction) -> &'static str {
        match action {
            GuardrailAction::Alert => self.action_alert(),
            GuardrailAction::Pause => self.action_pause(),
            GuardrailAction::Adjust => self.action_adjust(),
            GuardrailAction::Rollback => self.action_rollback(),
        }
    }

    pub(crate) fn webhook_format(self, format: WebhookFormat) -> &'static str {
        match format {
            WebhookFormat::Json => self.format_json(),
            WebhookFormat::Slack => self.format_slack(),
            WebhookFormat::Feishu => self.format_feishu(),
            WebhookFormat::Dingtalk => self.format_dingtalk(),
            WebhookFormat::Wecom => self.format_wecom(),
        }
    }

    /// An audit action or webhook event by its API name (`guard_rollback`, `*`).
    pub(crate) fn event_of(self, name: &str) -> String {
        use crate::domain::audit::GuardAction as G;
        if name == crate::domain::webhook::ALL_EVENTS {
            return self.all_events().to_owned();
        }
        let Some(action) = AuditAction::parse(name) else {
            return name.to_owned();
        };
        match action {
            AuditAction::Create => self.audit_create(),
            AuditAction::Update => self.audit_update(),
            AuditAction::Start => self.audit_start(),
            AuditAction::Pause => self.audit_pause(),
            AuditAction::Resume => self.audit_resume(),
            AuditAction::Rollback => self.audit_rollback(),
            AuditAction::Ship => self.audit_ship(),
            AuditAction::Stop => self.audit_stop(),
            AuditAction::Advance => self.audit_advance(),
            AuditAction::Guard(G::Rollback) => self.audit_guard_rollback(),
            AuditAction::Guard(G::Adjust) => self.audit_guard_adjust(),
            AuditAction::Guard(G::Pause) => self.audit_guard_pause(),
            AuditAction::Guard(G::Alert) => self.audit_guard_alert(),
            AuditAction::Guard(G::Warn) => self.audit_guard_warn(),
            AuditAction::Guard(G::Freeze) => self.audit_guard_freeze(),
            AuditAction::Guard(G::Clear) => self.audit_guard_clear(),
            AuditAction::Guard(G::Unfreeze) => self.audit_guard_unfreeze(),
            AuditAction::ReportReady => self.audit_report_ready(),
            AuditAction::KeyCreate => self.audit_key_create(),
            AuditAction::KeyRevoke => self.audit_key_revoke(),
            AuditAction::WebhookCreate => self.audit_webhook_create(),
            AuditAction::WebhookDelete => self.audit_webhook_delete(),
            AuditAction::EnvironmentCreate => self.audit_environment_create(),
            AuditAction::UserErase => self.audit_user_erase(),
        }
        .to_owned()
    }

    /// A field that cannot change once an experiment started.
    pub(crate) fn frozen_field(self, field: FrozenField) -> &'static str {
        match field {
            FrozenField::Variants => self.variants(),
            FrozenField::HashAttribute => self.hash_attribute(),
            FrozenField::HashVersion => self.hash_version(),
            FrozenField::Namespace => self.namespace(),
            FrozenField::Seed => self.seed(),
        }
    }

    /// A field that cannot change once an experiment started, as a sentence
    /// names it ("the hash attribute").
    pub(crate) fn frozen_part(self, field: FrozenField) -> &'static str {
        match field {
            FrozenField::Variants => self.frozen_variants(),
            FrozenField::HashAttribute => self.frozen_hash_attribute(),
            FrozenField::Seed => self.frozen_seed(),
            FrozenField::HashVersion => self.frozen_hash_version(),
            FrozenField::Namespace => self.frozen_namespace(),
        }
    }

    /// A delivery's state by its stored name.
    pub(crate) fn delivery_status(self, name: &str) -> String {
        match name {
            "pending" => self.delivery_pending(),
            "delivered" => self.delivery_delivered(),
            "failed" => self.delivery_failed(),
            other => other,
        }
        .to_owned()
    }

    /// The reason phrase of an HTTP status an error page shows.
    pub(crate) fn reason(self, status: u16) -> &'static str {
        match status {
            400 => self.status_400(),
            401 => self.status_401(),
            403 => self.status_403(),
            404 => self.status_404(),
            409 => self.status_409(),
            413 => self.status_413(),
            503 => self.status_503(),
            _ => self.status_500(),
        }
    }

    /// A text the domain wrote in English, in this language: English as it is,
    /// Chinese by the first pattern of [`DOMAIN_TEXTS`] that matches it. A text no
    /// pattern knows is shown as the API says it.
    pub(crate) fn domain(self, english: &str) -> String {
        if self.lang == Lang::En {
            return english.to_owned();
        }
        DOMAIN_TEXTS
            .iter()
            .find_map(|(pattern, chinese)| {
                let holes = match_pattern(pattern, english)?;
                let mut pieces = chinese.split("{}");
                let mut out = pieces.next().unwrap_or_default().to_owned();
                for (hole, piece) in holes.iter().zip(pieces) {
                    out.push_str(hole);
                    out.push_str(piece);
                }
                Some(out)
            })
            .unwrap_or_else(|| english.to_owned())
    }
}

/// What the `{}` holes of `pattern` stand for in `text`, when it matches.
fn match_pattern<'t>(pattern: &str, text: &'t str) -> Option<Vec<&'t str>> {
    let mut pieces = pattern.split("{}");
    let mut rest = text.strip_prefix(pieces.next()?)?;
    let pieces: Vec<&str> = pieces.collect();
    let mut holes = Vec::new();
    for (i, piece) in pieces.iter().enumerate() {
        let at = if i + 1 == pieces.len() {
            rest.strip_suffix(piece).map(str::len)?
        } else {
            rest.find(piece)?
        };
        holes.push(&rest[..at]);
        rest = &rest[at + piece.len()..];
    }
    rest.is_empty().then_some(holes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The named placeholders of a message, in order of first use.
    fn placeholders(text: &str) -> Vec<&str> {
        let mut names: Vec<&str> = text
            .split('{')
            .skip(1)
            .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
            .filter(|name| name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
            .filter(|name| !name.is_empty())
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    #[test]
    fn every_message_has_both_languages_with_the_same_placeholders() {
        let mut names: Vec<&str> = MESSAGES.iter().map(|m| m.name).collect();
        names.sort_unstable();
        let count = names.len();
        names.dedup();
        assert_eq!(names.len(), count, "a message name is used twice");
        for message in MESSAGES {
            assert!(
                !message.en.trim().is_empty(),
                "{}: no English",
                message.name
            );
            assert!(
                !message.zh.trim().is_empty(),
                "{}: no Chinese",
                message.name
            );
            assert_eq!(
                placeholders(message.en),
                placeholders(message.zh),
                "{}: the placeholders differ",
                message.name
            );
        }
    }

    #[test]
    fn chinese_messages_are_written_in_chinese() {
        // Names, units and notation that read the same in both languages.
        let same_in_both = ["Sluice", "{page} · Sluice", "SDK", "Slack"];
        for message in MESSAGES {
            let mut words = message.zh.to_owned();
            for name in placeholders(message.zh) {
                words = words.replace(&format!("{{{name}}}"), "");
            }
            let has_han = words
                .chars()
                .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c));
            let symbols_only = !words.chars().any(char::is_alphabetic);
            assert!(
                has_han || symbols_only || same_in_both.contains(&message.zh),
                "{} is not translated: {:?}",
                message.name,
                message.zh
            );
        }
    }

    #[test]
    fn domain_patterns_keep_their_holes() {
        for (english, chinese) in DOMAIN_TEXTS {
            assert_eq!(
                english.matches("{}").count(),
                chinese.matches("{}").count(),
                "{english}"
            );
        }
    }

    #[test]
    fn domain_texts_are_translated_with_their_numbers() {
        let zh = Text { lang: Lang::ZhCn };
        assert_eq!(
            zh.domain("weights must sum to 1 (they sum to 1.5)"),
            "权重之和必须为 1（现为 1.5）"
        );
        assert_eq!(
            zh.domain("must be 1 to 200 characters"),
            "必须是 1 到 200 个字符"
        );
        assert_eq!(zh.domain("must be 1 or 2"), "必须是 1 或 2");
        assert_eq!(zh.domain("something new"), "something new");
        let en = Text { lang: Lang::En };
        assert_eq!(en.domain("must be 1 or 2"), "must be 1 or 2");
    }

    #[test]
    fn messages_fill_their_placeholders_in_each_word_order() {
        let en = Text { lang: Lang::En };
        let zh = Text { lang: Lang::ZhCn };
        assert_eq!(en.audit_line("start", "alice"), "start by alice");
        assert_eq!(zh.audit_line("启动", "alice"), "alice 执行了启动");
    }
}
