//! A message as a marketer writes it: a Liquid subject and body (MJML, HTML or plain
//! text) over the customer and what triggered the send; checked when saved, with every
//! problem naming its field, line and column; rendered per recipient.

use serde::{Deserialize, Serialize};

use crate::context::Context;

/// Where a message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Email,
    Sms,
    Webhook,
}

impl Channel {
    pub const ALL: [Channel; 3] = [Channel::Email, Channel::Sms, Channel::Webhook];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Webhook => "webhook",
        }
    }

    pub fn parse(text: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.as_str() == text)
    }

    /// The channel of the events that record its messages on the timeline.
    pub fn touchpoint(self) -> prossimo_model::Channel {
        match self {
            Channel::Email => prossimo_model::Channel::Email,
            Channel::Sms => prossimo_model::Channel::Sms,
            Channel::Webhook => prossimo_model::Channel::Server,
        }
    }
}

/// How an e-mail's body is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// MJML (mjml.io), turned into HTML that renders in every mail client.
    Mjml,
    #[default]
    Html,
    Text,
}

/// A message's content (the JSON of `/v1/messages`, see docs/messages.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Content {
    pub channel: Channel,
    /// E-mail only: the subject line (Liquid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The body (Liquid): MJML, HTML or text for an e-mail, text for an SMS; for a
    /// webhook, a JSON object whose strings are Liquid (see [`Template::compile`]).
    pub body: String,
    #[serde(default)]
    pub format: Format,
    /// Webhook only: the destination (of kind `messages`) that receives it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
}

/// What is wrong with a message, where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub field: String,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
}

impl Problem {
    fn new(field: &str, reason: impl Into<String>) -> Problem {
        Problem {
            field: field.to_owned(),
            reason: reason.into(),
            line: None,
            column: None,
        }
    }

    /// A Liquid error, its position read from its `--> line:column` marker.
    fn liquid(field: &str, error: &liquid::Error) -> Problem {
        let text = error.to_string();
        let position = text.lines().find_map(|l| {
            let (_, at) = l.split_once("--> ")?;
            let (line, column) = at.trim().split_once(':')?;
            Some((line.trim().parse().ok()?, column.trim().parse().ok()?))
        });
        let reason = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("= "))
            .map(str::to_owned)
            .unwrap_or_else(|| {
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect::<Vec<_>>()
                    .join("; ")
                    .trim_start_matches("liquid: ")
                    .to_owned()
            });
        Problem {
            field: field.to_owned(),
            reason,
            line: position.map(|p| p.0),
            column: position.map(|p| p.1),
        }
    }
}

/// A message rendered for one person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rendered {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    /// The text part of an e-mail (from its HTML when not written as text), or the SMS.
    pub text: String,
    /// A webhook's JSON body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<serde_json::Value>,
}

/// A message compiled once, rendered for many.
pub struct Template {
    content: Content,
    subject: Option<liquid::Template>,
    body: Body,
}

enum Body {
    Liquid(liquid::Template),
    Json(JsonTemplate),
}

/// A webhook's body: JSON whose strings are Liquid, so that no value a customer has can
/// break its syntax (Liquid writing JSON text would, with a quote in a name). A string
/// that is only `{{ a.path }}` becomes the value found there, whatever its type (a price
/// stays a number, the cart's products a list).
enum JsonTemplate {
    Literal(serde_json::Value),
    Text(Box<liquid::Template>),
    Path(Vec<String>),
    Array(Vec<JsonTemplate>),
    Object(Vec<(String, JsonTemplate)>),
}

impl JsonTemplate {
    fn compile(
        value: &serde_json::Value,
        parser: &liquid::Parser,
        problems: &mut Vec<Problem>,
    ) -> JsonTemplate {
        use serde_json::Value;
        match value {
            Value::String(text) => {
                if let Some(path) = lone_path(text) {
                    return JsonTemplate::Path(path);
                }
                if !text.contains("{{") && !text.contains("{%") {
                    return JsonTemplate::Literal(value.clone());
                }
                match parser.parse(text) {
                    Ok(template) => JsonTemplate::Text(Box::new(template)),
                    Err(e) => {
                        problems.push(Problem::liquid("body", &e));
                        JsonTemplate::Literal(Value::Null)
                    }
                }
            }
            Value::Array(items) => JsonTemplate::Array(
                items
                    .iter()
                    .map(|item| JsonTemplate::compile(item, parser, problems))
                    .collect(),
            ),
            Value::Object(fields) => JsonTemplate::Object(
                fields
                    .iter()
                    .map(|(k, v)| (k.clone(), JsonTemplate::compile(v, parser, problems)))
                    .collect(),
            ),
            other => JsonTemplate::Literal(other.clone()),
        }
    }

    fn render(&self, context: &Context) -> Result<serde_json::Value, Problem> {
        use serde_json::Value;
        Ok(match self {
            JsonTemplate::Literal(value) => value.clone(),
            JsonTemplate::Text(template) => Value::String(
                template
                    .render(context)
                    .map_err(|e| Problem::liquid("body", &e))?,
            ),
            JsonTemplate::Path(path) => context.json_at(path),
            JsonTemplate::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|item| item.render(context))
                    .collect::<Result<_, _>>()?,
            ),
            JsonTemplate::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), v.render(context)?)))
                    .collect::<Result<_, Problem>>()?,
            ),
        })
    }
}

/// `{{ event.properties.products }}` → its path; `None` for anything more (a filter,
/// text around it).
fn lone_path(text: &str) -> Option<Vec<String>> {
    let inner = text.trim().strip_prefix("{{")?.strip_suffix("}}")?.trim();
    let path: Vec<String> = inner.split('.').map(str::to_owned).collect();
    let is_name = |part: &String| {
        !part.is_empty()
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    path.iter().all(is_name).then_some(path)
}

/// The longest subject line once rendered, in characters (longer is cut: mail clients
/// show about 60, and RFC 5322 lines end at 998 bytes).
const MAX_SUBJECT_CHARS: usize = 250;

fn parser() -> Result<liquid::Parser, Problem> {
    liquid::ParserBuilder::with_stdlib()
        .build()
        .map_err(|e| Problem::new("body", e.to_string()))
}

impl Template {
    /// Checks and compiles `content`: every problem, or the template.
    pub fn compile(content: &Content) -> Result<Template, Vec<Problem>> {
        let parser = parser().map_err(|p| vec![p])?;
        let mut problems = Vec::new();
        match (content.channel, &content.subject) {
            (Channel::Email, None) => {
                problems.push(Problem::new("subject", "an e-mail needs a subject"))
            }
            (Channel::Email, Some(s)) if s.trim().is_empty() => {
                problems.push(Problem::new("subject", "an e-mail needs a subject"))
            }
            (Channel::Sms | Channel::Webhook, Some(_)) => problems.push(Problem::new(
                "subject",
                format!("a {} message has no subject", content.channel.as_str()),
            )),
            _ => {}
        }
        if content.channel != Channel::Email && content.format != Format::Html {
            problems.push(Problem::new(
                "format",
                format!(
                    "only an e-mail has a format; a {} message is text",
                    content.channel.as_str()
                ),
            ));
        }
        if content.body.trim().is_empty() {
            problems.push(Problem::new("body", "the body is empty"));
        }
        match (content.channel, &content.destination) {
            (Channel::Webhook, None) => problems.push(Problem::new(
                "destination",
                "a webhook message names the destination that receives it",
            )),
            (Channel::Webhook, Some(d)) if d.trim().is_empty() => problems.push(Problem::new(
                "destination",
                "a webhook message names the destination that receives it",
            )),
            (Channel::Email | Channel::Sms, Some(_)) => problems.push(Problem::new(
                "destination",
                format!(
                    "only a webhook message has a destination; a {} message goes to the customer",
                    content.channel.as_str()
                ),
            )),
            _ => {}
        }
        let subject = match content
            .subject
            .as_deref()
            .map(|s| parser.parse(s))
            .transpose()
        {
            Ok(subject) => subject,
            Err(e) => {
                problems.push(Problem::liquid("subject", &e));
                None
            }
        };
        let body = if content.channel == Channel::Webhook {
            json_body(&content.body, &parser, &mut problems).map(Body::Json)
        } else {
            match parser.parse(&content.body) {
                Ok(body) => Some(Body::Liquid(body)),
                Err(e) => {
                    problems.push(Problem::liquid("body", &e));
                    None
                }
            }
        };
        let (Some(body), true) = (body, problems.is_empty()) else {
            return Err(problems);
        };
        let template = Template {
            content: content.clone(),
            subject,
            body,
        };
        // MJML is checked as it will be read: after Liquid, here over an empty customer.
        if content.format == Format::Mjml
            && content.channel == Channel::Email
            && let Err(problem) = template.render(&Context::from_json(&serde_json::json!({})))
        {
            return Err(vec![problem]);
        }
        Ok(template)
    }

    pub fn content(&self) -> &Content {
        &self.content
    }

    /// The message for the person and send `context` describes.
    pub fn render(&self, context: &Context) -> Result<Rendered, Problem> {
        let subject = self
            .subject
            .as_ref()
            .map(|s| {
                s.render(context)
                    .map_err(|e| Problem::liquid("subject", &e))
            })
            .transpose()?
            .map(|s| one_line(&s));
        let body = match &self.body {
            Body::Liquid(body) => body
                .render(context)
                .map_err(|e| Problem::liquid("body", &e))?,
            Body::Json(json) => {
                let payload = json.render(context)?;
                return Ok(Rendered {
                    subject: None,
                    html: None,
                    text: payload.to_string(),
                    payload: Some(payload),
                });
            }
        };
        if self.content.channel != Channel::Email {
            return Ok(Rendered {
                subject: None,
                html: None,
                text: body.trim().to_owned(),
                payload: None,
            });
        }
        let html = match self.content.format {
            Format::Text => None,
            Format::Html => Some(body.clone()),
            Format::Mjml => Some(mjml_to_html(&body)?),
        };
        let text = match &html {
            Some(html) => html2text::from_read(html.as_bytes(), 78)
                .map_err(|e| Problem::new("body", format!("cannot make its text part: {e}")))?,
            None => body,
        };
        Ok(Rendered {
            subject,
            html,
            text,
            payload: None,
        })
    }
}

/// A webhook's body: a JSON object, its strings compiled as Liquid.
fn json_body(
    body: &str,
    parser: &liquid::Parser,
    problems: &mut Vec<Problem>,
) -> Option<JsonTemplate> {
    match serde_json::from_str::<serde_json::Value>(body) {
        Ok(value @ serde_json::Value::Object(_)) => {
            Some(JsonTemplate::compile(&value, parser, problems))
        }
        Ok(_) => {
            problems.push(Problem::new("body", "a webhook's body is a JSON object"));
            None
        }
        Err(e) => {
            problems.push(Problem {
                field: "body".into(),
                reason: format!("a webhook's body is a JSON object: {e}"),
                line: u32::try_from(e.line()).ok(),
                column: u32::try_from(e.column()).ok(),
            });
            None
        }
    }
}

/// A subject on one line, at most [`MAX_SUBJECT_CHARS`].
fn one_line(subject: &str) -> String {
    subject
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(MAX_SUBJECT_CHARS)
        .collect()
}

fn mjml_to_html(mjml: &str) -> Result<String, Problem> {
    let parsed = mrml::parse(mjml).map_err(|e| Problem::new("body", format!("MJML: {e}")))?;
    parsed
        .element
        .render(&mrml::prelude::render::RenderOptions::default())
        .map_err(|e| Problem::new("body", format!("MJML: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn email(subject: &str, body: &str, format: Format) -> Content {
        Content {
            channel: Channel::Email,
            subject: Some(subject.into()),
            body: body.into(),
            format,
            destination: None,
        }
    }

    fn context() -> Context {
        Context::from_json(&json!({
            "profile": {"first_name": "Giulia", "traits": {"city": "Milano"}},
            "event": {"properties": {"products": [
                {"name": "Borsa", "price": 89.5},
                {"name": "Sciarpa", "price": 25}
            ]}}
        }))
    }

    #[test]
    fn a_missing_value_is_nil_as_marketers_expect() {
        let t = Template::compile(&Content {
            channel: Channel::Sms,
            subject: None,
            body: "Ciao {{ profile.nickname | default: profile.first_name }}{{ event.coupon }}, {% if profile.vip %}VIP{% else %}cliente{% endif %} di {{ profile.traits.city }}; {{ nobody.at.all | default: \"-\" }}".into(),
            format: Format::Html,
            destination: None,
        })
        .expect("compiles");
        assert_eq!(
            t.render(&context()).expect("renders").text,
            "Ciao Giulia, cliente di Milano; -"
        );
    }

    #[test]
    fn mjml_becomes_html_with_a_text_part_and_loops_over_the_event() {
        let body = r#"<mjml><mj-body><mj-section><mj-column>
            <mj-text>Ciao {{ profile.first_name }}, hai lasciato:</mj-text>
            {% for p in event.properties.products %}<mj-text>{{ p.name }} — € {{ p.price }}</mj-text>{% endfor %}
            <mj-button href="https://shop.example/cart">Torna al carrello</mj-button>
        </mj-column></mj-section></mj-body></mjml>"#;
        let t = Template::compile(&email(
            "{{ profile.first_name }},   il tuo carrello",
            body,
            Format::Mjml,
        ))
        .expect("compiles");
        let out = t.render(&context()).expect("renders");
        assert_eq!(out.subject.as_deref(), Some("Giulia, il tuo carrello"));
        let html = out.html.expect("html");
        assert!(
            html.contains("<!doctype html>") && html.contains("Borsa — € 89.5"),
            "{html}"
        );
        assert!(out.text.contains("Sciarpa — € 25"), "{}", out.text);
        assert!(
            out.text.contains("https://shop.example/cart"),
            "{}",
            out.text
        );
        assert!(!out.text.contains('<'), "{}", out.text);
    }

    #[test]
    fn every_problem_names_its_field_and_position() {
        let problems = Template::compile(&Content {
            channel: Channel::Email,
            subject: Some("Ciao {{ profile.first_name ".into()),
            body: "riga uno\n{% if x %}manca la fine".into(),
            format: Format::Html,
            destination: None,
        })
        .err()
        .expect("refused");
        let fields: Vec<(&str, Option<u32>)> = problems
            .iter()
            .map(|p| (p.field.as_str(), p.line))
            .collect();
        assert_eq!(
            fields,
            [("subject", Some(1)), ("body", Some(2))],
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .all(|p| !p.reason.is_empty() && !p.reason.contains("-->"))
        );

        let no_subject = Template::compile(&Content {
            channel: Channel::Email,
            subject: None,
            body: "x".into(),
            format: Format::Text,
            destination: None,
        })
        .err()
        .expect("refused");
        assert_eq!(no_subject[0].field, "subject");

        let bad_mjml = Template::compile(&email("s", "<mjml><mj-body><mj-section>", Format::Mjml))
            .err()
            .expect("refused");
        assert_eq!(bad_mjml[0].field, "body");
        assert!(bad_mjml[0].reason.starts_with("MJML"), "{bad_mjml:?}");

        let sms_subject = Template::compile(&Content {
            channel: Channel::Sms,
            subject: Some("x".into()),
            body: "x".into(),
            format: Format::Html,
            destination: None,
        })
        .err()
        .expect("refused");
        assert_eq!(sms_subject[0].field, "subject");
    }

    #[test]
    fn a_text_email_has_no_html_and_a_long_subject_is_cut() {
        let t = Template::compile(&email(
            &"x ".repeat(400),
            "Solo testo {{ profile.first_name }}",
            Format::Text,
        ))
        .expect("compiles");
        let out = t.render(&context()).expect("renders");
        assert_eq!(out.html, None);
        assert_eq!(out.text, "Solo testo Giulia");
        assert_eq!(
            out.subject.expect("subject").chars().count(),
            MAX_SUBJECT_CHARS
        );
    }

    fn webhook(body: &str) -> Content {
        Content {
            channel: Channel::Webhook,
            subject: None,
            body: body.into(),
            format: Format::Html,
            destination: Some("crm".into()),
        }
    }

    #[test]
    fn a_webhook_body_is_json_whose_strings_are_liquid_and_no_value_breaks_it() {
        let t = Template::compile(&webhook(
            r#"{"greeting": "Ciao {{ profile.first_name }}", "products": "{{ event.properties.products }}",
                "first": "{{ event.properties.products.0.price }}", "coupon": "{{ event.coupon }}",
                "fixed": [1, "due", {"tre": true}]}"#,
        ))
        .expect("compiles");
        let quoted = Context::from_json(&json!({
            "profile": {"first_name": "Gi\"ulia\n"},
            "event": {"properties": {"products": [{"name": "Borsa", "price": 89.5}]}}
        }));
        let out = t.render(&quoted).expect("renders");
        assert_eq!(
            out.payload,
            Some(json!({
                "greeting": "Ciao Gi\"ulia\n",
                "products": [{"name": "Borsa", "price": 89.5}],
                "first": 89.5,
                "coupon": null,
                "fixed": [1, "due", {"tre": true}]
            }))
        );
        let parsed: serde_json::Value = serde_json::from_str(&out.text).expect("text is the JSON");
        assert_eq!(Some(parsed), out.payload);
    }

    #[test]
    fn a_webhook_needs_a_destination_and_a_json_object_and_says_where_it_is_not() {
        let bad = Template::compile(&webhook("{\n  \"a\": 1,\n  oops\n}"))
            .err()
            .expect("refused");
        assert_eq!(bad[0].field, "body");
        assert_eq!((bad[0].line, bad[0].column), (Some(3), Some(3)));
        let list = Template::compile(&webhook("[1]")).err().expect("refused");
        assert!(list[0].reason.contains("JSON object"), "{list:?}");
        let mut nowhere = webhook("{}");
        nowhere.destination = None;
        let problems = Template::compile(&nowhere).err().expect("refused");
        assert_eq!(problems[0].field, "destination");
        let mut sms = webhook("Ciao");
        sms.channel = Channel::Sms;
        let problems = Template::compile(&sms).err().expect("refused");
        assert_eq!(problems[0].field, "destination");
        let liquid = Template::compile(&webhook(r#"{"a": "{% if %}"}"#))
            .err()
            .expect("refused");
        assert_eq!(liquid[0].field, "body");
    }
}
