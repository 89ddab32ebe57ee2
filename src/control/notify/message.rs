//! A notification told in words, in English or Simplified Chinese: what happened
//! to which experiment, the numbers that decided it, its status, and a link.

use serde::de::DeserializeOwned;

use super::PublicUrl;
use crate::control::guard::GuardEvidence;
use crate::domain::webhook::Notification;
use crate::domain::{AuditAction, GuardAction, Status};
use crate::guard::{GuardStatus, GuardrailVerdict};
use crate::report::{Headline, HeadlineComparison, SrmBlock};

/// A chat message shows this many lines of numbers at most; the page has the rest.
const MAX_FACTS: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Language {
    English,
    Chinese,
}

impl Language {
    /// Picks the English or the Chinese wording.
    fn pick<'a>(self, english: &'a str, chinese: &'a str) -> &'a str {
        match self {
            Language::English => english,
            Language::Chinese => chinese,
        }
    }
}

/// What every chat format shows, before its own markup.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Message {
    pub(super) title: String,
    /// The numbers, then the status.
    pub(super) lines: Vec<String>,
    pub(super) link: String,
    /// Names Sluice, so that a DingTalk robot's keyword security can ask for it.
    pub(super) link_text: String,
}

pub(super) fn message(
    notification: &Notification,
    language: Language,
    public_url: &PublicUrl,
) -> Message {
    let experiment = notification.experiment.as_deref().unwrap_or_default();
    let mut lines = facts(notification, language);
    if lines.len() > MAX_FACTS {
        let more = lines.len() - MAX_FACTS + 1;
        lines.truncate(MAX_FACTS - 1);
        lines.push(match language {
            Language::English => format!("… and {more} more on the experiment's page"),
            Language::Chinese => format!("……另有 {more} 条，详见实验页面"),
        });
    }
    if let Some(status) = notification.status {
        let status = status_name(status, language);
        lines.push(format!("{}{status}", language.pick("Status: ", "状态：")));
    }
    Message {
        title: title(notification, language),
        lines,
        link: public_url.experiment_page(experiment),
        link_text: language
            .pick("Open in Sluice", "在 Sluice 中查看")
            .to_owned(),
    }
}

fn title(notification: &Notification, language: Language) -> String {
    use AuditAction::*;
    let (english, chinese) = match notification.event {
        Create => (
            "{actor} created {experiment}",
            "{actor} 创建了实验 {experiment}",
        ),
        Update => (
            "{actor} edited {experiment}",
            "{actor} 修改了实验 {experiment}",
        ),
        Start => (
            "{actor} started {experiment}",
            "{actor} 启动了实验 {experiment}",
        ),
        Pause => (
            "{actor} paused {experiment}",
            "{actor} 暂停了实验 {experiment}",
        ),
        Resume => (
            "{actor} resumed {experiment}",
            "{actor} 恢复了实验 {experiment}",
        ),
        Rollback => (
            "{actor} rolled back {experiment}",
            "{actor} 回滚了实验 {experiment}",
        ),
        Ship => (
            "{actor} shipped {experiment}",
            "{actor} 全量发布了实验 {experiment}",
        ),
        Stop => (
            "{actor} stopped {experiment}",
            "{actor} 停止了实验 {experiment}",
        ),
        Advance => (
            "The staged rollout of {experiment} moved to its next stage",
            "实验 {experiment} 的分阶段放量进入下一阶段",
        ),
        Guard(GuardAction::Rollback) => (
            "Guard rolled back {experiment}",
            "熔断：实验 {experiment} 已自动回滚",
        ),
        Guard(GuardAction::Adjust) => (
            "Guard stepped back the coverage of {experiment}",
            "熔断：实验 {experiment} 已自动缩量一个阶段",
        ),
        Guard(GuardAction::Pause) => (
            "Guard froze the ramp of {experiment}",
            "熔断：实验 {experiment} 已冻结放量",
        ),
        Guard(GuardAction::Alert) => (
            "Guardrail alert on {experiment}",
            "告警：实验 {experiment} 的护栏指标变红",
        ),
        Guard(GuardAction::Warn) => (
            "Guardrail warning on {experiment}",
            "预警：实验 {experiment} 的护栏指标变黄",
        ),
        Guard(GuardAction::Freeze) => (
            "Sample ratio mismatch: the ramp of {experiment} is frozen",
            "样本比例失衡（SRM）：实验 {experiment} 已冻结放量",
        ),
        Guard(GuardAction::Clear) => (
            "Every guardrail of {experiment} is green again",
            "实验 {experiment} 的护栏指标已全部恢复正常",
        ),
        Guard(GuardAction::Unfreeze) => (
            "The ramp of {experiment} thawed",
            "实验 {experiment} 已解除放量冻结",
        ),
        ReportReady => ("Report ready: {experiment}", "实验报告已生成：{experiment}"),
        // Changes to the settings are not sent to webhooks.
        KeyCreate | KeyRevoke | WebhookCreate | WebhookDelete | EnvironmentCreate | UserErase => {
            ("{actor}: {event}", "{actor}：{event}")
        }
    };
    language
        .pick(english, chinese)
        .replace(
            "{experiment}",
            notification.experiment.as_deref().unwrap_or_default(),
        )
        .replace("{event}", notification.event.as_str())
        .replace("{actor}", &notification.actor)
}

/// The numbers behind the event, from its evidence.
fn facts(notification: &Notification, language: Language) -> Vec<String> {
    match notification.event {
        AuditAction::ReportReady => {
            evidence::<Headline>(notification).map(|headline| report_facts(&headline, language))
        }
        AuditAction::Guard(_) | AuditAction::Advance => {
            evidence::<GuardEvidence>(notification).map(|evidence| guard_facts(&evidence, language))
        }
        _ => None,
    }
    .unwrap_or_default()
}

fn evidence<T: DeserializeOwned>(notification: &Notification) -> Option<T> {
    serde_json::from_value(notification.evidence.clone()?).ok()
}

/// The guardrails that are not green, and a sample ratio mismatch.
fn guard_facts(evidence: &GuardEvidence, language: Language) -> Vec<String> {
    let verdicts = evidence
        .verdicts
        .iter()
        .filter(|v| v.status != GuardStatus::Green)
        .map(|v| verdict_fact(v, language));
    verdicts.chain(srm_fact(&evidence.srm, language)).collect()
}

fn report_facts(headline: &Headline, language: Language) -> Vec<String> {
    let health = health_name(headline.health, language);
    let mut facts = vec![format!("{}{health}", language.pick("Health: ", "健康度："))];
    match &headline.metric {
        None => facts.push(
            language
                .pick("No metric to report on", "没有可报告的指标")
                .to_owned(),
        ),
        Some(metric) => facts.extend(
            headline
                .comparisons
                .iter()
                .map(|c| comparison_fact(metric, c, headline.alpha, language)),
        ),
    }
    facts.extend(srm_fact(&headline.srm, language));
    facts
}

/// `purchase · premium: 50.0% worse than control, one-sided p < 0.0001, users: 3000 (control 3000)`
fn verdict_fact(verdict: &GuardrailVerdict, language: Language) -> String {
    let change = match verdict.observed_drop {
        None => language.pick("change unknown", "变化未知").to_owned(),
        Some(drop) => {
            let size = format!("{:.1}%", drop.abs() * 100.0);
            match (drop >= 0.0, language) {
                (true, Language::English) => format!("{size} worse than control"),
                (false, Language::English) => format!("{size} better than control"),
                (true, Language::Chinese) => format!("较对照组恶化 {size}"),
                (false, Language::Chinese) => format!("较对照组改善 {size}"),
            }
        }
    };
    let p = p_value(verdict.p_value, language);
    let (metric, variant) = (&verdict.metric, &verdict.variant);
    let (users, control) = (verdict.treatment_users, verdict.control_users);
    match language {
        Language::English => format!(
            "{metric} · {variant}: {change}, one-sided {p}, users: {users} (control {control})"
        ),
        Language::Chinese => {
            format!("{metric} · {variant}：{change}，单侧 {p}，用户数：{users}（对照组 {control}）")
        }
    }
}

/// `premium vs control · purchase: +4.1% (95% CI -1.2% to +9.4%), p = 0.1300, not significant · users 5012 / 4988`
fn comparison_fact(
    metric: &str,
    comparison: &HeadlineComparison,
    alpha: f64,
    language: Language,
) -> String {
    let lift = percent(comparison.rel_effect, language);
    let level = ((1.0 - alpha) * 1000.0).round() / 10.0;
    let ci = comparison.rel_ci.map(|[low, high]| {
        let (low, high) = (percent(Some(low), language), percent(Some(high), language));
        match language {
            Language::English => format!(" ({level}% CI {low} to {high})"),
            Language::Chinese => format!("（{level}% 置信区间 {low} ~ {high}）"),
        }
    });
    let ci = ci.unwrap_or_default();
    let p = p_value(comparison.p_value, language);
    let significant = if comparison.significant {
        language.pick("significant", "显著")
    } else {
        language.pick("not significant", "不显著")
    };
    let (variant, baseline) = (&comparison.variant, &comparison.baseline);
    let (users, baseline_users) = (comparison.users, comparison.baseline_users);
    match language {
        Language::English => format!(
            "{variant} vs {baseline} · {metric}: {lift}{ci}, {p}, {significant} · users {users} / {baseline_users}"
        ),
        Language::Chinese => format!(
            "{variant} 对比 {baseline} · {metric}：{lift}{ci}，{p}，{significant} · 用户数 {users} / {baseline_users}"
        ),
    }
}

fn srm_fact(srm: &SrmBlock, language: Language) -> Option<String> {
    if srm.ok {
        return None;
    }
    let users: Vec<String> = srm
        .users
        .iter()
        .map(|(variant, users)| format!("{variant} {users}"))
        .collect();
    let p = p_value(srm.p_value, language);
    Some(match language {
        Language::English => format!("Sample ratio mismatch, {p} (users: {})", users.join(", ")),
        Language::Chinese => format!("样本比例失衡（SRM），{p}（用户数：{}）", users.join("，")),
    })
}

fn p_value(p: Option<f64>, language: Language) -> String {
    match p {
        None => language.pick("p unknown", "p 值未知").to_owned(),
        Some(p) if p < 0.0001 => "p < 0.0001".to_owned(),
        Some(p) => format!("p = {p:.4}"),
    }
}

fn percent(value: Option<f64>, language: Language) -> String {
    value.map_or_else(
        || language.pick("n/a", "暂无").to_owned(),
        |v| format!("{:+.1}%", v * 100.0),
    )
}

fn health_name(health: GuardStatus, language: Language) -> &'static str {
    match health {
        GuardStatus::Green => language.pick("🟢 green", "🟢 绿"),
        GuardStatus::Yellow => language.pick("🟡 yellow", "🟡 黄"),
        GuardStatus::Red => language.pick("🔴 red", "🔴 红"),
    }
}

fn status_name(status: Status, language: Language) -> &'static str {
    match status {
        Status::Draft => language.pick("draft", "草稿"),
        Status::Running => language.pick("running", "运行中"),
        Status::Paused => language.pick("paused", "已暂停"),
        Status::RolledBack => language.pick("rolled back", "已回滚"),
        Status::Shipped => language.pick("shipped", "已全量"),
        Status::Stopped => language.pick("stopped", "已停止"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ActorKind;
    use serde_json::json;

    fn notification(event: AuditAction, evidence: serde_json::Value) -> Notification {
        Notification {
            event,
            experiment: Some("pricing-q4".into()),
            actor: "guard".into(),
            actor_kind: ActorKind::Guard,
            at: 0,
            status: Some(Status::RolledBack),
            evidence: Some(evidence),
        }
    }

    fn srm(ok: bool) -> serde_json::Value {
        json!({"p_value": if ok { 0.41 } else { 0.00002 }, "ok": ok,
               "users": {"control": 3000, "premium": if ok { 3000 } else { 2500 }}})
    }

    fn rollback() -> Notification {
        notification(
            AuditAction::Guard(GuardAction::Rollback),
            json!({"verdicts": [
                {"metric": "purchase", "variant": "premium", "status": "red", "observed_drop": 0.5,
                 "p_value": 0.00001, "control_users": 3000, "treatment_users": 3000, "evidence": "…"},
                {"metric": "revenue", "variant": "premium", "status": "green", "observed_drop": -0.02,
                 "p_value": 0.9, "control_users": 3000, "treatment_users": 3000, "evidence": "…"}],
               "srm": srm(true), "reason": "red guardrail: purchase (premium)"}),
        )
    }

    fn said(notification: &Notification, language: Language) -> Message {
        let public = PublicUrl::parse("https://ab.example").unwrap();
        message(notification, language, &public)
    }

    #[test]
    fn a_rollback_says_which_guardrail_and_by_how_much() {
        let english = said(&rollback(), Language::English);
        assert_eq!(english.title, "Guard rolled back pricing-q4");
        assert_eq!(
            english.lines,
            [
                "purchase · premium: 50.0% worse than control, one-sided p < 0.0001, users: 3000 (control 3000)",
                "Status: rolled back"
            ]
        );
        assert_eq!(english.link, "https://ab.example/experiments/pricing-q4");
        let chinese = said(&rollback(), Language::Chinese);
        assert_eq!(chinese.title, "熔断：实验 pricing-q4 已自动回滚");
        assert_eq!(
            chinese.lines,
            [
                "purchase · premium：较对照组恶化 50.0%，单侧 p < 0.0001，用户数：3000（对照组 3000）",
                "状态：已回滚"
            ]
        );
        assert_eq!(chinese.link_text, "在 Sluice 中查看");
    }

    #[test]
    fn a_report_gives_lift_interval_p_value_and_health() {
        let headline = json!({"health": "yellow", "alpha": 0.05, "srm": srm(false), "metric": "purchase",
            "comparisons": [{"variant": "premium", "baseline": "control", "users": 2500, "baseline_users": 3000,
                "rel_effect": 0.041, "rel_ci": [-0.012, 0.094], "p_value": 0.13, "significant": false}]});
        let mut report = notification(AuditAction::ReportReady, headline);
        report.status = Some(Status::Running);
        let english = said(&report, Language::English);
        assert_eq!(english.title, "Report ready: pricing-q4");
        assert_eq!(
            english.lines,
            [
                "Health: 🟡 yellow",
                "premium vs control · purchase: +4.1% (95% CI -1.2% to +9.4%), p = 0.1300, not significant · users 2500 / 3000",
                "Sample ratio mismatch, p < 0.0001 (users: control 3000, premium 2500)",
                "Status: running"
            ]
        );
        let chinese = said(&report, Language::Chinese);
        assert_eq!(chinese.title, "实验报告已生成：pricing-q4");
        assert_eq!(
            chinese.lines[1],
            "premium 对比 control · purchase：+4.1%（95% 置信区间 -1.2% ~ +9.4%），p = 0.1300，不显著 · 用户数 2500 / 3000"
        );
    }

    #[test]
    fn a_lifecycle_move_names_who_made_it() {
        let mut start = notification(AuditAction::Start, serde_json::Value::Null);
        start.actor = "alice".into();
        start.status = Some(Status::Running);
        let english = said(&start, Language::English);
        assert_eq!(english.title, "alice started pricing-q4");
        assert_eq!(english.lines, ["Status: running"]);
        assert_eq!(
            said(&start, Language::Chinese).title,
            "alice 启动了实验 pricing-q4"
        );
    }

    #[test]
    fn many_facts_are_cut_short_with_a_pointer_to_the_page() {
        let verdict = json!({"metric": "purchase", "variant": "v", "status": "yellow", "observed_drop": 0.1,
            "p_value": 0.2, "control_users": 10, "treatment_users": 10, "evidence": ""});
        let warn = notification(
            AuditAction::Guard(GuardAction::Warn),
            json!({"verdicts": vec![verdict; 15], "srm": srm(true)}),
        );
        let lines = said(&warn, Language::English).lines;
        assert_eq!(lines.len(), MAX_FACTS + 1, "the facts, then the status");
        assert_eq!(
            lines[MAX_FACTS - 1],
            "… and 6 more on the experiment's page"
        );
    }
}
