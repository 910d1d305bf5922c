//! Payloads shared by the load generator and the micro-benchmarks, so both measure the
//! same bytes.

use serde_json::{Value, json};

/// One realistic web event of about 600 bytes; `n` makes its message id unique and picks
/// the person (`people` distinct users).
pub fn track_message(n: u64, people: u64) -> Value {
    let user = n % people.max(1);
    json!({
        "type": "track",
        "event": "Product Viewed",
        "messageId": format!("bench-{n:012}"),
        "userId": format!("user-{user:09}"),
        "anonymousId": format!("anon-{user:09}"),
        "timestamp": "2026-11-20T10:15:00.000Z",
        "properties": {
            "product_id": "SC-001", "sku": "SC-001-42", "name": "Sneaker Corsa", "category": "scarpe",
            "brand": "Prossimo", "variant": "bianco", "price": 89.0, "currency": "EUR", "position": 3,
            "url": "https://shop.example.it/scarpe/sneaker-corsa"
        },
        "context": {
            "library": {"name": "analytics.js", "version": "5.2.0"},
            "ip": "93.45.12.7",
            "locale": "it-IT",
            "userAgent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36",
            "page": {"path": "/scarpe/sneaker-corsa", "referrer": "https://www.google.it/", "title": "Sneaker Corsa"}
        }
    })
}

/// A `/v1/batch` body of `size` messages starting at message number `first`.
pub fn batch_body(first: u64, size: u64, people: u64) -> Vec<u8> {
    let batch: Vec<Value> = (first..first + size)
        .map(|n| track_message(n, people))
        .collect();
    json!({ "batch": batch, "sentAt": "2026-11-20T10:15:01.000Z" })
        .to_string()
        .into_bytes()
}

/// A request body whose message ids and people can be rewritten in place, so the load
/// generator spends almost no CPU on payloads (it shares the machine with the server).
pub struct Template {
    pub body: Vec<u8>,
    /// Per message: offsets of the 12 message-id digits and of the two 9-digit person ids.
    slots: Vec<(usize, usize, usize)>,
}

fn offsets(body: &[u8], marker: &[u8]) -> Vec<usize> {
    body.windows(marker.len())
        .enumerate()
        .filter(|(_, w)| *w == marker)
        .map(|(i, _)| i + marker.len())
        .collect()
}

fn write_digits(dst: &mut [u8], mut value: u64) {
    for byte in dst.iter_mut().rev() {
        *byte = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

impl Template {
    /// `size` messages as a batch body, or one bare message when `batch` is false.
    pub fn new(size: u64, batch: bool) -> Template {
        let body = if batch {
            batch_body(0, size, 1)
        } else {
            track_message(0, 1).to_string().into_bytes()
        };
        let ids = offsets(&body, b"\"bench-");
        let users = offsets(&body, b"\"user-");
        let anons = offsets(&body, b"\"anon-");
        let slots = ids
            .into_iter()
            .zip(users)
            .zip(anons)
            .map(|((i, u), a)| (i, u, a))
            .collect();
        Template { body, slots }
    }

    /// The body for messages `first..first + size`, people drawn from `people`.
    pub fn fill(&mut self, first: u64, people: u64) -> &[u8] {
        for (k, &(id, user, anon)) in self.slots.iter().enumerate() {
            let n = first + k as u64;
            let person = n.wrapping_mul(2_654_435_761) % people.max(1);
            write_digits(&mut self.body[id..id + 12], n);
            write_digits(&mut self.body[user..user + 9], person);
            write_digits(&mut self.body[anon..anon + 9], person);
        }
        &self.body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_fills_valid_unique_messages() {
        let mut t = Template::new(3, true);
        let body = t.fill(41, 1000).to_vec();
        let v: Value = serde_json::from_slice(&body).unwrap();
        let ids: Vec<&str> = v["batch"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["messageId"].as_str().unwrap())
            .collect();
        assert_eq!(
            ids,
            vec![
                "bench-000000000041",
                "bench-000000000042",
                "bench-000000000043"
            ]
        );
        assert_eq!(
            v["batch"][0]["userId"].as_str().unwrap().len(),
            "user-".len() + 9
        );
        let size = track_message(0, 1).to_string().len();
        assert!(
            (550..750).contains(&size),
            "a message is about 600 bytes: {size}"
        );
    }
}
