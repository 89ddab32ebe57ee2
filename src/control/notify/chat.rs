//! A [`Message`] in the body each chat service's incoming webhook documents.
//! Signatures are added by the caller, where each service wants them.

use serde_json::{json, Value};

use super::message::Message;

/// Slack refuses a message whose header block is longer (an actor's name may be).
const SLACK_HEADER_MAX_CHARS: usize = 150;

/// Slack, "Sending messages using incoming webhooks": `text` and Block Kit
/// `blocks`; with blocks, `text` is what notifications show. A `header` block
/// (plain text), a `section` of `mrkdwn` lines, and one with the `<url|text>` link.
pub(super) fn slack(message: &Message) -> Value {
    let header: String = message.title.chars().take(SLACK_HEADER_MAX_CHARS).collect();
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": header},
    })];
    if !message.lines.is_empty() {
        let lines: Vec<String> = message
            .lines
            .iter()
            .map(|line| format!("• {}", slack_escape(line)))
            .collect();
        blocks.push(mrkdwn_section(&lines.join("\n")));
    }
    let link = format!("<{}|{}>", message.link, slack_escape(&message.link_text));
    blocks.push(mrkdwn_section(&link));
    json!({"text": message.title, "blocks": blocks})
}

fn mrkdwn_section(text: &str) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": text}})
}

/// The three characters Slack's mrkdwn asks to be escaped.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Feishu / Lark custom bot, rich text: `{"msg_type": "post", "content": {"post":
/// {LOCALE: {"title", "content": [[{"tag": "text" | "a", …}], …]}}}}`, one
/// paragraph per line. Both `zh_cn` and `en_us` are given: the client shows
/// each reader the one in their language.
pub(super) fn feishu(chinese: &Message, english: &Message) -> Value {
    json!({
        "msg_type": "post",
        "content": {"post": {"zh_cn": feishu_post(chinese), "en_us": feishu_post(english)}},
    })
}

fn feishu_post(message: &Message) -> Value {
    let mut paragraphs: Vec<Value> = message
        .lines
        .iter()
        .map(|line| json!([{"tag": "text", "text": line}]))
        .collect();
    paragraphs.push(json!([{"tag": "a", "text": message.link_text, "href": message.link}]));
    json!({"title": message.title, "content": paragraphs})
}

/// DingTalk custom robot: `{"msgtype": "markdown", "markdown": {"title", "text"}}`;
/// `title` is what the conversation list and notifications show.
pub(super) fn dingtalk(message: &Message) -> Value {
    let mut text = format!("#### {}\n\n", message.title);
    for line in &message.lines {
        text.push_str(&format!("- {line}\n"));
    }
    text.push_str(&format!("\n[{}]({})", message.link_text, message.link));
    json!({"msgtype": "markdown", "markdown": {"title": message.title, "text": text}})
}

/// WeCom group robot: `{"msgtype": "markdown", "markdown": {"content"}}`. Its
/// markdown has headings, bold, links and quotes but no lists, so each line is
/// a quote. Messages stay far below its 4096-byte limit (at most ten lines of
/// numbers, see the message).
pub(super) fn wecom(message: &Message) -> Value {
    let mut content = format!("### {}\n", message.title);
    for line in &message.lines {
        content.push_str(&format!("> {line}\n"));
    }
    content.push_str(&format!("[{}]({})", message.link_text, message.link));
    json!({"msgtype": "markdown", "markdown": {"content": content}})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> Message {
        Message {
            title: "Guard rolled back pricing-q4".into(),
            lines: vec!["purchase · premium: 50.0% worse <than> control".into()],
            link: "https://ab.example/experiments/pricing-q4".into(),
            link_text: "Open in Sluice".into(),
        }
    }

    #[test]
    fn slack_gets_a_fallback_text_and_escaped_blocks() {
        let body = slack(&message());
        assert_eq!(body["text"], "Guard rolled back pricing-q4");
        assert_eq!(body["blocks"][0]["type"], "header");
        assert_eq!(
            body["blocks"][1]["text"]["text"],
            "• purchase · premium: 50.0% worse &lt;than&gt; control"
        );
        assert_eq!(
            body["blocks"][2]["text"]["text"],
            "<https://ab.example/experiments/pricing-q4|Open in Sluice>"
        );
    }

    #[test]
    fn feishu_gets_a_post_per_language_with_the_link_last() {
        let body = feishu(&message(), &message());
        assert_eq!(body["msg_type"], "post");
        for locale in ["zh_cn", "en_us"] {
            let post = &body["content"]["post"][locale];
            assert_eq!(post["title"], "Guard rolled back pricing-q4");
            assert_eq!(post["content"][0][0]["tag"], "text");
            assert_eq!(post["content"][1][0]["tag"], "a");
            assert_eq!(
                post["content"][1][0]["href"],
                "https://ab.example/experiments/pricing-q4"
            );
        }
    }

    #[test]
    fn dingtalk_and_wecom_get_markdown() {
        let body = dingtalk(&message());
        assert_eq!(body["msgtype"], "markdown");
        assert_eq!(body["markdown"]["title"], "Guard rolled back pricing-q4");
        assert_eq!(
            body["markdown"]["text"],
            "#### Guard rolled back pricing-q4\n\n- purchase · premium: 50.0% worse <than> control\n\n\
             [Open in Sluice](https://ab.example/experiments/pricing-q4)"
        );
        let body = wecom(&message());
        assert_eq!(body["msgtype"], "markdown");
        assert_eq!(
            body["markdown"]["content"],
            "### Guard rolled back pricing-q4\n> purchase · premium: 50.0% worse <than> control\n\
             [Open in Sluice](https://ab.example/experiments/pricing-q4)"
        );
    }
}
