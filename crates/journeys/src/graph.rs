//! A journey as a graph to draw: each step in a layer (its longest distance from the first
//! step, so every arrow points down) and a slot within the layer, each arrow named by the
//! outcome that takes it (the outcome the runner records on `Journey Step Completed`, so
//! a count per arrow is a lookup).

use std::collections::BTreeMap;

use crate::definition::{Definition, StepKind, Until};

/// A step placed in the drawing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphNode {
    pub id: String,
    /// The step's type (`send`, `wait`, …).
    pub kind: &'static str,
    /// What it does, in a few words (`email · cart-reminder`, `Order Completed ≤ 1h`).
    pub summary: String,
    pub layer: usize,
    pub slot: usize,
}

/// An arrow from a step to the next, taken on `outcome`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphEdge {
    pub from: usize,
    pub to: usize,
    pub outcome: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Graph {
    pub nodes: Vec<GraphNode>,
    pub edges: Vec<GraphEdge>,
    /// The most steps in one layer.
    pub widest: usize,
    pub layers: usize,
}

/// The outcome a step records when it leaves through its field `field` (`next`,
/// `on_timeout`, `branches[1].next`, `arms[0].next`, `otherwise`).
pub fn outcome_of(kind: &StepKind, field: &str) -> String {
    let index = |prefix: &str| {
        field
            .strip_prefix(prefix)
            .and_then(|rest| rest.split(']').next())
            .and_then(|i| i.parse::<usize>().ok())
    };
    match kind {
        StepKind::Delay(_) => "elapsed".into(),
        StepKind::Wait { .. } if field == "on_timeout" => "timeout".into(),
        StepKind::Wait { .. } => "happened".into(),
        StepKind::Branch { .. } if field == "otherwise" => "otherwise".into(),
        StepKind::Branch { .. } => format!("branch {}", index("branches[").unwrap_or(0) + 1),
        StepKind::Split { arms, .. } => index("arms[")
            .and_then(|i| arms.get(i))
            .map(|arm| arm.name.clone())
            .unwrap_or_default(),
        StepKind::Send { .. } => "sent".into(),
        StepKind::SetTrait { .. } => "set".into(),
        StepKind::Exit {} => "exit".into(),
    }
}

fn kind_name(kind: &StepKind) -> &'static str {
    match kind {
        StepKind::Delay(_) => "delay",
        StepKind::Wait { .. } => "wait",
        StepKind::Branch { .. } => "branch",
        StepKind::Split { .. } => "split",
        StepKind::Send { .. } => "send",
        StepKind::SetTrait { .. } => "set_trait",
        StepKind::Exit {} => "exit",
    }
}

fn until_summary(until: &Until) -> String {
    match until {
        Until::Event(event) => event.name.clone(),
        Until::Condition(condition) => condition.clone(),
    }
}

fn summary(kind: &StepKind) -> String {
    match kind {
        StepKind::Delay(delay) => match (&delay.duration, &delay.until_trait, &delay.window) {
            (Some(d), _, None) => d.clone(),
            (Some(d), _, Some(w)) => format!("{d}, then {}–{}", w.from, w.to),
            (None, Some(t), _) => format!("until {t}"),
            (None, None, Some(w)) => format!("{}–{}", w.from, w.to),
            (None, None, None) => String::new(),
        },
        StepKind::Wait { until, timeout, .. } => {
            format!("{} ≤ {timeout}", until_summary(until))
        }
        StepKind::Branch { branches, .. } => format!("{} condition(s)", branches.len()),
        StepKind::Split { arms, .. } => arms
            .iter()
            .map(|a| format!("{} {}", a.name, a.weight))
            .collect::<Vec<_>>()
            .join(" / "),
        StepKind::Send {
            channel, message, ..
        } => format!("{} · {message}", channel.as_str()),
        StepKind::SetTrait { trait_name, .. } => trait_name.clone(),
        StepKind::Exit {} => String::new(),
    }
}

/// Lays out `definition`'s steps. Steps no arrow reaches from the first (which a checked
/// journey has none of) go in the layer after the last.
pub fn layout(definition: &Definition) -> Graph {
    let index: BTreeMap<&str, usize> = definition
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    let mut edges = Vec::new();
    for (from, step) in definition.steps.iter().enumerate() {
        for (field, target) in step.kind.successors() {
            if let Some(&to) = index.get(target) {
                edges.push(GraphEdge {
                    from,
                    to,
                    outcome: outcome_of(&step.kind, &field),
                });
            }
        }
    }
    // Longest path from the first step; a journey cannot loop, and the bound keeps a
    // looping draft from spinning.
    let n = definition.steps.len();
    let mut layer: Vec<Option<usize>> = vec![None; n];
    if n > 0 {
        layer[0] = Some(0);
    }
    for _ in 0..n {
        let mut changed = false;
        for edge in &edges {
            if let Some(l) = layer[edge.from]
                && layer[edge.to].is_none_or(|t| t < l + 1)
                && l + 1 < n
            {
                layer[edge.to] = Some(l + 1);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let deepest = layer.iter().flatten().max().copied().unwrap_or(0);
    let mut filled: BTreeMap<usize, usize> = BTreeMap::new();
    let nodes: Vec<GraphNode> = definition
        .steps
        .iter()
        .enumerate()
        .map(|(i, step)| {
            let layer = layer[i].unwrap_or(deepest + 1);
            let slot = filled.entry(layer).or_default();
            let node = GraphNode {
                id: step.id.clone(),
                kind: kind_name(&step.kind),
                summary: summary(&step.kind),
                layer,
                slot: *slot,
            };
            *slot += 1;
            node
        })
        .collect();
    Graph {
        widest: filled.values().copied().max().unwrap_or(0),
        layers: filled.keys().next_back().map_or(0, |l| l + 1),
        nodes,
        edges,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_abandoned_cart_lays_out_top_down_with_its_outcomes_on_the_arrows() {
        let definition: Definition = serde_json::from_value(json!({
            "trigger": {"event": {"name": "Checkout Started"}},
            "steps": [
                {"id": "split", "type": "split", "arms": [
                    {"name": "holdout", "weight": 10, "holdout": true},
                    {"name": "treated", "weight": 90, "next": "wait"}]},
                {"id": "wait", "type": "wait", "until": {"event": {"name": "Order Completed"}},
                 "timeout": "1h", "next": "done", "on_timeout": "mail"},
                {"id": "mail", "type": "send", "channel": "email", "message": "cart", "next": "later"},
                {"id": "later", "type": "delay", "for": "1d", "next": "done"},
                {"id": "done", "type": "exit"}
            ]
        }))
        .expect("a definition");
        let graph = layout(&definition);
        let layers: Vec<(String, usize, usize)> = graph
            .nodes
            .iter()
            .map(|n| (n.id.clone(), n.layer, n.slot))
            .collect();
        assert_eq!(
            layers,
            [
                ("split".into(), 0, 0),
                ("wait".into(), 1, 0),
                ("mail".into(), 2, 0),
                ("later".into(), 3, 0),
                // Reached from wait (layer 2) and later (layer 4): the longest wins.
                ("done".into(), 4, 0),
            ]
        );
        let outcomes: Vec<(usize, usize, &str)> = graph
            .edges
            .iter()
            .map(|e| (e.from, e.to, e.outcome.as_str()))
            .collect();
        assert_eq!(
            outcomes,
            [
                (0, 1, "treated"),
                (1, 4, "happened"),
                (1, 2, "timeout"),
                (2, 3, "sent"),
                (3, 4, "elapsed")
            ]
        );
        assert_eq!((graph.layers, graph.widest), (5, 1));
        assert_eq!(graph.nodes[1].summary, "Order Completed ≤ 1h");
        assert_eq!(graph.nodes[2].summary, "email · cart");
    }

    #[test]
    fn a_branch_puts_its_targets_side_by_side() {
        let definition: Definition = serde_json::from_value(json!({
            "trigger": {"event": {"name": "Signed Up"}},
            "steps": [
                {"id": "which", "type": "branch", "branches": [
                    {"condition": "traits.vip == true", "next": "vip"}], "otherwise": "rest"},
                {"id": "vip", "type": "exit"},
                {"id": "rest", "type": "exit"}
            ]
        }))
        .expect("a definition");
        let graph = layout(&definition);
        assert_eq!(
            (graph.nodes[1].layer, graph.nodes[1].slot),
            (1, 0),
            "{graph:?}"
        );
        assert_eq!((graph.nodes[2].layer, graph.nodes[2].slot), (1, 1));
        assert_eq!(graph.edges[0].outcome, "branch 1");
        assert_eq!(graph.edges[1].outcome, "otherwise");
        assert_eq!(graph.widest, 2);
    }
}
