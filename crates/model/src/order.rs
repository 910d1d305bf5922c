//! Orders as the Segment e-commerce spec sends them, and the workspace's one reporting
//! currency. An order's value is converted when it arrives, so every figure downstream
//! (the profile's revenue, RFM, CLV) is in one currency; an order in a currency without a
//! configured rate is refused at the edge instead of counting as zero.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

use crate::Channel;
use crate::message::{Message, MessageType, number_like};

pub const ORDER_COMPLETED: &str = "Order Completed";
pub const ORDER_REFUNDED: &str = "Order Refunded";
pub const ORDER_CANCELLED: &str = "Order Cancelled";

/// What an order event does to the order it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderEventKind {
    /// The order is placed and paid: it counts as a purchase of its value.
    Completed,
    /// Money goes back: the amount when one is given (a partial refund), else all of it.
    Refunded,
    /// The order does not count at all.
    Cancelled,
}

impl OrderEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderEventKind::Completed => "completed",
            OrderEventKind::Refunded => "refunded",
            OrderEventKind::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<OrderEventKind> {
        match s {
            "completed" => Some(OrderEventKind::Completed),
            "refunded" => Some(OrderEventKind::Refunded),
            "cancelled" => Some(OrderEventKind::Cancelled),
            _ => None,
        }
    }
}

/// The order-relevant part of an `Order Completed|Refunded|Cancelled` track call.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderEvent {
    pub kind: OrderEventKind,
    /// `properties.order_id`; without one the event is its own order (keyed by messageId).
    pub order_id: Option<String>,
    /// `properties.revenue`, else `properties.total`, in `currency`.
    pub amount: Option<f64>,
    /// `properties.currency`, upper-cased; `None` means the reporting currency.
    pub currency: Option<String>,
}

impl Message {
    /// The order event this message is, if it is one.
    pub fn order_event(&self) -> Option<OrderEvent> {
        if self.kind != MessageType::Track {
            return None;
        }
        let kind = match self.event.as_deref()? {
            ORDER_COMPLETED => OrderEventKind::Completed,
            ORDER_REFUNDED => OrderEventKind::Refunded,
            ORDER_CANCELLED => OrderEventKind::Cancelled,
            _ => return None,
        };
        let order_id = self.properties.get("order_id").and_then(|v| match v {
            Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        });
        let amount = ["revenue", "total"]
            .iter()
            .find_map(|k| self.properties.get(*k).and_then(number_like));
        let currency = self
            .properties
            .get("currency")
            .and_then(Value::as_str)
            .map(|c| c.trim().to_ascii_uppercase())
            .filter(|c| !c.is_empty());
        Some(OrderEvent {
            kind,
            order_id,
            amount,
            currency,
        })
    }
}

/// One stored order event, as the store reads it back.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderRecord {
    pub profile_id: i64,
    pub order_id: String,
    pub kind: OrderEventKind,
    pub channel: Channel,
    /// Unix milliseconds.
    pub ts: i64,
    /// Reporting currency; `None` on a refund or cancellation means the whole order.
    pub value: Option<f64>,
}

/// An order as it counts: placed, not cancelled, not wholly refunded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NetOrder {
    pub profile_id: i64,
    pub order_id: String,
    /// Where it was completed.
    pub channel: Channel,
    /// When it was completed, unix milliseconds.
    pub ts: i64,
    /// Completed value minus refunds, in the reporting currency.
    pub value: f64,
    /// Refunded so far, in the reporting currency.
    pub refunded: f64,
}

/// What became of a set of order events.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OrderBook {
    /// Orders that count, sorted by order id.
    pub orders: Vec<NetOrder>,
    /// Orders completed and then cancelled or refunded in full.
    pub voided: usize,
    /// Refunds and cancellations of orders never seen completed (they may still arrive).
    pub pending_adjustments: usize,
}

/// Folds order events into net orders. Events may arrive in any order (a refund recorded
/// before its order arrives from a slower source): the result depends only on the set.
/// The order belongs to the profile of its `Order Completed` event; a completion sent
/// twice under different message ids counts once (the later one wins, with its value).
pub fn fold_orders(mut records: Vec<OrderRecord>) -> OrderBook {
    records.sort_by(|a, b| a.order_id.cmp(&b.order_id).then(a.ts.cmp(&b.ts)));
    let mut book = OrderBook::default();
    for group in records.chunk_by(|a, b| a.order_id == b.order_id) {
        let completed = group
            .iter()
            .rev()
            .find(|r| r.kind == OrderEventKind::Completed);
        let Some(completed) = completed else {
            book.pending_adjustments += 1;
            continue;
        };
        let gross = completed.value.unwrap_or(0.0);
        let mut refunded = 0.0;
        let mut void = false;
        for r in group {
            match (r.kind, r.value) {
                (OrderEventKind::Completed, _) => {}
                (OrderEventKind::Cancelled, _) | (OrderEventKind::Refunded, None) => void = true,
                (OrderEventKind::Refunded, Some(v)) => refunded += v.abs(),
            }
        }
        if void || refunded >= gross && gross > 0.0 {
            book.voided += 1;
            continue;
        }
        book.orders.push(NetOrder {
            profile_id: completed.profile_id,
            order_id: completed.order_id.clone(),
            channel: completed.channel,
            ts: completed.ts,
            value: gross - refunded,
            refunded,
        });
    }
    book
}

/// The workspace's reporting currency, the rates that convert into it, and the largest
/// amount a message may carry.
#[derive(Debug, Clone, PartialEq)]
pub struct Money {
    reporting: String,
    /// Reporting-currency units per one unit of the key currency.
    rates: BTreeMap<String, f64>,
    /// The largest absolute amount, in the reporting currency, that `revenue`, `total`,
    /// `price` or `value` may hold.
    max_amount: f64,
}

/// A billion in the reporting currency: larger than any retail order, far below where sums
/// over millions of customers lose precision or overflow.
pub const DEFAULT_MAX_AMOUNT: f64 = 1e9;

/// The properties that hold money, checked on every message that carries them.
const AMOUNT_KEYS: [&str; 4] = ["revenue", "total", "price", "value"];

/// An amount a message may not carry, and which field holds it.
#[derive(Debug, Clone, PartialEq, Error)]
#[error("{field}: {reason}")]
pub struct AmountProblem {
    pub field: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Error)]
pub enum MoneyError {
    #[error("{0:?} is not a currency code (three letters, like EUR)")]
    BadCode(String),
    #[error("the rate for {currency} must be a positive number, not {rate}")]
    BadRate { currency: String, rate: f64 },
    #[error("unknown currency {currency}: no rate into {reporting} is configured (known: {known})")]
    UnknownCurrency {
        currency: String,
        reporting: String,
        known: String,
    },
    #[error("the amount {0} is not a finite number")]
    BadAmount(f64),
    #[error("the largest amount must be a positive number, not {0}")]
    BadMaxAmount(f64),
}

impl Default for Money {
    /// Euro, with no other currency accepted until a rate is configured.
    fn default() -> Self {
        Money {
            reporting: "EUR".into(),
            rates: BTreeMap::new(),
            max_amount: DEFAULT_MAX_AMOUNT,
        }
    }
}

impl Money {
    /// `rates` maps a currency code to how many reporting-currency units one unit is worth.
    pub fn new(
        reporting: &str,
        rates: impl IntoIterator<Item = (String, f64)>,
    ) -> Result<Money, MoneyError> {
        let reporting = currency_code(reporting)?;
        let mut checked = BTreeMap::new();
        for (code, rate) in rates {
            let code = currency_code(&code)?;
            if !(rate.is_finite() && rate > 0.0) {
                return Err(MoneyError::BadRate {
                    currency: code,
                    rate,
                });
            }
            if code != reporting {
                checked.insert(code, rate);
            }
        }
        Ok(Money {
            reporting,
            rates: checked,
            max_amount: DEFAULT_MAX_AMOUNT,
        })
    }

    /// Sets the largest absolute amount a message may carry, in the reporting currency.
    pub fn with_max_amount(self, max_amount: f64) -> Result<Money, MoneyError> {
        if !(max_amount.is_finite() && max_amount > 0.0) {
            return Err(MoneyError::BadMaxAmount(max_amount));
        }
        Ok(Money { max_amount, ..self })
    }

    pub fn reporting(&self) -> &str {
        &self.reporting
    }

    pub fn max_amount(&self) -> f64 {
        self.max_amount
    }

    /// Whether an amount already in the reporting currency can be counted: finite and
    /// within the bound. Analyses skip stored values that are not (older stores took any).
    pub fn is_countable(&self, amount: f64) -> bool {
        amount.is_finite() && amount.abs() <= self.max_amount
    }

    /// Checks every amount a message carries (`revenue`, `total`, `price`, `value` and each
    /// product's `price`): finite, within the bound once converted, and not negative on a
    /// completed order. On an order event a non-numeric amount is refused too; elsewhere a
    /// property named `value` may well be a word, and only numbers are checked.
    pub fn check_amounts(&self, message: &Message) -> Result<(), AmountProblem> {
        let order = message.order_event().map(|o| o.kind);
        let currency = message
            .properties
            .get("currency")
            .and_then(Value::as_str)
            .map(str::trim);
        let check = |field: String, value: &Value| -> Result<(), AmountProblem> {
            let problem = |reason: String| AmountProblem {
                field: field.clone(),
                reason,
            };
            let amount = match (number_like(value), value) {
                (_, Value::Null) => return Ok(()),
                (Some(amount), _) => amount,
                // "1e999" or "NaN": a number, but not one that can be counted.
                (None, Value::String(s)) if s.trim().parse::<f64>().is_ok() => {
                    return Err(problem(format!("{s:?} is not a finite number")));
                }
                (None, _) if order.is_none() => return Ok(()),
                (None, other) => {
                    return Err(problem(format!("expected a number, found {other}")));
                }
            };
            if order == Some(OrderEventKind::Completed) && amount < 0.0 {
                return Err(problem(format!(
                    "{amount} is negative; a completed order is worth zero or more (send Order Refunded for money going back)"
                )));
            }
            // An unknown currency is refused on orders elsewhere; here the bound is checked
            // on the figure as sent.
            let reporting = self.to_reporting(amount, currency).unwrap_or(amount);
            if !self.is_countable(reporting) {
                return Err(problem(format!(
                    "{amount} is outside the accepted range of ±{} {}",
                    self.max_amount, self.reporting
                )));
            }
            Ok(())
        };
        for key in AMOUNT_KEYS {
            if let Some(value) = message.properties.get(key) {
                check(format!("properties.{key}"), value)?;
            }
        }
        if let Some(products) = message.properties.get("products").and_then(Value::as_array) {
            for (i, product) in products.iter().enumerate() {
                if let Some(price) = product.get("price") {
                    check(format!("properties.products[{i}].price"), price)?;
                }
            }
        }
        Ok(())
    }

    /// `amount` of `currency` (the reporting currency when `None`) in the reporting currency.
    pub fn to_reporting(&self, amount: f64, currency: Option<&str>) -> Result<f64, MoneyError> {
        if !amount.is_finite() {
            return Err(MoneyError::BadAmount(amount));
        }
        let rate = match currency {
            None => 1.0,
            Some(c) if c.eq_ignore_ascii_case(&self.reporting) => 1.0,
            Some(c) => *self.rates.get(&c.to_ascii_uppercase()).ok_or_else(|| {
                MoneyError::UnknownCurrency {
                    currency: c.to_owned(),
                    reporting: self.reporting.clone(),
                    known: std::iter::once(self.reporting.as_str())
                        .chain(self.rates.keys().map(String::as_str))
                        .collect::<Vec<_>>()
                        .join(", "),
                }
            })?,
        };
        Ok(amount * rate)
    }
}

fn currency_code(raw: &str) -> Result<String, MoneyError> {
    let code = raw.trim().to_ascii_uppercase();
    if code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(code)
    } else {
        Err(MoneyError::BadCode(raw.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Limits, parse_single};
    use chrono::Utc;

    fn track(event: &str, properties: Value) -> Message {
        let body = serde_json::json!({
            "userId": "u1", "event": event, "properties": properties,
            "timestamp": "2026-11-01T10:00:00Z"
        });
        let payload = parse_single(
            body.to_string().as_bytes(),
            MessageType::Track,
            Utc::now(),
            &Limits::default(),
        )
        .expect("valid track call");
        payload.messages.into_iter().next().expect("one message")
    }

    #[test]
    fn order_events_are_recognised_with_their_amount_and_currency() {
        let m = track(
            "Order Completed",
            serde_json::json!({"order_id": "A-1", "total": "12.50", "currency": "usd"}),
        );
        assert_eq!(
            m.order_event(),
            Some(OrderEvent {
                kind: OrderEventKind::Completed,
                order_id: Some("A-1".into()),
                amount: Some(12.5),
                currency: Some("USD".into()),
            })
        );
        let refund = track("Order Refunded", serde_json::json!({"order_id": 77}));
        let refund = refund.order_event().expect("a refund is an order event");
        assert_eq!(refund.kind, OrderEventKind::Refunded);
        assert_eq!(refund.order_id.as_deref(), Some("77"));
        assert_eq!(refund.amount, None);
        assert_eq!(track("Product Viewed", Value::Null).order_event(), None);
    }

    fn record(order: &str, kind: OrderEventKind, ts: i64, value: Option<f64>) -> OrderRecord {
        OrderRecord {
            profile_id: 7,
            order_id: order.into(),
            kind,
            channel: Channel::Web,
            ts,
            value,
        }
    }

    #[test]
    fn refunds_and_cancellations_net_out_in_any_order() {
        use OrderEventKind::*;
        let events = vec![
            record("A", Refunded, 5, Some(30.0)),
            record("A", Completed, 1, Some(100.0)),
            record("B", Completed, 2, Some(50.0)),
            record("B", Cancelled, 3, None),
            record("C", Completed, 3, Some(20.0)),
            record("C", Refunded, 4, None),
            record("D", Refunded, 4, Some(5.0)),
            record("E", Completed, 6, Some(10.0)),
        ];
        let book = fold_orders(events.clone());
        let nets: Vec<(&str, f64)> = book
            .orders
            .iter()
            .map(|o| (o.order_id.as_str(), o.value))
            .collect();
        assert_eq!(nets, [("A", 70.0), ("E", 10.0)]);
        assert_eq!(book.voided, 2);
        assert_eq!(book.pending_adjustments, 1);
        let mut reversed = events;
        reversed.reverse();
        assert_eq!(fold_orders(reversed), book);
    }

    #[test]
    fn amounts_convert_into_the_reporting_currency_or_fail_loudly() {
        let money = Money::new("eur", [("USD".to_owned(), 0.5), ("EUR".to_owned(), 3.0)])
            .expect("valid rates");
        assert_eq!(money.reporting(), "EUR");
        assert_eq!(money.to_reporting(10.0, None), Ok(10.0));
        assert_eq!(money.to_reporting(10.0, Some("eur")), Ok(10.0));
        assert_eq!(money.to_reporting(10.0, Some("USD")), Ok(5.0));
        let err = money.to_reporting(10.0, Some("GBP")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown currency GBP: no rate into EUR is configured (known: EUR, USD)"
        );
        assert!(Money::new("EURO", []).is_err());
        assert!(Money::new("EUR", [("USD".to_owned(), 0.0)]).is_err());
        assert!(money.to_reporting(f64::NAN, None).is_err());
    }
    #[test]
    fn amounts_must_be_finite_bounded_and_not_negative_on_a_completed_order() {
        let money = Money::new("EUR", [("USD".to_owned(), 0.5)]).expect("valid rates");
        let check = |event: &str, properties: Value| money.check_amounts(&track(event, properties));
        let refused = |event: &str, properties: Value| {
            check(event, properties.clone())
                .expect_err(&format!("{event} {properties}"))
                .field
        };
        assert_eq!(
            refused("Order Completed", serde_json::json!({"revenue": 1.7e308})),
            "properties.revenue"
        );
        assert_eq!(
            refused("Order Completed", serde_json::json!({"total": -1e9})),
            "properties.total"
        );
        assert_eq!(
            refused("Order Completed", serde_json::json!({"revenue": -0.01})),
            "properties.revenue"
        );
        assert_eq!(
            refused("Order Completed", serde_json::json!({"total": "1e999"})),
            "properties.total"
        );
        assert_eq!(
            refused(
                "Order Completed",
                serde_json::json!({"revenue": 10, "products": [{"price": 1}, {"price": 2e9}]})
            ),
            "properties.products[1].price"
        );
        assert_eq!(
            refused("Order Refunded", serde_json::json!({"total": -2e9})),
            "properties.total"
        );
        assert_eq!(
            refused("Product Viewed", serde_json::json!({"price": 5e9})),
            "properties.price"
        );
        assert_eq!(
            refused(
                "Order Completed",
                serde_json::json!({"value": {"amount": 3}})
            ),
            "properties.value"
        );
        // The bound is in the reporting currency: 1.5e9 USD is 0.75e9 EUR.
        assert!(
            check(
                "Order Completed",
                serde_json::json!({"revenue": 1.5e9, "currency": "USD"})
            )
            .is_ok()
        );
        assert!(check("Order Completed", serde_json::json!({"revenue": 1e9})).is_ok());
        // A refund may be written as a negative amount; outside orders a word is a word.
        assert!(check("Order Refunded", serde_json::json!({"total": -30})).is_ok());
        assert!(check("Filter Applied", serde_json::json!({"value": "red"})).is_ok());
        let strict = money
            .clone()
            .with_max_amount(100.0)
            .expect("positive bound");
        assert!(
            strict
                .check_amounts(&track(
                    "Order Completed",
                    serde_json::json!({"revenue": 101})
                ))
                .is_err()
        );
        assert!(Money::default().with_max_amount(f64::INFINITY).is_err());
        assert!(Money::default().with_max_amount(0.0).is_err());
    }
}
